"""Fixtures for the IOI suites: the trained ioi-small seeds (skipped when absent)."""

from __future__ import annotations

import pytest

IOI_SMALL_SEEDS = (0, 1, 2)


@pytest.fixture(scope="module", params=IOI_SMALL_SEEDS, ids=[f"ioi-small@s{s}" for s in IOI_SMALL_SEEDS])
def ioi_small(request):
    from mi_assert import load_model
    from mi_assert.errors import ModelUnavailableError

    spec = f"ioi-small@s{request.param}"
    try:
        return load_model(spec, device="cpu")
    except ModelUnavailableError as exc:
        pytest.skip(f"{spec} checkpoint missing: {exc}")


@pytest.fixture(scope="module")
def ioi_circuit(ioi_small):
    """The circuit discovered on fit prompts (see ioi_discovery.py for the rule)."""
    from ioi_discovery import discover_ioi_circuit

    found = discover_ioi_circuit(ioi_small, seed=0)
    print(f"\n{ioi_small.spec}: discovered circuit {found.labels()} scores {found.scores} "
          f"(pruned on fit prompts: {found.pruned})")
    return found
