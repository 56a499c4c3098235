"""Who is calling: API keys now; OIDC, tenants and roles with the identity issue."""
