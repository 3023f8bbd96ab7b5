"""Report tests run pytest inside pytest (pytester, in-process). Import the heavy libraries
here, in the outer process: pytester forgets modules first imported by an inner run, and
importing torch a second time in one process crashes."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot  # noqa: E402,F401
import torch  # noqa: E402,F401
import transformer_lens  # noqa: E402,F401

import mi_assert.loading  # noqa: E402,F401
import mi_assert.stats.claims  # noqa: E402,F401
