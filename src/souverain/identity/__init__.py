"""Who is calling: API keys (keys.py), identity providers' tokens (oidc.py), the directory of
tenants, teams and users (directory.py), and what each role may do (rbac.py)."""
