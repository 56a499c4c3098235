"""The API's schemas, one module per surface, written to mirror the upstream specs.

Requests are pydantic models that accept unknown fields (the SDKs send new ones before
we know them); responses are built by the `render_*` functions here and nowhere else.
"""
