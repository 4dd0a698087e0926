"""Examples that use gatorch (run from the repository root: ``python -m examples.<name>``)."""
