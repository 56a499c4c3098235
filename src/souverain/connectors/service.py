"""One app's connectors: the store, and a short cache of each connector's tool list.

Binding an agent's connector entry needs the server's tools before every turn; listing
them live each time would add a round trip (or a process start, for stdio) to every
step. They are kept `TOOLS_CACHE_S` seconds per process; the admin route
`GET /admin/v1/connectors/{id}/tools` always asks the server and refreshes the cache.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .sealing import Sealer
from .store import Connector, ConnectorStore

if TYPE_CHECKING:
    from mcp_types import Tool

    from ..state import AppState

TOOLS_CACHE_S = 30.0


class ConnectorService:
    def __init__(self, store: ConnectorStore, cache_s: float = TOOLS_CACHE_S) -> None:
        self.store = store
        self.cache_s = cache_s
        self._tools: dict[str, tuple[float, list[Tool]]] = {}

    async def tools(self, connector: Connector, *, fresh: bool = False) -> list[Tool]:
        cached = self._tools.get(connector.id)
        if cached is not None and not fresh and cached[0] > time.monotonic():
            return cached[1]
        from . import client  # the MCP SDK takes seconds to import: only once it is used

        tools = await client.list_tools(connector)
        self._tools[connector.id] = (time.monotonic() + self.cache_s, tools)
        return tools

    def forget(self, connector_id: str) -> None:
        self._tools.pop(connector_id, None)


def connector_service(state: AppState) -> ConnectorService:
    """The app's service, made on first use (its key file is created then, not before)."""
    if state.connectors is None:
        sealer = Sealer.from_data_dir(state.settings.data_dir)
        state.connectors = ConnectorService(ConnectorStore(state.database, sealer))
    return state.connectors
