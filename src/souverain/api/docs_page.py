"""`GET /docs`: the API reference for people, a small page that renders /openapi.json.

Its three files ship in the package (api/docs_static/, declared as package data in
pyproject.toml) and are the only things it loads besides /openapi.json: a gateway that
runs offline documents itself offline, and the Content-Security-Policy forbids the page
from fetching anything from another origin.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

from ..errors import NotFound

ASSETS = {
    "docs.js": "text/javascript; charset=utf-8",
    "docs.css": "text/css; charset=utf-8",
}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@cache
def _asset(name: str) -> bytes:
    return (resources.files("souverain.api") / "docs_static" / name).read_bytes()


async def docs(request: Request) -> Response:
    return Response(_asset("index.html"), media_type="text/html; charset=utf-8", headers=HEADERS)


async def docs_asset(request: Request) -> Response:
    name = request.path_params["asset"]
    media_type = ASSETS.get(name)
    if media_type is None:  # only the page's own files: never a path into the package
        raise NotFound(f"no route {request.url.path}", code="unknown_url")
    return Response(_asset(name), media_type=media_type, headers=HEADERS)
