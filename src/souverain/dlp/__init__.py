"""Data-loss prevention: detection of personal data and secrets in prompts (no actions)."""
