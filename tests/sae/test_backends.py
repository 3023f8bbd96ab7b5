"""The same SAE claim gives the same numbers and verdict on every backend.

TransformerLens handles take the fast splice (``mi_assert.kernels.sae_splice``); the bridge and
nnsight handles take the hook-based stacked forward. tiny-gpt2 loads on all three.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mi_assert import assert_sae_reconstruction, load_model
from mi_assert.kernels import fast_spliced_ce
from mi_assert.sae import metrics as M
from mi_assert.verdict import ClaimFailed
from tests.evidence_contract import check_evidence as assert_consistent
from tests.sae.conftest import exact_sae

BACKENDS = ("transformer_lens", "bridge", "nnsight")
HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def handles():
    return {b: load_model("tiny-gpt2", backend=b, device="cpu") for b in BACKENDS}


@pytest.fixture(scope="module")
def tokens(handles):
    gen = torch.Generator().manual_seed(3)
    return torch.randint(1, handles["nnsight"].d_vocab, (12, 16), generator=gen)


def noisy_sae(d: int):
    """The exact SAE with a shuffled decoder: every latent writes to the wrong coordinate."""
    sae = exact_sae(d, hook=HOOK)
    perm = torch.randperm(2 * d, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        sae.W_dec.copy_(sae.W_dec[perm])
    return sae


def test_every_backend_takes_the_fast_splice(handles, tokens):
    """The kernels run the bridge's and nnsight's Hugging Face model through a TL-layout twin
    (mi_assert.kernels.handles): the same splice, the same numbers."""
    edit = lambda act: torch.cat([act, act, torch.zeros_like(act)])  # noqa: E731
    spliced = {b: fast_spliced_ce(h, tokens, HOOK, edit) for b, h in handles.items()}
    reference = spliced["transformer_lens"]
    assert reference is not None
    for backend, ce in spliced.items():
        assert ce is not None, backend
        assert float((ce - reference).abs().max()) <= 1e-4, backend


def test_measurements_agree_across_backends(handles, tokens):
    sae = noisy_sae(handles["nnsight"].d_model)
    measured = {b: M.measure_on_model(h, sae, tokens, HOOK) for b, h in handles.items()}
    ref_stats, ref_ce = measured["nnsight"]
    assert ref_ce is not None
    assert abs(ref_ce.zero.mean() - ref_ce.clean.mean()) > 0.01  # zero-ablation hurts: a real ratio
    for backend, (stats, ce) in measured.items():
        assert ce is not None
        for part in ("clean", "sae", "zero"):
            assert abs(getattr(ce, part) - getattr(ref_ce, part)).max() <= 1e-4, (backend, part)
        assert abs(stats.explained_variance["pooled"] - ref_stats.explained_variance["pooled"]) <= 1e-5
        assert (stats.l0 == ref_stats.l0).all(), backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_verdicts_agree_across_backends(handles, tokens, backend):
    handle = handles[backend]
    good = assert_sae_reconstruction(exact_sae(handle.d_model, hook=HOOK), handle, tokens, min_ce_loss_recovered=0.9,
                                     min_explained_variance=0.99, n_resamples=500)
    assert good.passed
    assert_consistent(good)
    assert [m.estimate for m in good.family] == [pytest.approx(1.0, abs=1e-5)] * 2
    with pytest.raises(ClaimFailed) as failed:
        assert_sae_reconstruction(noisy_sae(handle.d_model), handle, tokens, min_ce_loss_recovered=0.9,
                                  n_resamples=500)
    assert "CE loss recovered" in str(failed.value)
    assert failed.value.evidence.metric == "CE loss recovered"
    assert_consistent(failed.value.evidence)


def test_transformer_lens_measurement_takes_no_hook_path(handles, tokens, monkeypatch):
    """On a supported TL model the CE splice is the fast kernel, not the stacked hook forward
    (a silent fall-back would cost the GPU speed that docs/benchmarks.md reports)."""
    handle = handles["transformer_lens"]
    monkeypatch.setattr(handle, "run_with_edits",
                        lambda *a, **k: pytest.fail("measure_on_model fell back to the hook path"))
    _, ce = M.measure_on_model(handle, noisy_sae(handle.d_model), tokens, HOOK)
    assert ce is not None and np.isfinite(ce.recovered())
