"""Which deployments may serve a request, in which order (policy and health plug in here)."""
