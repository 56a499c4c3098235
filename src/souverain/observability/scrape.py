"""Who may read `/metrics`: `metrics:` in the configuration, and the check on each scrape.

The metrics name models, deployments and how busy each one is, and count refusals by
outcome: not secrets, but a map of the gateway that no stranger needs. By default only
clients on the loopback interface may scrape (a Prometheus agent on the same host);
elsewhere a scraper presents the scrape token as a bearer token. Behind a reverse proxy
on the same host every client looks local: do not forward `/metrics`, or turn
`loopback` off and use the token.
"""

from __future__ import annotations

import hmac
import ipaddress

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ..errors import AuthenticationFailed, NotFound, PermissionDenied

MIN_TOKEN_CHARS = 16


class MetricsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    # Clients on 127.0.0.0/8 or ::1 may scrape without a token.
    loopback: bool = True
    # A bearer token that lets any client scrape. Give it in the environment
    # (SOUVERAIN_METRICS__SCRAPE_TOKEN), not in the YAML file.
    scrape_token: SecretStr | None = Field(default=None, min_length=MIN_TOKEN_CHARS)

    @model_validator(mode="after")
    def _reachable(self) -> MetricsConfig:
        if self.enabled and not self.loopback and self.scrape_token is None:
            raise ValueError(
                "with loopback off, /metrics needs a scrape_token (or set metrics.enabled: false)"
            )
        return self


def check_scrape(config: MetricsConfig, client_host: str | None, authorization: str | None) -> None:
    """Return if this client may read the metrics; raise the error to answer otherwise."""
    if not config.enabled:
        raise NotFound("no route /metrics", code="unknown_url")
    if authorization is not None:
        token = config.scrape_token
        scheme, _, presented = authorization.partition(" ")
        if (
            token is None
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(
                presented.strip().encode(), token.get_secret_value().encode()
            )
        ):
            raise AuthenticationFailed("this is not the metrics scrape token")
        return
    if config.loopback and is_loopback(client_host):
        return
    if config.scrape_token is not None:
        raise AuthenticationFailed("send the metrics scrape token as a bearer token")
    raise PermissionDenied(
        "metrics are served to clients on this host only (metrics.loopback); set "
        "metrics.scrape_token to scrape from elsewhere",
        code="metrics_loopback_only",
    )


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))
