"""Edge-circuit claims on the planted induction model (ground truth known exactly).

The planted circuit of ``planted-induction@s0`` (``docs/edges.md``) is
``embed -> L0H0.v``, ``L0H0 -> L1H0.k`` (K-composition of the previous-token head into the
induction head's keys) and ``L1H0 -> logits``. The impostor puts the positional head L0H2 in
the previous-token head's place (``embed -> L0H2.v``, ``L0H2 -> L1H0.k``, ``L1H0 -> logits``);
the impostor path runs through L0H2 and L1H2 only (``embed -> L0H2.v``,
``L0H2 -> L1H2.k``, ``L1H2 -> logits``). Edge names come from the zoo's ground truth.

Claims run on ``N_PROMPTS`` swap-corrupted induction pairs of prompt seed 1 (the discovery
check uses seed 0). Measured (2026-12-01, 16 pairs of seeds 1, 2, 3; one CPU thread):

| circuit | beats random (100 draws) | necessity (100 draws, q 0.7) | TOST bounds of mean d |
|---|---|---|---|
| planted | 100 wins, bound 0.970 | 89, 98, 96 wins (bound 0.82-0.94) | within [-0.0083, 0.0083] |
| impostor (L0H2 -> L1H0.k) | 0 wins | 89-98 wins (it holds ``L1H0->logits``) | d = -1.000 |
| impostor path (L0H2 -> L1H2) | 0 wins | 0 wins | d = -1.000 |

``EPSILON`` = 0.05 of the clean-corrupted gap: the planted circuit's TOST bounds lay within
±0.011 over 20 prompt draws (``docs/edges.md``, calibration) and within ±0.0083 here, so 0.05
leaves a four-fold margin, and it is 20 times tighter than the impostor's distance from the
model (1.0). With the suite's 8 pairs of seed 1 the planted circuit beats 100 of 100 random
circuits (bound 0.970), wins 96 of 100 knockouts (bound 0.901) and its deciding TOST bound is
0.011 (< 0.05); the claims and the discovery check take about 7 s on one thread of the shared machine
(model loading aside).
"""

from __future__ import annotations

import pytest

import mi_assert
from mi_assert.edges import (
    assert_circuit_beats_random,
    assert_circuit_equivalent,
    assert_circuit_necessary,
    discover_circuit,
)
from mi_assert.prompts.pairs import induction_pairs
from mi_assert.verdict import ClaimFailed

pytestmark = pytest.mark.mi_model("planted-induction@s0")

N_PROMPTS = 8
PROMPT_SEED = 1
EPSILON = 0.05


def _label(layer_head: tuple[int, int]) -> str:
    return f"L{layer_head[0]}H{layer_head[1]}"


@pytest.fixture
def roles(mi_model):
    truth = mi_model.meta["ground_truth"]
    (prev,), (induction,), (positional,) = (truth.heads(r) for r in
                                            ("previous_token", "induction", "positional"))
    return _label(prev), _label(induction), _label(positional)


@pytest.fixture
def planted(roles):
    prev, induction, _ = roles
    return [f"embed->{prev}.v", f"{prev}->{induction}.k", f"{induction}->logits"]


@pytest.fixture
def impostor(roles):
    _, induction, positional = roles
    return [f"embed->{positional}.v", f"{positional}->{induction}.k", f"{induction}->logits"]


@pytest.fixture
def impostor_path(roles):
    _, induction, positional = roles
    other = f"L1{positional[2:]}"  # the layer-1 head with the positional head's index
    assert other != induction, (other, induction)
    return [f"embed->{positional}.v", f"{positional}->{other}.k", f"{other}->logits"]


@pytest.fixture
def pairs(mi_model):
    return induction_pairs(mi_model, seed=PROMPT_SEED, n_prompts=N_PROMPTS)


def test_discovery_on_fit_prompts_finds_the_planted_circuit(mi_model, planted):
    fit = induction_pairs(mi_model, seed=0, n_prompts=N_PROMPTS)
    found = discover_circuit(mi_model, fit, target_faithfulness=0.8)
    assert found.reached and sorted(found.names) == sorted(planted), found.describe()


def test_planted_circuit_beats_random_circuits(mi_model, planted, pairs):
    assert_circuit_beats_random(mi_model, planted, pairs, seed=PROMPT_SEED)


def test_planted_circuit_is_necessary(mi_model, planted, pairs):
    assert_circuit_necessary(mi_model, planted, pairs, seed=PROMPT_SEED)


def test_planted_circuit_is_equivalent_to_the_model(mi_model, planted, pairs):
    assert_circuit_equivalent(mi_model, planted, pairs, epsilon=EPSILON)


def test_impostor_does_not_beat_random_circuits(mi_model, impostor, pairs):
    with pytest.raises(ClaimFailed, match="FAIL"):
        assert_circuit_beats_random(mi_model, impostor, pairs, seed=PROMPT_SEED)


def test_impostor_is_not_equivalent_to_the_model(mi_model, impostor, pairs):
    with pytest.raises(ClaimFailed, match="FAIL"):
        assert_circuit_equivalent(mi_model, impostor, pairs, epsilon=EPSILON)


def test_impostor_path_is_not_necessary(mi_model, impostor_path, pairs):
    with pytest.raises(ClaimFailed, match="FAIL"):
        mi_assert.assert_circuit_necessary(mi_model, impostor_path, pairs, seed=PROMPT_SEED)
