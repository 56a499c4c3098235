"""The admin routes' lines of the OpenAPI table (`/admin/v1/...`); merged into
api/openapi_routes.py, whose docstring says how to add a line."""

from __future__ import annotations

from ..connectors.schemas import ConnectorCreate
from ..protocol.admin import (
    ErasureRequest,
    KeyCreate,
    LimitsUpdate,
    MemberAdd,
    ProviderTarget,
    TeamCreate,
    TenantCreate,
    UserCreate,
    UserUpdate,
)
from ..usage.report import GROUPS
from .openapi_schemas import AnyObject, ApiKey, Deleted, ObjectList, TeamOrUser, Tenant
from .openapi_spec import (
    DAY,
    LIBRARIES_CHOICE,
    TENANT_LIBRARIES_CHOICE,
    TIMESTAMP,
    Operation,
    Param,
    comma_list,
    op,
)
from .openapi_spec import int_param as _int
from .openapi_spec import text_param as _text

ADMIN = "/admin/v1"

ADMIN_OPERATIONS: dict[str, Operation] = {
    # ---- providers and the kill switch --------------------------------------------------------
    f"GET {ADMIN}/providers": op(
        "Deployments, their health and the cuts", "providers.read", tag="admin", ok=AnyObject
    ),
    f"POST {ADMIN}/providers/cut": op(
        "Cut a deployment, operator or jurisdiction",
        "providers.manage",
        tag="admin",
        body=ProviderTarget,
        ok=AnyObject,
    ),
    f"POST {ADMIN}/providers/restore": op(
        "Lift a cut", "providers.manage", tag="admin", body=ProviderTarget, ok=AnyObject
    ),
    # ---- directory ------------------------------------------------------------------------------
    f"POST {ADMIN}/tenants": op(
        "Create a tenant",
        "tenants.manage",
        tag="directory",
        body=TenantCreate,
        ok=Tenant,
        status=201,
        errors=(409,),
    ),
    f"GET {ADMIN}/tenants": op("List tenants", "directory.read", tag="directory", ok=ObjectList),
    f"GET {ADMIN}/tenants/{{tenant_id}}": op(
        "A tenant", "directory.read", tag="directory", ok=Tenant
    ),
    f"PATCH {ADMIN}/tenants/{{tenant_id}}": op(
        "Change a tenant's limits", "tenants.manage", tag="directory", body=LimitsUpdate, ok=Tenant
    ),
    f"DELETE {ADMIN}/tenants/{{tenant_id}}": op(
        "Delete a tenant",
        "tenants.manage",
        tag="directory",
        ok=Deleted,
        query=(TENANT_LIBRARIES_CHOICE,),
        errors=(409,),
    ),
    f"POST {ADMIN}/teams": op(
        "Create a team",
        "directory.manage",
        tag="directory",
        body=TeamCreate,
        ok=TeamOrUser,
        status=201,
        errors=(404, 409),  # a tenant, team or user it names may not exist
    ),
    f"GET {ADMIN}/teams": op("List teams", "directory.read", tag="directory", ok=ObjectList),
    f"GET {ADMIN}/teams/{{team_id}}": op(
        "A team", "directory.read", tag="directory", ok=TeamOrUser
    ),
    f"PATCH {ADMIN}/teams/{{team_id}}": op(
        "Change a team's limits",
        "directory.manage",
        tag="directory",
        body=LimitsUpdate,
        ok=TeamOrUser,
    ),
    f"DELETE {ADMIN}/teams/{{team_id}}": op(
        "Delete a team", "directory.manage", tag="directory", ok=Deleted, errors=(409,)
    ),
    f"POST {ADMIN}/teams/{{team_id}}/members": op(
        "Add a member to a team",
        "directory.manage",
        tag="directory",
        body=MemberAdd,
        ok=TeamOrUser,
        errors=(409,),
    ),
    f"DELETE {ADMIN}/teams/{{team_id}}/members/{{user_id}}": op(
        "Remove a member from a team", "directory.manage", tag="directory", ok=TeamOrUser
    ),
    f"POST {ADMIN}/users": op(
        "Create a user or service account",
        "directory.manage",
        tag="directory",
        body=UserCreate,
        ok=TeamOrUser,
        status=201,
        errors=(404, 409),  # a tenant, team or user it names may not exist
    ),
    f"GET {ADMIN}/users": op("List users", "directory.read", tag="directory", ok=ObjectList),
    f"GET {ADMIN}/users/{{user_id}}": op(
        "A user", "directory.read", tag="directory", ok=TeamOrUser
    ),
    f"PATCH {ADMIN}/users/{{user_id}}": op(
        "Change a user's role, limits or state",
        "directory.manage",
        tag="directory",
        body=UserUpdate,
        ok=TeamOrUser,
    ),
    f"DELETE {ADMIN}/users/{{user_id}}": op(
        "Delete a user",
        "directory.manage",
        tag="directory",
        ok=Deleted,
        query=(LIBRARIES_CHOICE,),
        errors=(409,),
    ),
    f"GET {ADMIN}/roles": op(
        "Roles and their permissions", "directory.read", tag="directory", ok=ObjectList
    ),
    # ---- MCP connectors (docs/connectors.md) ----------------------------------------------------
    f"POST {ADMIN}/connectors": op(
        "Register an MCP connector (stdio: owner only)",
        "connectors.manage",
        tag="connectors",
        body=ConnectorCreate,
        ok=AnyObject,
        status=201,
        errors=(404, 409),
    ),
    f"GET {ADMIN}/connectors": op(
        "The tenant's connectors", "connectors.manage", tag="connectors", ok=ObjectList
    ),
    f"GET {ADMIN}/connectors/{{connector_id}}": op(
        "A connector (secrets masked)", "connectors.manage", tag="connectors", ok=AnyObject
    ),
    f"DELETE {ADMIN}/connectors/{{connector_id}}": op(
        "Delete a connector", "connectors.manage", tag="connectors", ok=Deleted
    ),
    f"GET {ADMIN}/connectors/{{connector_id}}/tools": op(
        "The connector's tools, listed live",
        "connectors.manage",
        tag="connectors",
        ok=ObjectList,
        errors=(502, 504),
    ),
    # ---- keys and usage ---------------------------------------------------------------------
    f"POST {ADMIN}/keys": op(
        "Create an API key (its secret is shown once)",
        "keys.own",
        tag="keys",
        body=KeyCreate,
        ok=ApiKey,
        status=201,
        errors=(404, 409),  # a tenant, team or user it names may not exist
    ),
    f"GET {ADMIN}/keys": op(
        "List the keys the caller may see", "keys.own", tag="keys", ok=ObjectList
    ),
    f"GET {ADMIN}/keys/{{key_id}}": op("A key", "keys.own", tag="keys", ok=ApiKey),
    f"DELETE {ADMIN}/keys/{{key_id}}": op("Revoke a key", "keys.own", tag="keys", ok=ApiKey),
    f"GET {ADMIN}/usage": op(
        "Usage, aggregated",
        "usage.read",
        tag="usage",
        ok=AnyObject,
        query=(
            comma_list("group_by", f"Comma-separated: {', '.join(GROUPS)}.", GROUPS),
            _text("tenant", "Owner only: one tenant."),
            Param("start", DAY, "First UTC day, inclusive."),
            Param("end", DAY, "Last UTC day, inclusive."),
        ),
    ),
    # ---- audit log ----------------------------------------------------------------------------
    f"GET {ADMIN}/audit/leaves": op(
        "Audit leaves of the caller's tenant",
        "audit.read",
        tag="audit",
        ok=AnyObject,
        errors=(404,),
        query=(
            _text("tenant", "Owner only: one tenant."),
            Param("since", TIMESTAMP, "Unix seconds, inclusive."),
            Param("until", TIMESTAMP, "Unix seconds, exclusive."),
            _text("principal", ""),
            _text("model", ""),
            _text("outcome", ""),
            _text("kind", ""),
            _int("after", "First leaf index."),
            _int("limit", "At most 1000 are returned."),
        ),
    ),
    f"GET {ADMIN}/audit/checkpoint": op(
        "The latest signed checkpoint", "audit.read", tag="audit", ok=AnyObject, errors=(404,)
    ),
    f"GET {ADMIN}/audit/proof/inclusion": op(
        "Inclusion proof of a leaf",
        "audit.read",
        tag="audit",
        ok=AnyObject,
        errors=(404,),
        query=(
            _int("index", "The leaf.", required=True),
            _int("size", "Tree size (a signed checkpoint's, for tenants).", required=True),
        ),
    ),
    f"GET {ADMIN}/audit/proof/consistency": op(
        "Consistency proof between two sizes",
        "audit.read",
        tag="audit",
        ok=AnyObject,
        errors=(404,),
        query=(_int("old_size", "", required=True), _int("new_size", "", required=True)),
    ),
    f"GET {ADMIN}/audit/verify": op(
        "Verify the whole log", "audit.read", tag="audit", ok=AnyObject, errors=(404,)
    ),
    f"POST {ADMIN}/audit/erase": op(
        "Crypto-shred a data subject's retained bodies",
        "audit.erase",
        tag="audit",
        body=ErasureRequest,
        ok=AnyObject,
        errors=(404,),
    ),
}
