"""The generator registry: every generator module registers on import of the generators."""

from __future__ import annotations

import subprocess
import sys


def test_every_generator_is_registered_whoever_imports_first():
    code = ("from mi_assert.prompts.generators import available_generators; "
            "print(','.join(available_generators()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().split(",") == ["factual_recall", "induction_pairs", "ioi", "repeated"]
