"""IOI circuit claims for each training seed of ioi-small.

The circuit is discovered on fit prompts/templates (ioi_discovery.py; at most a third of the
model's heads) and then stated as claims checked on *held-out templates* (``prompts="ioi"``
draws ``make_split(...).heldout`` per seed, which uses templates the model never trained on).
Thresholds are fixed up front:

* patching the circuit's heads (denoise, ABC corruption) recovers > 50% of the logit difference;
* that recovery beats more than 90% of random same-size head sets (100 seeded draws from all
  heads, one unit per draw, judged by the engine at 0.05: Shi et al. 2024's sufficiency-vs-random test; rule in
  ioi_random_control.py);
* the circuit is faithful: with every other head mean-ablated over the ABC distribution
  (Wang et al.'s ablation), it keeps > 50% of the full model's logit difference;
* the circuit is minimal: every head has some K with a marginal effect > 1% of F(M).

Each test checks the claim without raising (``check_*``), asserts the structure of the evidence
(a plain ``assert``: a wrong structure fails loudly, also under an xfail marker), and only then
raises ``ClaimFailed`` through :func:`mi_assert.verdict.raise_if_failed`. Known-weak claims are
strict xfails that catch ``ClaimFailed`` only.
"""

from __future__ import annotations

import math

import pytest
from ioi_discovery import max_circuit_heads
from ioi_random_control import N_DRAWS, control_evidence, random_circuit_control

import mi_assert
from mi_assert.verdict import ClaimFailed, raise_if_failed

#: Measured on the committed checkpoints (2026-12-01) with circuits capped at a third of the
#: heads (4 of 12; circuits s0 L0H0 L0H2 L0H3 L1H1, s1 L0H2 L1H1 L2H0, s2 L1H0 L1H1), held-out
#: seeds 0 and 1 (the worst row is quoted). Kept as strict xfails that catch ClaimFailed only, so
#: a retrained model (or a better discovery rule) that fixes one makes the run fail until its
#: marker is removed. These tiny models spread IOI over most heads: a third of the heads chosen
#: by single-head scores recovers less than half the logit difference on s1/s2 and does not beat
#: 90% of random same-size head sets on any seed (it beats 79-98% of them); on s0 the three
#: layer-0 heads are redundant given L1H1 on held-out templates, and s2's two heads keep less
#: than half the model's logit difference once the other ten are mean-ablated.
KNOWN_WEAK = {
    ("ioi-small@s1", "recovery"): "s1: held-out recovery 0.40 (bound 0.31) <= 0.5",
    ("ioi-small@s2", "recovery"): "s2: held-out recovery 0.40 (bound 0.32) <= 0.5",
    ("ioi-small@s0", "random"): "s0: beats 79/100 and 81/100 random same-size sets (bound 0.71) <= 0.9",
    ("ioi-small@s1", "random"): "s1: beats 89/100 random same-size sets on seed 1 (bound 0.82) <= 0.9",
    ("ioi-small@s2", "random"): "s2: beats 93/100 random same-size sets on seed 1 (bound 0.87) <= 0.9",
    ("ioi-small@s2", "faithful"): "s2: held-out faithfulness 0.43 (bound 0.29) <= 0.5",
    ("ioi-small@s0", "minimal"): "s0: 3 of 4 heads (L0H0 L0H2 L0H3) fail minimality (worst bound -0.15)",
    ("ioi-small@s2", "minimal"): "s2: 1 of 2 heads (L1H1) fails minimality (bound -0.05)",
}


def _expect_known_weak(request: pytest.FixtureRequest, spec: str, claim: str) -> None:
    reason = KNOWN_WEAK.get((spec, claim))
    if reason is not None:
        request.applymarker(pytest.mark.xfail(strict=True, raises=ClaimFailed, reason=reason))


HELDOUT_SEEDS = [0, 1]
N_PROMPTS = 48
PROMPT_KWARGS = {"n_prompts": N_PROMPTS, "corruption": "abc"}
HELDOUT = {"prompts": "ioi", "seeds": HELDOUT_SEEDS, "prompt_kwargs": PROMPT_KWARGS}


def _check_structure(ev, n_rows: int, n: int) -> None:
    """The evidence has one row per seed, each on ``n`` units (not part of the claim)."""
    assert len(ev.per_seed) == n_rows, ev.table()
    assert all(row.n == n for row in ev.per_seed), ev.table()


@pytest.fixture(scope="module")
def circuit(ioi_small, ioi_circuit):
    """The discovered heads, after the structural checks every claim relies on."""
    heads = ioi_circuit.heads
    assert 2 <= len(heads) <= max_circuit_heads(ioi_small), ioi_circuit.labels()
    assert len(set(heads)) == len(heads), ioi_circuit.labels()
    return heads


@pytest.fixture(scope="module")
def heldout_recovery(ioi_small, circuit):
    ev = mi_assert.check_patching_recovery(ioi_small, components=circuit, min_recovery=0.5,
                                           **HELDOUT)
    _check_structure(ev, len(HELDOUT_SEEDS), N_PROMPTS)
    return ev


def test_circuit_recovers_the_logit_difference(request, ioi_small, heldout_recovery):
    _expect_known_weak(request, ioi_small.spec, "recovery")
    print(heldout_recovery)
    raise_if_failed(heldout_recovery)


def test_circuit_beats_random_same_size_circuits(request, ioi_small, circuit, heldout_recovery):
    """Shi et al.'s sufficiency test: the circuit's recovery beats > 90% of random same-size
    head sets drawn from all heads (see ioi_random_control.py). Never skipped."""
    _expect_known_weak(request, ioi_small.spec, "random")
    controls = [random_circuit_control(ioi_small, circuit, seed, PROMPT_KWARGS)
                for seed in HELDOUT_SEEDS]
    for c in controls:  # the batched measurement agrees with the library's recovery
        lib = next(r.estimate for r in heldout_recovery.per_seed if r.seed == c.prompt_seed)
        assert math.isclose(c.circuit_recovery, lib, abs_tol=1e-4), (c.circuit_recovery, lib)
        assert len(c.random_recovery) == N_DRAWS and c.n_prompts == N_PROMPTS
        assert all(len(s) == len(circuit) for s in c.random_sets)
    ev = control_evidence(controls, ioi_small.describe())
    _check_structure(ev, len(HELDOUT_SEEDS), N_DRAWS)
    print(ev)
    raise_if_failed(ev)


def test_circuit_is_faithful(request, ioi_small, circuit):
    _expect_known_weak(request, ioi_small.spec, "faithful")
    ev = mi_assert.check_circuit_faithfulness(
        ioi_small, "ioi", circuit, min_faithfulness=0.5, ablation="mean",
        reference="corrupted", seeds=[0], prompt_kwargs=PROMPT_KWARGS)
    _check_structure(ev, 1, N_PROMPTS)
    raise_if_failed(ev)


def test_circuit_is_minimal(request, ioi_small, circuit):
    _expect_known_weak(request, ioi_small.spec, "minimal")
    ev = mi_assert.check_circuit_minimality(
        ioi_small, "ioi", circuit, min_effect=0.01, ablation="mean",
        reference="corrupted", n_subsets=3, seeds=[0], prompt_kwargs=PROMPT_KWARGS)
    assert len(ev.family) == len(circuit), ev.table()  # one member per head
    assert all(m.n == N_PROMPTS // 2 for m in ev.family), ev.table()  # K fit on half, tested on half
    raise_if_failed(ev)
