"""The agent runtime: turns of a conversation as pipeline model calls (Responses API)."""
