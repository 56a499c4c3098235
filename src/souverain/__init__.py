"""Souverain: a sovereign AI gateway."""

__version__ = "0.1.0"
