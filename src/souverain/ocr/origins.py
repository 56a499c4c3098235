"""`ocr.fetch_allowed_hosts` entries: a scheme, a host pattern and a port, all three checked.

An entry is `[scheme://]host[:port]`: `https://docs.example.org`, `http://10.0.0.7:8080`,
`https://*.example.org:8443`, `https://[2001:db8::1]`. Without a scheme it means https;
without a port, the scheme's default port (80, 443). The host is a shell-style pattern
matched against the URL's host in its ASCII form (lower case, IDNA, no trailing dot).
A URL is allowed only when some entry matches its scheme, its host and its port: an
allowed host does not open its other ports.

This module imports nothing from the rest of Souverain, so that the configuration can
check the entries when it loads (a bad entry stops the start, naming the key).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, IPvAnyNetwork

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str  # a shell-style pattern, lower case
    port: int

    def allows(self, scheme: str, host: str, port: int) -> bool:
        return scheme == self.scheme and port == self.port and fnmatch.fnmatchcase(host, self.host)


def parse_origin(entry: str) -> Origin:
    """One allow-list entry; ValueError saying what is wrong with it."""
    text = entry.strip()
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "https", text
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"{entry!r}: the scheme must be http or https")
    if any(char in rest for char in "/?#@\\ "):
        raise ValueError(f"{entry!r}: give a scheme, a host and a port only (no path or user)")
    host, port_text = _split_port(rest, entry)
    host = host.lower().rstrip(".")
    if not host:
        raise ValueError(f"{entry!r}: the host is missing")
    port = DEFAULT_PORTS[scheme] if port_text is None else _port(port_text, entry)
    return Origin(scheme, host, port)


def check_entry(entry: str) -> str:
    """The configuration's validator: the entry as written, once it parses."""
    parse_origin(entry)
    return entry


AllowedOrigin = Annotated[str, AfterValidator(check_entry)]  # ocr.fetch_allowed_hosts
Network = IPvAnyNetwork  # ocr.fetch_allowed_networks


def _split_port(rest: str, entry: str) -> tuple[str, str | None]:
    if rest.startswith("["):  # an IPv6 literal
        close = rest.find("]")
        if close < 0:
            raise ValueError(f"{entry!r}: an IPv6 address needs its closing bracket")
        host, after = rest[1:close], rest[close + 1 :]
        if after and not after.startswith(":"):
            raise ValueError(f"{entry!r}: only a port may follow the IPv6 address")
        return host, after[1:] if after else None
    host, colon, port = rest.partition(":")
    return host, port if colon else None


def _port(text: str, entry: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return int(text)
