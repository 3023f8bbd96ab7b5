"""Ablation kinds of edge circuits: what the edges outside a circuit carry.

On planted-induction@s0 with swap pairs, the clean and corrupted prompts share the query token
and the token the induction head copies, so under ``"corrupted"`` the 3-edge planted path
alone restores the gap. Under ``"mean"`` and ``"resample"`` those shared inputs are ablated
too, and the induction head also needs its query and value from ``embed`` (``FULL``).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mi_assert.edges import Circuit, EdgeGraph, draw_random_circuits, measure_circuits
from mi_assert.edges.ablation import ABLATION_KINDS, ablated_run, derangement
from mi_assert.edges.circuit_run import circuit_runs
from mi_assert.edges.claims import (
    ABLATION,
    assert_circuit_beats_random,
    check_circuit_equivalent,
    check_circuit_necessary,
)
from mi_assert.edges.curve import check_faithfulness_auc, faithfulness_curve
from mi_assert.edges.discovery import discover_circuit
from mi_assert.edges.exact import rows_per_forward
from mi_assert.edges.readout import MetricReadout
from mi_assert.edges.senders import record_run
from mi_assert.errors import MiAssertInputError
from tests.edges.conftest import random_model

KINDS = tuple(ABLATION_KINDS)
PLANTED = ["embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"]
FULL = [*PLANTED, "embed->L1H0.q", "embed->L1H0.v"]


@pytest.fixture(scope="module")
def planted_pairs(planted_edges, one_torch_thread):
    handle, _, ps = planted_edges
    return handle, ps


@pytest.fixture(scope="module")
def planted_faithfulness(planted_pairs):
    handle, ps = planted_pairs
    return {kind: measure_circuits(handle, [PLANTED, FULL], ps, ablation=kind).faithfulness()
            for kind in KINDS}


# ----- the default is today's corrupted-input patching --------------------------------------
def test_the_default_is_the_corrupted_run_bit_for_bit(mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    graph = EdgeGraph.from_handle(mlp_model)
    circuits = draw_random_circuits(graph, 30, 4, seed=2)
    default = measure_circuits(mlp_model, circuits, clean, corrupted, metric)
    explicit = measure_circuits(mlp_model, circuits, clean, corrupted, metric, ablation="corrupted")
    with torch.no_grad():  # the pipeline as it ran before ablation kinds existed
        clean_run = record_run(mlp_model, graph, clean)
        corrupted_run = record_run(mlp_model, graph, corrupted)
        assert ablated_run(corrupted_run, "corrupted") is corrupted_run
        readout = MetricReadout(mlp_model, metric, clean.shape[0])
        rows = rows_per_forward(mlp_model, clean.shape[0], clean.shape[1], readout.full_logits, None)
        old = circuit_runs(mlp_model, graph, circuits, clean_run.outputs[0] - corrupted_run.outputs[0],
                           corrupted_run, readout, rows).double().numpy()
        old_corrupted = readout(corrupted_run.final_resid)[0].double().numpy()
    for got in (default, explicit):
        np.testing.assert_array_equal(got.per_prompt, old)
        np.testing.assert_array_equal(got.corrupted, old_corrupted)
        assert got.ablation == "corrupted" and got.ablation_text == ABLATION
    assert np.ptp(old) > 0


@pytest.mark.parametrize("kind", KINDS)
def test_every_edge_is_the_clean_run_and_no_edge_the_ablated_run(kind, mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    graph = EdgeGraph.from_handle(mlp_model)
    m = measure_circuits(mlp_model, [Circuit(graph, graph.edges), Circuit(graph, ())], clean,
                         corrupted, metric, ablation=kind)
    np.testing.assert_allclose(m.per_prompt[0], m.clean, atol=1e-5)
    np.testing.assert_array_equal(m.per_prompt[1], m.corrupted)  # the baseline F(ablated)


# ----- the planted induction model ------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_the_full_induction_circuit_is_faithful_under_every_kind(kind, planted_faithfulness):
    assert planted_faithfulness[kind][1] == pytest.approx(1.0, abs=0.02)


def test_the_planted_path_alone_is_faithful_only_under_corrupted(planted_faithfulness):
    # swap pairs share the query and the copied token, which only "corrupted" leaves in place
    assert planted_faithfulness["corrupted"][0] == pytest.approx(1.0, abs=0.02)
    assert planted_faithfulness["mean"][0] < 0.2
    assert planted_faithfulness["resample"][0] < 0.2


@pytest.mark.parametrize("kind", KINDS)
def test_the_full_circuit_beats_random_circuits_under_every_kind(kind, planted_pairs):
    handle, ps = planted_pairs
    ev = assert_circuit_beats_random(handle, FULL, ps, ablation=kind)
    assert ev.details["wins"] == 100
    assert ev.settings["ablation"].startswith(f"{kind}: ")
    assert ev.settings["ablation"] == measure_circuits(handle, [FULL], ps,
                                                       ablation=kind).ablation_text
    assert (f"{kind} ablation" in ev.claim) == (kind != "corrupted")


def test_the_other_claims_record_the_kind(planted_pairs):
    handle, ps = planted_pairs
    necessary = check_circuit_necessary(handle, FULL, ps, ablation="mean", n_random=20)
    equivalent = check_circuit_equivalent(handle, FULL, ps, ablation="resample", ablation_seed=3)
    assert necessary.settings["ablation"].startswith("mean: ") and "mean ablation" in necessary.claim
    assert "(mean)" in necessary.settings["knockout"]
    assert equivalent.settings["ablation"].startswith("resample: ")
    assert "ablation_seed=3" in equivalent.settings["ablation"]
    assert equivalent.passed


def test_curves_and_discovery_take_the_kind(planted_pairs):
    handle, ps = planted_pairs
    ranking = [*FULL, "embed->L0H2.v", "L0H2->L1H2.k"]
    curve = faithfulness_curve(handle, ranking, ps, ks=[0, 3, 5, 7], n_random_orderings=2,
                               ablation="mean")
    assert curve.faithfulness[1] < 0.2 and curve.faithfulness[2] == pytest.approx(1.0, abs=0.02)
    assert curve.to_dict()["ablation"].startswith("mean: ")
    ev = check_faithfulness_auc(handle, ranking, ps, min_auc=0.5, ks=[0, 3, 5, 7],
                                n_random_orderings=2, ablation="mean")
    assert ev.settings["ablation"].startswith("mean: ") and "mean ablation" in ev.claim
    found = discover_circuit(handle, ps, method="exact", target_faithfulness=0.9, max_edges=8,
                             ablation="corrupted")
    assert set(found.names) == set(PLANTED)


# ----- mean and resample ----------------------------------------------------------------------
def test_mean_over_identical_corrupted_prompts_is_the_corrupted_run(mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    same = corrupted[:1].repeat(clean.shape[0], 1)
    circuits = draw_random_circuits(EdgeGraph.from_handle(mlp_model), 30, 4, seed=3)
    mean = measure_circuits(mlp_model, circuits, clean, same, metric, ablation="mean")
    corr = measure_circuits(mlp_model, circuits, clean, same, metric)
    np.testing.assert_array_equal(mean.per_prompt, corr.per_prompt)
    np.testing.assert_array_equal(mean.corrupted, corr.corrupted)


def test_resample_is_seeded_and_differs_from_corrupted(mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    circuits = draw_random_circuits(EdgeGraph.from_handle(mlp_model), 30, 4, seed=4)
    first, again, other = (measure_circuits(mlp_model, circuits, clean, corrupted, metric,
                                            ablation="resample", ablation_seed=s) for s in (5, 5, 6))
    corr = measure_circuits(mlp_model, circuits, clean, corrupted, metric)
    np.testing.assert_array_equal(first.per_prompt, again.per_prompt)
    assert np.abs(first.per_prompt - corr.per_prompt).max() > 1e-3
    assert np.abs(first.corrupted - corr.corrupted).max() > 1e-3
    same_perm = torch.equal(derangement(4, 5), derangement(4, 6))
    assert np.array_equal(first.per_prompt, other.per_prompt) == same_perm


@pytest.mark.parametrize("n", [2, 3, 5, 16])
def test_derangements_have_no_fixed_point(n):
    for seed in range(20):
        perm = derangement(n, seed)
        assert sorted(perm.tolist()) == list(range(n))
        assert not bool((perm == torch.arange(n)).any())
    assert torch.equal(derangement(n, 1), derangement(n, 1))


def test_resample_takes_each_prompt_from_its_deranged_partner(mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    graph = EdgeGraph.from_handle(mlp_model)
    with torch.no_grad():
        run = record_run(mlp_model, graph, corrupted)
    perm = derangement(corrupted.shape[0], 7)
    out = ablated_run(run, "resample", 7)
    assert torch.equal(out.outputs, run.outputs[:, perm])
    assert torch.equal(out.final_resid, run.final_resid[perm])
    assert all(torch.equal(a, b[perm]) for a, b in zip(out.resid_pre, run.resid_pre, strict=True))


class _KeepLogits:
    """A metric that keeps the logits it is given: logit 0 minus logit 1 at the last position."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        self.seen.append(logits.detach().clone())
        return logits[:, -1, 0] - logits[:, -1, 1]


