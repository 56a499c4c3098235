"""What a key minted by a non-admin may carry: never more than the key or token minting it.

A developer's key with an expiry, a classification floor, limits and a team used to mint
a key with none of them (issue 12, item 4). Now each control of the new key is decided
here, field by field, against the minting principal (its "parent"):

- a field the request leaves out is inherited: the parent's expiry, classification
  floor and ceiling, limits, team and scopes;
- a field the request sets looser than the parent's (a later or no expiry, a lower or
  no floor, a higher or no ceiling, a higher or no limit, another team, wider scopes)
  is refused with 403 `privilege_escalation`, naming the field; tighter is allowed.

Absent means unlimited, so an explicit `null` where the parent has a value is looser.
Keys minted by a token (an OIDC principal) live at most `identity.token_key_max_lifetime_s`
(a token's own `exp` is minutes away; its keys are for scripts that outlive it).

Admins (and the owner) manage keys for their tenant and are not bounded here, except that
a key an admin mints for itself with a token gets the same maximum lifetime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..context import Principal
from ..errors import PermissionDenied
from ..protocol.admin import KeyCreate

ESCALATION = "privilege_escalation"  # the 403 code of every refusal here
# Limit fields a key carries (the column names), and the name each has in `Limits`.
LIMIT_NAMES = {
    "rpm": "rpm",
    "tpm": "tpm",
    "max_concurrency": "concurrency",
    "budget_tokens": "budget_tokens",
    "budget_cost": "budget_cost",
}


class EscalationRefused(PermissionDenied):
    """A minted key asked for more than its parent holds."""

    default_code = ESCALATION


@dataclass(frozen=True, slots=True)
class Bounds:
    """The controls a new key gets once its request is held against its parent."""

    expires_at: float | None
    default_classification: str | None
    max_classification: str | None
    limits: dict[str, Any]
    team: str | None


def bound_expiry(body: KeyCreate, now: float, bound: float | None, source: str) -> float | None:
    """The key's expiry: the asked one if no later than `bound`, else 403; absent: `bound`."""
    asked_given = bool({"expires_in", "expires_at"} & body.model_fields_set)
    if not asked_given:
        return bound
    asked = body.expiry(now)
    if bound is not None and (asked is None or asked > bound):
        field = "expires_in" if body.expires_in is not None else "expires_at"
        raise EscalationRefused(
            f"{field}: the new key would outlive {source}, which expires at {int(bound)} "
            "(leave the expiry out to inherit it)",
            param=field,
        )
    return asked


def bounded(
    parent: Principal,
    body: KeyCreate,
    levels: Sequence[str],
    *,
    now: float,
    expiry_bound: float | None,
) -> Bounds:
    """Everything a non-admin's new key gets, inherited or checked against `parent`.

    `expiry_bound` is the parent's own expiry for a key, or now + the maximum lifetime
    for a token. Classification names must already be known levels (the caller checked).
    """
    source = "the key that mints it" if parent.key_id is not None else "your sign-in"
    given = body.model_fields_set
    return Bounds(
        expires_at=bound_expiry(body, now, expiry_bound, source),
        default_classification=_floor(parent, body, given, levels),
        max_classification=_ceiling(parent, body, given, levels),
        limits=_limits(parent, body),
        team=_team(parent, body, given),
    )


def _floor(
    parent: Principal, body: KeyCreate, given: set[str], levels: Sequence[str]
) -> str | None:
    held = parent.default_classification
    if "default_classification" not in given:
        return held
    asked = body.default_classification
    if held is not None and (asked is None or levels.index(asked) < levels.index(held)):
        raise EscalationRefused(
            f"default_classification: your key treats every request as at least {held!r}; "
            f"a key it mints cannot assume {asked or 'the policy default'!r}",
            param="default_classification",
        )
    return asked


def _ceiling(
    parent: Principal, body: KeyCreate, given: set[str], levels: Sequence[str]
) -> str | None:
    held = parent.max_classification
    if "max_classification" not in given:
        return held
    asked = body.max_classification
    if held is not None and (asked is None or levels.index(asked) > levels.index(held)):
        raise EscalationRefused(
            f"max_classification: your key may send data up to {held!r}, so a key it "
            f"mints cannot send {asked or 'any level'!r}",
            param="max_classification",
        )
    return asked


def parent_limits(parent: Principal) -> dict[str, Any]:
    """The parent key's own limits (not its user's, team's or tenant's: the child shares
    those through the same user, team and tenant). A token has none of its own."""
    if parent.key_id is None:
        return {}
    for demand in parent.quotas:
        if demand.scope.kind == "key" and demand.scope.id == str(parent.key_id):
            held = {column: getattr(demand.limits, name) for column, name in LIMIT_NAMES.items()}
            return {**held, "budget_period": demand.limits.budget_period}
    return {}


def _limits(parent: Principal, body: KeyCreate) -> dict[str, Any]:
    held = parent_limits(parent)
    asked = body.limits.values()
    limits: dict[str, Any] = {}
    for column in LIMIT_NAMES:
        cap = held.get(column)
        if column not in asked:
            limits[column] = cap
            continue
        value = asked[column]
        if cap is not None and (value is None or value > cap):
            raise EscalationRefused(
                f"limits.{column}: your key allows {cap}; a key it mints cannot allow "
                f"{'no limit' if value is None else value}",
                param=f"limits.{column}",
            )
        limits[column] = value
    has_budget = held.get("budget_tokens") is not None or held.get("budget_cost") is not None
    period = asked.get("budget_period", held.get("budget_period", "month"))
    if has_budget and period != held["budget_period"]:
        raise EscalationRefused(
            f"limits.budget_period: your key's budgets are per {held['budget_period']}; "
            "a key it mints counts over the same period",
            param="limits.budget_period",
        )
    limits["budget_period"] = period or "month"
    return limits


def _team(parent: Principal, body: KeyCreate, given: set[str]) -> str | None:
    """The team billed: the parent's. A key billed to no team may bill one of its
    holder's teams (checked by the route: membership)."""
    if "team" not in given:
        return parent.team
    if parent.team is not None and body.team != parent.team:
        raise EscalationRefused(
            f"team: your key is billed to team {parent.team!r}; a key it mints is too "
            "(its budgets cannot be left behind)",
            param="team",
        )
    return body.team


def narrowed(
    asked: Sequence[str] | None, given: bool, held: frozenset[str] | None, what: str
) -> list[str] | None:
    """A key's model or endpoint scopes: the parent's or narrower; absent: the parent's."""
    if held is None:
        return None if asked is None else list(asked)
    if not given:
        return sorted(held)
    if asked is None:
        raise EscalationRefused(
            f"{what}: your key is limited to {', '.join(sorted(held))}; "
            f"a key it mints cannot have every {what.rstrip('s')}",
            param=what,
        )
    beyond = sorted(set(asked) - held)
    if beyond:
        raise EscalationRefused(f"your key may not grant {what} {', '.join(beyond)}", param=what)
    return list(asked)
