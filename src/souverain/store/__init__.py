"""State that outlives a request: one SQLAlchemy layer over SQLite (default) or PostgreSQL."""
