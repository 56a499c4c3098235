"""`identity:` in the configuration: who may call, and how long a token's keys live.

Its own module, like `server_config.py`, so that identity's settings sit with identity;
`config.Settings` includes it. docs/identity.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .oidc import IdentityProviderConfig


class IdentityConfig(BaseModel):
    """Who may call: API keys (always) and the institution's OIDC providers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: tuple[IdentityProviderConfig, ...] = ()
    key_cache_s: float = Field(default=30.0, ge=0, description="How long a verified key is kept.")
    # A key minted by a signed-in (OIDC) user belongs to that user's directory entry and
    # lives at most this long: the gateway never hears that the identity provider
    # disabled someone, so this bounds how long their keys outlive them (docs/identity.md).
    token_key_max_lifetime_s: float = Field(
        default=86_400.0,
        ge=60,
        le=90 * 86_400,
        description="The longest a key minted with an identity provider's token lives.",
    )
