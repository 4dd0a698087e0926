"""Test configuration: reproducible hypothesis examples in CI (``CI`` set), exploration locally."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