def test_mean_matches_an_independent_reference(random_pairs):
    """The circuit ``embed->L1H2.v, L1H2->logits`` under mean ablation, by hand: every input
    holds the mean over corrupted prompts except L1H2's v input, which swaps the mean embedding
    for the clean one; the logits get the mean final residual plus L1H2's change."""
    model = random_model(attn_only=True)
    clean, corrupted, _ = random_pairs
    keep = _KeepLogits()
    measure_circuits(model, [["embed->L1H2.v", "L1H2->logits"]], clean, corrupted, keep,
                     ablation="mean")
    got = keep.seen[0]  # the circuit run is read first, then the clean and ablated runs

    head = 2
    names = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post",
             "blocks.1.attn.hook_result"]
    model.cfg.use_attn_result = True
    try:
        with torch.no_grad():
            _, corr_cache = model.run_with_cache(corrupted, names_filter=lambda n: n in names)
            _, clean_cache = model.run_with_cache(clean, names_filter=lambda n: n in names)
            mean = {n: corr_cache[n].mean(dim=0, keepdim=True) for n in names}
            batch = clean.shape[0]
            v_in = (mean["blocks.1.hook_resid_pre"] - mean["blocks.0.hook_resid_pre"]
                    + clean_cache["blocks.0.hook_resid_pre"])  # [batch, pos, d_model]
            kept: dict[str, torch.Tensor] = {}

            def set_v(act, hook):
                act = act.clone()
                act[:, :, head] = v_in
                return act

            def keep_result(act, hook):
                kept["result"] = act[:, :, head]

            model.cfg.use_split_qkv_input = True
            try:
                model.run_with_hooks(mean["blocks.1.hook_resid_pre"].expand(batch, -1, -1),
                                     start_at_layer=1, stop_at_layer=2,
                                     fwd_hooks=[("blocks.1.hook_v_input", set_v),
                                                ("blocks.1.attn.hook_result", keep_result)])
            finally:
                model.cfg.use_split_qkv_input = False
            final = (mean["blocks.1.hook_resid_post"] + kept["result"]
                     - mean["blocks.1.attn.hook_result"][:, :, head])
            want = model.unembed(model.ln_final(final))
    finally:
        model.cfg.use_attn_result = False
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert (want - keep.seen[2]).abs().max() > 1e-3  # the circuit changes the ablated logits


