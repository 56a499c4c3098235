"""Sovereignty policy: which deployments may receive data of a given classification."""
