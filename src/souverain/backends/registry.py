"""Engine kinds by name; plugins add theirs through `register`."""

from __future__ import annotations

from collections.abc import Callable

from ..config import DeploymentConfig, ModelConfig
from ..errors import ConfigError
from .base import Backend

BackendFactory = Callable[[ModelConfig, DeploymentConfig], Backend]


class EngineRegistry:
    def __init__(self) -> None:
        self._factories: dict[tuple[str, str], BackendFactory] = {}

    def register(
        self, kind: str, factory: BackendFactory, *, model_types: tuple[str, ...] = ("chat",)
    ) -> None:
        """Make `engine: kind` usable for models of the given types."""
        for model_type in model_types:
            self._factories[(kind, model_type)] = factory

    def kinds(self) -> set[str]:
        return {kind for kind, _ in self._factories}

    def build(self, model: ModelConfig, deployment: DeploymentConfig, where: str) -> Backend:
        factory = self._factories.get((deployment.engine, model.type))
        if factory is None:
            known = ", ".join(sorted(self.kinds()))
            raise ConfigError(
                f"{where}.engine: no engine {deployment.engine!r} for {model.type} models"
                f" (known engines: {known})"
            )
        return factory(model, deployment)
