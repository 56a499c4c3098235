"""An identity provider's signing keys (its JWKS), fetched over HTTP and cached.

Only public signature keys of three kinds are kept, each bound to the one algorithm it
may verify: RSA (>= 2048 bits) -> RS256, EC P-256 -> ES256, OKP Ed25519 -> EdDSA. A key
is never chosen by what the token claims about it beyond its `kid` and `alg`, so an
RSA key cannot be abused as an HMAC secret or an ECDSA key.

Fetching is rationed because tokens, and so `kid`s, come from anyone: an unknown `kid`
refreshes the set at most once per `REFRESH_MIN_INTERVAL_S`, concurrent refreshes share
one request, and a failed fetch is retried no sooner than `FAILURE_BACKOFF_S` later.
When the set is stale and the provider cannot be reached, nothing verifies (fail closed).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

logger = logging.getLogger(__name__)

REFRESH_MIN_INTERVAL_S = 10.0
FAILURE_BACKOFF_S = 1.0
MAX_JWKS_BYTES = 1 << 20
MIN_RSA_BITS = 2048

PublicKey = RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey


class KeyRejected(Exception):
    """No usable key for this token; the message is the reason, for the debug log."""


class JwksUnavailable(KeyRejected):
    """The key set could not be fetched, or is stale and could not be refreshed."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str | None
    alg: str  # the only algorithm this key verifies
    key: PublicKey


def parse_jwk(jwk: Any) -> SigningKey | None:
    """One JWK as a verification key, or None when it is not one we accept."""
    if not isinstance(jwk, dict):
        return None
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    if jwk.get("use", "sig") != "sig":
        return None
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    kty, crv = jwk.get("kty"), jwk.get("crv")
    # Only the public members are passed on: a JWKS that leaks a private key ("d")
    # must not leave private key material in our memory.
    try:
        key: PublicKey
        if kty == "RSA":
            rsa = RSAAlgorithm.from_jwk({"kty": "RSA", "n": jwk.get("n"), "e": jwk.get("e")})
            if not isinstance(rsa, RSAPublicKey) or rsa.key_size < MIN_RSA_BITS:
                return None
            alg, key = "RS256", rsa
        elif kty == "EC" and crv == "P-256":
            ec = ECAlgorithm.from_jwk({"kty": "EC", "crv": crv, "x": jwk["x"], "y": jwk["y"]})
            if not isinstance(ec, EllipticCurvePublicKey):
                return None
            alg, key = "ES256", ec
        elif kty == "OKP" and crv == "Ed25519":
            okp = OKPAlgorithm.from_jwk({"kty": "OKP", "crv": crv, "x": jwk["x"]})
            if not isinstance(okp, Ed25519PublicKey):
                return None
            alg, key = "EdDSA", okp
        else:
            return None
    except (PyJWTError, KeyError, TypeError, ValueError):
        return None
    # A key that names its algorithm may only be used with that one.
    if jwk.get("alg", alg) != alg:
        return None
    return SigningKey(kid=kid, alg=alg, key=key)


def parse_jwks(body: bytes) -> list[SigningKey]:
    """The usable keys of a JWKS document; ValueError when it is not a JWKS at all."""
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS document (no 'keys' list)")
    keys = [parsed for jwk in document["keys"] if (parsed := parse_jwk(jwk)) is not None]
    if len(keys) < len(document["keys"]):
        logger.debug("JWKS: skipped %d unusable keys", len(document["keys"]) - len(keys))
    return keys


class JwksFetcher:
    """The one HTTP client for every provider's JWKS, opened on first use."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def get(self, url: str) -> bytes:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        headers = {"Accept": "application/json"}
        async with self._session.get(url, headers=headers) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"larger than {MAX_JWKS_BYTES} bytes")
            return bytes(body)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class JwksCache:
    """One provider's key set: fresh for `cache_s`, refreshed on demand, rationed."""

    def __init__(
        self,
        provider: str,
        url: str,
        cache_s: float,
        fetcher: JwksFetcher,
        clock: Callable[[], float],
    ) -> None:
        self._provider = provider
        self._url = url
        self._cache_s = cache_s
        self._fetcher = fetcher
        self._clock = clock
        self._keys: list[SigningKey] = []
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last fetch, successful or not
        self._last_failed = False
        self._inflight: asyncio.Task[None] | None = None

    async def key_for(self, kid: str | None, alg: str) -> SigningKey:
        """The key that verifies a token with this header, or KeyRejected."""
        if self._stale():
            if self._inflight is None and self._backing_off():
                raise JwksUnavailable("key set unavailable (recent fetch failed)")
            await self._refresh()
            if self._stale():
                raise JwksUnavailable("key set unavailable (fetch failed)")
        found = self._find(kid, alg)
        if found is None and (self._inflight is not None or self._may_refresh()):
            await self._refresh()  # the provider may have rotated its keys
            found = self._find(kid, alg)
        if found is None:
            raise KeyRejected(f"no key with kid {kid!r:.100}")
        return found

    def _find(self, kid: str | None, alg: str) -> SigningKey | None:
        candidates = [k for k in self._keys if kid is None or k.kid == kid]
        if not candidates:
            return None
        matching = [k for k in candidates if k.alg == alg]
        if not matching:
            raise KeyRejected(f"kid {kid!r:.100} is not a key for {alg}")
        if kid is None and len(matching) > 1:
            raise KeyRejected(f"no kid, and {len(matching)} keys could verify {alg}")
        return matching[0]

    def _stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at >= self._cache_s

    def _backing_off(self) -> bool:
        return (
            self._last_failed
            and self._attempted_at is not None
            and self._clock() - self._attempted_at < FAILURE_BACKOFF_S
        )

    def _may_refresh(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= REFRESH_MIN_INTERVAL_S
        )

    async def _refresh(self) -> None:
        # Every caller waits for the same fetch; shield() keeps one caller's
        # cancellation from cancelling the fetch the others are waiting for.
        if self._inflight is None:
            self._attempted_at = self._clock()
            self._inflight = asyncio.create_task(self._fetch())
            self._inflight.add_done_callback(self._fetched)
        await asyncio.shield(self._inflight)

    def _fetched(self, task: asyncio.Task[None]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _fetch(self) -> None:
        try:
            keys = parse_jwks(await self._fetcher.get(self._url))
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
            self._last_failed = True
            # No stack trace: the reason is what an operator needs.
            logger.warning(
                "JWKS of identity provider %r from %s unavailable: %s",
                self._provider,
                self._url,
                str(error) or type(error).__name__,
            )
            return
        self._keys, self._fetched_at, self._last_failed = keys, self._clock(), False
        logger.debug("JWKS of %r: %d usable keys", self._provider, len(keys))

    async def aclose(self) -> None:
        task = self._inflight
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
