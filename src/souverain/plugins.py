"""Plugin hooks. Built-in engines use the same hook as third-party ones.

A plugin is a module with a function::

    def register_engines(register):
        "Call register(kind, factory, model_types=("chat",)) for each engine kind."

Installed plugins are found through the `souverain.plugins` entry-point group.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from types import ModuleType

from .backends.registry import EngineRegistry

DEFAULT_PLUGINS = (
    "souverain.backends.local_llama",
    "souverain.backends.local_embeddings",
    "souverain.backends.openai_compat",
    "souverain.backends.mistral",
)


def load_engine_registry(*, include_installed: bool = True) -> EngineRegistry:
    registry = EngineRegistry()
    modules: list[ModuleType] = [importlib.import_module(name) for name in DEFAULT_PLUGINS]
    if include_installed:
        modules += [ep.load() for ep in entry_points(group="souverain.plugins")]
    for module in modules:
        hook = getattr(module, "register_engines", None)
        if hook is not None:
            hook(registry.register)
    return registry
