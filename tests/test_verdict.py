"""assert_* = asserting(check_*): same arguments, records, returns or raises with the hint."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import mi_assert
from mi_assert import record
from mi_assert.stats import ClaimSpec
from mi_assert.stats.evidence import Evidence
from mi_assert.verdict import ClaimFailed, asserting


def check_mean_above(values, threshold: float = 0.5, *, seed: int = 0) -> Evidence:
    """Claim: the mean of ``values`` exceeds ``threshold``."""
    return ClaimSpec("mean above", "value", {seed: np.asarray(values, float)}, threshold=threshold,
                     hint="look at the smallest values").evaluate()


assert_mean_above = asserting(check_mean_above)


def test_the_assertion_has_the_checks_name_signature_and_documentation():
    assert assert_mean_above.__name__ == "assert_mean_above"
    assert inspect.signature(assert_mean_above) == inspect.signature(check_mean_above)
    assert "the mean of ``values`` exceeds" in assert_mean_above.__doc__
    assert "ClaimFailed" in assert_mean_above.__doc__


def test_passes_return_the_evidence_and_record_it():
    values = np.linspace(0.8, 1.2, 20)
    with record.recording() as rec:
        ev = assert_mean_above(values)
    assert ev.passed and [r.evidence for r in rec.peek()] == [ev]


def test_failures_raise_with_the_table_and_the_hint():
    values = np.linspace(0.0, 0.4, 20)
    assert not check_mean_above(values).passed  # the check itself never raises
    with pytest.raises(ClaimFailed) as err:
        assert_mean_above(values)
    assert "look at the smallest values" in str(err.value)
    assert "<= threshold 0.500: FAIL" in str(err.value)
    assert err.value.evidence.hint == "look at the smallest values"


def _public_assertions():
    return sorted(n for n in mi_assert.__all__ if n.startswith("assert_"))


@pytest.mark.parametrize("name", _public_assertions())
def test_every_public_assertion_is_its_check(name):
    assertion = getattr(mi_assert, name)
    check = getattr(mi_assert, "check_" + name[len("assert_"):])
    assert assertion.__wrapped__ is check
    assert inspect.signature(assertion) == inspect.signature(check)


def test_lazy_submodules_and_names_are_reachable_from_the_package():
    import subprocess
    import sys

    code = ("import mi_assert as m, sys; assert 'torch' not in sys.modules; "
            "print(m.zoo.available()[:1], m.causal.check_patching_recovery.__name__, "
            "m.sae.load_sae.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "planted-induction" in out.stdout or "attn-only" in out.stdout
    assert "check_patching_recovery" in out.stdout and "load_sae" in out.stdout
