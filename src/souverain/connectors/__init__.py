"""MCP connectors: MCP servers a tenant admin registers, whose tools agents may call.

    store.py     the tenant's connectors; headers and environment sealed, never returned
    sealing.py   the connector key (data_dir/connectors.key) and AES-GCM around secrets
    schemas.py   what an admin sends to register one, checked at the edge
    client.py    the official `mcp` SDK, confined to the registered address, with timeouts
    service.py   the store and a short cache of each connector's tool list, per app
    tools.py     `connector_tools`: an agent's connector entry -> BoundTools (agents/tools.py)

A connector reaches only the address it was registered with: redirects to another origin
are refused, never followed (client.py).
"""
