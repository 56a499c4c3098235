"""Metrics and logs about the service, never about the content of requests."""
