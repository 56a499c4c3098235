"""Engines: the only code that sends bytes to a model.

Every engine kind, ours included, registers through the same hook (`plugins.py`).
"""