# ----- refused inputs -------------------------------------------------------------------------
@pytest.mark.parametrize("ablation", ["zero", "Mean", None, 1])
def test_an_unknown_ablation_is_refused(ablation, mlp_model, random_pairs):
    clean, corrupted, metric = random_pairs
    with pytest.raises(MiAssertInputError, match="'corrupted', 'mean', 'resample'"):
        measure_circuits(mlp_model, [["embed->logits"]], clean, corrupted, metric,
                         ablation=ablation)


def test_an_unknown_ablation_is_refused_by_every_claim(planted_pairs):
    handle, ps = planted_pairs
    for call in (lambda: assert_circuit_beats_random(handle, FULL, ps, ablation="zero"),
                 lambda: check_circuit_necessary(handle, FULL, ps, ablation="zero"),
                 lambda: check_circuit_equivalent(handle, FULL, ps, ablation="zero"),
                 lambda: faithfulness_curve(handle, FULL, ps, ablation="zero"),
                 lambda: check_faithfulness_auc(handle, FULL, ps, min_auc=0.5, ablation="zero"),
                 lambda: discover_circuit(handle, ps, ablation="zero")):
        with pytest.raises(MiAssertInputError, match="ablation='zero' unknown; allowed"):
            call()


def test_resample_with_one_prompt_is_refused(mlp_model, random_pairs):
    clean, corrupted, _ = random_pairs
    with pytest.raises(MiAssertInputError, match="needs at least 2 prompts"):
        measure_circuits(mlp_model, [["embed->logits"]], clean[:1], corrupted[:1], _KeepLogits(),
                         ablation="resample")
