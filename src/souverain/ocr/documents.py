"""Getting the document's bytes: `data:` URLs always, http(s) only when configured.

A sovereign gateway must not fetch whatever URL a caller names: that would let any API
key make the gateway reach hosts on its internal network (server-side request forgery)
and send data out. So `document_url`/`image_url` pointing at http(s) are refused unless
`ocr.fetch_urls` is true; then ocr/fetch.py fetches them, from allowed scheme, host and
port only, never from private or loopback addresses unless allowed, with a size cap, a
timeout and no redirects.
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal
from urllib.parse import unquote_to_bytes, urlsplit

from ..config import OcrConfig
from ..errors import InvalidRequest
from .fetch import fetch, too_large

DocumentKind = Literal["pdf", "image"]
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*")  # PNG JPEG TIFF


def sniff(data: bytes) -> DocumentKind:
    """What the bytes are, by their first bytes (a declared MIME type is not trusted)."""
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    raise InvalidRequest(
        "unsupported document type: send a PDF, or a PNG, JPEG, WebP or TIFF image",
        param="document",
    )


async def load_document(url: str, config: OcrConfig, *, param: str) -> bytes:
    scheme = urlsplit(url).scheme.lower() if ":" in url else ""
    if scheme == "data":
        data = decode_data_url(url, param=param)
    elif scheme in ("http", "https"):
        data = await fetch(url, config, param=param)
    else:
        raise InvalidRequest(
            f"{param} must be a data: URL (data:application/pdf;base64,...)"
            + (" or an http(s) URL" if config.fetch_urls else ""),
            param=param,
        )
    if not data:
        raise InvalidRequest("the document is empty", param=param)
    if len(data) > config.max_document_bytes:
        raise too_large(config)
    return data


def decode_data_url(url: str, *, param: str) -> bytes:
    header, comma, payload = url.partition(",")
    if not comma:
        raise InvalidRequest(f"{param}: a data: URL needs a comma before its data", param=param)
    if header.lower().endswith(";base64"):
        try:
            return base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(
                f"{param}: the data: URL is not valid base64", param=param
            ) from None
    return unquote_to_bytes(payload)
