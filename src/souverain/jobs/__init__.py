"""One background-job mechanism: jobs claimed with leases in the database (docs/jobs.md)."""
