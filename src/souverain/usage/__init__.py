"""Usage: one row per model call (recorder.py), and the reports built from them (report.py)."""
