"""Fetching a document over http(s) for `/v1/ocr`, when `ocr.fetch_urls` is on.

A URL a caller names makes the gateway open a connection from inside the network, so
everything here is about what that connection may reach and what the caller learns:

* the URL's scheme, host and port must match an entry of `ocr.fetch_allowed_hosts`
  (ocr/origins.py); with no entries, any host, but only on port 80 (http) or 443 (https);
* the host is resolved once, here, and every address it resolves to is checked: one
  that is not a public address (loopback, private, link-local, carrier-grade NAT,
  multicast, reserved; IPv4 inside IPv6 too) refuses the URL, unless it lies in
  `ocr.fetch_allowed_networks`;
* the connection goes to those checked addresses and no others (a resolver that
  answers only them), so a second DNS answer (rebinding) cannot switch it elsewhere;
  no redirects are followed, no proxy from the environment is used, and compressed
  bodies are not expanded;
* whatever fails after the allow-list (the name does not resolve, a refused address, a
  closed port, a port that never answers, an answer that is not HTTP, a status other
  than 200) gives the caller the same error, so the gateway cannot be used to map
  the network; the reason goes to the server's log.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from ..config import OcrConfig
from ..errors import InvalidRequest, PayloadTooLarge
from .origins import DEFAULT_PORTS, parse_origin

log = logging.getLogger("souverain.ocr")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class _Refused(Exception):
    """A fetch that failed; its text is for the log only."""


async def fetch(url: str, config: OcrConfig, *, param: str) -> bytes:
    if not config.fetch_urls:
        raise InvalidRequest(
            f"{param}: this gateway does not fetch documents from URLs (ocr.fetch_urls is "
            "off, so that callers cannot make it reach other hosts or send data out); "
            "send the document inline as a data: URL (data:application/pdf;base64,...)",
            param=param,
            code="url_fetch_disabled",
        )
    target = _allowed_url(url, config, param)
    try:
        async with asyncio.timeout(config.fetch_timeout_s):
            return await _get(target, config)
    except PayloadTooLarge:
        raise
    except (_Refused, aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        log.info("ocr: fetching %s failed: %s: %s", target, type(exc).__name__, exc)
        raise InvalidRequest(
            f"{param}: the document could not be fetched from that URL",
            param=param,
            code="document_fetch_failed",
        ) from None


def _allowed_url(url: str, config: OcrConfig, param: str) -> URL:
    scheme, host, port = "", None, None
    try:
        target = URL(url)
        scheme, host, port = target.scheme.lower(), target.raw_host, target.port
    except (ValueError, TypeError, UnicodeError):
        pass
    if not host or port is None or scheme not in DEFAULT_PORTS:
        raise InvalidRequest(f"{param}: not a valid http(s) URL", param=param)
    host = host.lower().rstrip(".")
    origins = [parse_origin(entry) for entry in config.fetch_allowed_hosts]
    if origins:
        allowed = any(origin.allows(scheme, host, port) for origin in origins)
    else:
        allowed = port == DEFAULT_PORTS[scheme]
    if not allowed:
        raise InvalidRequest(
            f"{param}: {scheme}://{host}:{port} is not in ocr.fetch_allowed_hosts"
            + ("" if origins else " (with none listed, only ports 80 and 443)"),
            param=param,
            code="url_not_allowed",
        )
    return target


async def _get(target: URL, config: OcrConfig) -> bytes:
    host = target.raw_host or ""
    addresses = await _checked_addresses(host, target.port or 0, config.fetch_allowed_networks)
    connector = aiohttp.TCPConnector(
        resolver=_PinnedResolver(host, addresses), use_dns_cache=False, force_close=True
    )
    async with (
        aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=False) as s,
        s.get(target, allow_redirects=False, headers={"Accept-Encoding": "identity"}) as response,
    ):
        if response.status != 200:
            raise _Refused(f"HTTP {response.status}")
        declared = response.content_length
        if declared is not None and declared > config.max_document_bytes:
            raise too_large(config)
        body = bytearray()
        async for chunk in response.content.iter_chunked(65536):
            body += chunk
            if len(body) > config.max_document_bytes:
                raise too_large(config)
        return bytes(body)


async def _checked_addresses(
    host: str, port: int, allowed: Sequence[IpNetwork]
) -> list[ResolveResult]:
    """Every address the host resolves to, each one checked; any refused one refuses all."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _Refused(f"{host} does not resolve ({exc})") from None
    results: list[ResolveResult] = []
    for family, _, proto, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = str(sockaddr[0])
        why = refusal(address, allowed)
        if why is not None:
            raise _Refused(f"{host} resolves to {address}, {why} (ocr.fetch_allowed_networks)")
        results.append(
            ResolveResult(
                hostname=host, host=address, port=port, family=family, proto=proto, flags=NUMERIC
            )
        )
    if not results:
        raise _Refused(f"{host} has no IPv4 or IPv6 address")
    return results


def refusal(address: str, allowed: Sequence[IpNetwork]) -> str | None:
    """Why the gateway may not connect to this address; None when it may."""
    ip = effective_address(ipaddress.ip_address(address.split("%", 1)[0]))
    if any(ip.version == network.version and ip in network for network in allowed):
        return None
    if ip.is_loopback:
        return "a loopback address"
    if not ip.is_global or ip.is_multicast:
        return "not a public address"
    return None


def effective_address(ip: IpAddress) -> IpAddress:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo, NAT64), else itself."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


class _PinnedResolver(AbstractResolver):
    """Answers the checked addresses for the checked host, and nothing for any other."""

    def __init__(self, host: str, addresses: list[ResolveResult]) -> None:
        self.host = host
        self.addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        if host.lower().rstrip(".") != self.host.lower().rstrip("."):
            raise OSError(f"{host} was not checked")
        return [
            result for result in self.addresses if family in (socket.AF_UNSPEC, result["family"])
        ]

    async def close(self) -> None:
        return None


def too_large(config: OcrConfig) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the document is larger than {config.max_document_bytes} bytes (ocr.max_document_bytes)",
        param="document",
    )
