"""The served models: names and aliases, each with its ordered deployments."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..backends.base import Backend
from ..backends.registry import EngineRegistry
from ..config import ModelConfig, Settings
from ..errors import NotFound
from ..protocol.models import Capabilities, render_model


@dataclass(slots=True)
class ServedModel:
    config: ModelConfig
    backends: list[Backend]
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def id(self) -> str:
        return self.config.id

    def capabilities(self) -> Capabilities:
        # The first deployment is the reference; failover targets must be able to do as much.
        return self.backends[0].capabilities()

    def context_length(self) -> int:
        return self.config.max_context_length or self.backends[0].context_length()

    def describe(self) -> dict[str, object]:
        return render_model(
            model_id=self.id,
            created=self.created,
            owned_by=self.config.owned_by,
            capabilities=self.capabilities(),
            max_context_length=self.context_length(),
            aliases=self.config.aliases,
            description=self.config.description,
        )


def _unique_names(backends: list[Backend]) -> None:
    """Default names are `model@engine`; a second deployment of one engine gets `-2`..."""
    seen: dict[str, int] = {}
    for backend in backends:
        count = seen.get(backend.name, 0) + 1
        seen[backend.name] = count
        if count > 1:
            backend.name = f"{backend.name}-{count}"


class ModelCatalog:
    def __init__(self, models: list[ServedModel]) -> None:
        self.models = models
        self._by_name = {name: m for m in models for name in (m.id, *m.config.aliases)}

    @classmethod
    def from_settings(cls, settings: Settings, engines: EngineRegistry) -> ModelCatalog:
        served = []
        for i, model in enumerate(settings.models):
            backends = [
                engines.build(model, deployment, where=f"models.{i}.deployments.{j}")
                for j, deployment in enumerate(model.deployments)
            ]
            _unique_names(backends)
            served.append(ServedModel(config=model, backends=backends))
        return cls(served)

    def has(self, name: str) -> bool:
        return name in self._by_name

    def get(self, name: str) -> ServedModel:
        model = self._by_name.get(name)
        if model is None:
            raise NotFound(
                f"the model {name!r} does not exist or you do not have access to it",
                param="model",
                code="model_not_found",
            )
        return model

    def backends(self) -> list[Backend]:
        return [backend for model in self.models for backend in model.backends]
