"""The README's claim-file example runs as written (keeps the README true)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_claim_file_example_passes(pytester):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(b for b in blocks if "mi_model" in b and "def test_" in b)
    pytester.makepyfile(test_my_model=example)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
