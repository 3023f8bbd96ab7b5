"""EAP-IG: steps=1 is EAP, it equals a plain autograd reference, and on planted-induction@s0
it finds the K-composition edge that EAP misses."""

from __future__ import annotations

import pytest
import torch

import mi_assert
from mi_assert.edges import edge_sweep
from mi_assert.errors import MiAssertInputError
from tests.edges.reference import _split_flags, receiver, sender_outputs, tl_flags

TRUE = {"embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"}
TOLERANCE = 1e-5


def autograd_eap_ig(model, clean, corrupted, metric, edge_names, steps) -> torch.Tensor:
    """[n_edges, batch]: (clean - corrupted sender output) · the mean over alpha = k / steps,
    k = 0 .. steps - 1, of d metric / d receiver input on the run whose token and position
    embeddings are corrupted + alpha (clean - corrupted); one autograd call per step."""
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(clean)
        _, corr_cache = model.run_with_cache(corrupted)
    clean_out, corr_out = sender_outputs(model, clean), sender_outputs(model, corrupted)
    hook_names = sorted({receiver(model, n.split("->")[1])[0] for n in edge_names})
    total = {n: 0.0 for n in hook_names}
    for k in range(steps):
        alpha = k / steps
        acts = {}

        def keep(act, hook, acts=acts):
            acts[hook.name] = act

        def interpolate(act, hook, alpha=alpha):
            lo, hi = corr_cache[hook.name], clean_cache[hook.name]
            return (lo + alpha * (hi - lo)).requires_grad_(True)

        hooks = [(n, interpolate) for n in ("hook_embed", "hook_pos_embed")]
        hooks += [(n, keep) for n in hook_names]
        with tl_flags(model, **_split_flags(model)):
            logits = model.run_with_hooks(corrupted, fwd_hooks=hooks)
            grads = torch.autograd.grad(metric(logits).sum(), [acts[n] for n in hook_names])
        for n, g in zip(hook_names, grads, strict=True):
            total[n] = total[n] + g.detach()
    rows = []
    for name in edge_names:
        sender, receiver_name = name.split("->")
        hook_name, head = receiver(model, receiver_name)
        grad = total[hook_name] / steps
        grad = grad if head is None else grad[:, :, head]
        rows.append(((clean_out[sender] - corr_out[sender]) * grad).sum(dim=(1, 2)))
    return torch.stack(rows).detach()


@pytest.fixture(scope="module")
def planted_data(planted_edges, one_torch_thread):
    handle, _, ps = planted_edges
    return handle, ps, mi_assert.logit_diff(ps.correct, ps.wrong)


def test_one_step_is_eap(planted_data, mlp_model, random_pairs):
    handle, ps, metric = planted_data
    ig = edge_sweep(handle, ps, metric=metric, method="eap_ig", steps=1)
    eap = edge_sweep(handle, ps, metric=metric, method="eap")
    assert ig.method == "eap_ig"
    torch.testing.assert_close(ig.per_prompt, eap.per_prompt, rtol=0, atol=0)
    clean, corrupted, m = random_pairs
    torch.testing.assert_close(
        edge_sweep(mlp_model, clean, corrupted, m, method="eap_ig", steps=1).per_prompt,
        edge_sweep(mlp_model, clean, corrupted, m, method="eap").per_prompt, rtol=0, atol=0)


@pytest.mark.parametrize("fixture", ["mlp_model", "attn_only_model"])
def test_equal_to_autograd_on_random_models(request, fixture, random_pairs):
    model = request.getfixturevalue(fixture)
    clean, corrupted, metric = random_pairs
    scores = edge_sweep(model, clean, corrupted, metric, method="eap_ig", steps=4)
    ref = autograd_eap_ig(model, clean, corrupted, metric, [e.name for e in scores.edges], 4)
    assert scores.per_prompt.shape == ref.shape
    assert float((scores.per_prompt - ref).abs().max()) <= TOLERANCE
    assert float(ref.abs().max()) > 1e-2


def test_equal_to_autograd_on_the_planted_model(planted_data):
    handle, ps, metric = planted_data
    scores = edge_sweep(handle, ps, metric=metric, method="eap_ig", steps=5)
    ref = autograd_eap_ig(handle.model, ps.clean, ps.corrupted, metric,
                          [e.name for e in scores.edges], 5)
    # logits around 20 (fp32 ulp 2e-6): 1e-5 absolute, or 2e-6 of the largest score (~20 ulps)
    err = float((scores.per_prompt - ref).abs().max())
    assert err <= max(TOLERANCE, 2e-6 * float(ref.abs().max())), err


def test_ranks_the_planted_circuit_top_where_eap_does_not(planted_data):
    handle, ps, metric = planted_data
    ig = edge_sweep(handle, ps, metric=metric, method="eap_ig", steps=10)
    assert {e.name for e, _ in ig.top(3)} == TRUE
    norm = ig.normalised()
    for name in TRUE:
        assert float(norm[ig.index(name)]) == pytest.approx(1.0, abs=0.03)
    eap = edge_sweep(handle, ps, metric=metric, method="eap")
    assert {e.name for e, _ in eap.top(3)} != TRUE  # saturated attention: EAP misses the k edge
    assert abs(eap.score("L0H0->L1H0.k")) < 0.1 < 19 < ig.score("L0H0->L1H0.k")


@pytest.mark.parametrize("steps", [0, -3, 2.5, "5", True])
def test_bad_steps_are_refused(planted_data, steps):
    handle, ps, _ = planted_data
    with pytest.raises(MiAssertInputError, match="steps must be an int >= 1"):
        edge_sweep(handle, ps, method="eap_ig", steps=steps)


@pytest.mark.parametrize("method", ["exact", "eap"])
def test_steps_belong_to_eap_ig_only(planted_data, method):
    handle, ps, _ = planted_data
    with pytest.raises(MiAssertInputError, match="takes no steps"):
        edge_sweep(handle, ps, method=method, steps=5)
    with pytest.raises(MiAssertInputError, match="'eap_ig'"):
        edge_sweep(handle, ps, method="eap-ig")
