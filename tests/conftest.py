"""Settings shared by every test suite."""

from __future__ import annotations

import os

from hypothesis import settings

# In CI, property tests replay the same generated examples every run, so a submission never
# fails by chance; a developer's run (no CI variable) keeps searching with fresh examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
