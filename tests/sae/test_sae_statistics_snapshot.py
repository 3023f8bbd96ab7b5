"""The SAE and causal statistics helpers on fixed data, pinned (see ``tests/snapshot.py``).

The other tests check these against SAELens and TransformerLens and test each rule both ways;
this pins every number and message on awkward data (BOS masks, zero rows, clusters, 4-d
activations), so an unintended change shows as a diff. Update after an intended change:
``MI_ASSERT_UPDATE_SNAPSHOTS=1 python -m pytest tests/sae/test_sae_statistics_snapshot.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from mi_assert.causal.recovery import check_gap, ratio_claim
from mi_assert.sae import metrics as sm
from mi_assert.sae import resample as sr
from mi_assert.stats import RowKey
from mi_assert.stats.options import claim_options
from tests.snapshot import check_case, raised, snapshot_file

snapshot = snapshot_file(Path(__file__).parent / "snapshots" / "sae_statistics.json")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _stat(stat: Any) -> dict[str, Any]:
    w = np.random.default_rng(0).multinomial(stat.n_units, np.full(stat.n_units, 1 / stat.n_units), 3)
    return {"type": type(stat).__name__, "estimate": stat.estimate(), "n_units": stat.n_units,
            "n_samples": stat.n_samples, "constant": stat.constant(),
            "resampled": stat.of_unit_weights(w.astype(float)).tolist()}


def case_explained_variances() -> Any:
    x = torch.randn(40, 6, generator=_gen(0)) * torch.arange(1, 7) + 3.0
    x_hat = x + 0.3 * torch.randn(40, 6, generator=_gen(1))
    const = torch.ones(10, 3)
    one_flat = x.clone()
    one_flat[:, 2] = 5.0  # a dimension with no variance is left out of the per-dim mean
    tiny = 1e-3 * torch.randn(6, 2, generator=_gen(11), dtype=torch.float64)
    return {"noisy": sm.explained_variances(x, x_hat),
            "one constant dimension": sm.explained_variances(one_flat, x_hat),
            "tiny variance": sm.explained_variances(tiny, tiny * 0.9),
            "perfect": sm.explained_variances(x, x),
            "zero": sm.explained_variances(x, torch.zeros_like(x)),
            "constant input": sm.explained_variances(const, const * 0.5)}


def case_reconstruction_samples() -> Any:
    x = torch.randn(5, 7, 4, generator=_gen(2)) + 1.0
    feats = torch.relu(torch.randn(5, 7, 9, generator=_gen(3)))
    x_hat = x + 0.2 * torch.randn(5, 7, 4, generator=_gen(4))
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[:, 0] = False
    # rows of norm exactly 1e-4 and below: the l2 ratio divides by 1 there, not by the norm
    small = torch.zeros(5, 1, 4, dtype=torch.float64)
    small[0, 0, 0], small[1, 0, 1], small[2, 0, 2] = 1e-4, 5e-5, 1.0
    small[3, 0, 3], small[4, 0, 0] = 5e-9, 0.5  # below 1e-8: the cosine's eps matters
    out = {}
    for name, args in {"masked": (x, feats, x_hat, mask), "unmasked": (x, feats, x_hat, None),
                       "2-d": (x[:, 0], feats[:, 0], x_hat[:, 0], None),
                       "2-d masked": (x[:, 0], feats[:, 0], x_hat[:, 0], mask[:, 1].clone().index_fill_(0, torch.tensor([2]), False)),
                       "small norms": (small, feats[:, :1], small * 3.0, None),
                       "4-d": (x.reshape(5, 7, 2, 2), feats, x_hat.reshape(5, 7, 2, 2), mask)}.items():
        r = sm.reconstruction_samples(*args)
        out[name] = {"sq_err": r.sq_err.round(12).tolist(), "sq_dev": r.sq_dev.round(12).tolist(),
                     "l0": r.l0.tolist(), "mask": r.mask.tolist(), "fired": r.fired.tolist(),
                     "explained_variance": r.explained_variance, "cosine": r.cosine,
                     "l2_ratio": r.l2_ratio}
    out["all masked"] = raised(lambda: sm.reconstruction_samples(x, feats, x_hat, mask & False))
    return out


def _nan_in(stacked: torch.Tensor, variant: int) -> torch.Tensor:
    out = stacked.clone()
    out[variant, 1, 2] = float("nan")
    return out


def case_cross_entropy() -> Any:
    logits = torch.randn(3, 6, 11, generator=_gen(5))
    tokens = torch.randint(0, 11, (3, 6), generator=_gen(6))
    tokens[:, 0] = 0
    token_ce = sm.per_token_ce(logits, tokens)
    stacked = torch.stack([token_ce, token_ce * 1.1, token_ce * 2.0])
    mask = tokens != 0
    losses = sm.ce_per_prompt(stacked, tokens, mask)
    chosen = sm.ce_per_prompt(stacked, tokens, mask, positions=[2, 4])
    return {"token_ce": token_ce.tolist(),
            "per prompt": [losses.clean.tolist(), losses.sae.tolist(), losses.zero.tolist()],
            "recovered": losses.recovered(),
            "positions": [chosen.clean.tolist(), chosen.sae.tolist(), chosen.zero.tolist()],
            "recovered equal": sm.ce_recovered(np.ones(3), np.ones(3), np.ones(3)),
            "recovered values": sm.ce_recovered(np.array([1.0, 2.0]), np.array([2.0, 2.5]),
                                                np.array([4.0, 5.0])),
            "bos position and one more": [c.tolist() for c in vars(sm.ce_per_prompt(stacked, tokens, mask, positions=[0, 2])).values()],
            "one position each": [c.tolist() for c in vars(sm.ce_per_prompt(stacked, tokens, mask, positions=[3])).values()],
            "nan only in clean": raised(lambda: sm.ce_per_prompt(_nan_in(stacked, 0), tokens, mask)),
            "nan only in sae": raised(lambda: sm.ce_per_prompt(_nan_in(stacked, 1), tokens, mask)),
            "nan only in zero-ablated": raised(lambda: sm.ce_per_prompt(_nan_in(stacked, 2), tokens, mask)),
            "bad positions": raised(lambda: sm.ce_per_prompt(stacked, tokens, mask, positions=[9])),
            "no positions": raised(lambda: sm.ce_per_prompt(stacked, tokens, mask & False)),
            "nan": raised(lambda: sm.ce_per_prompt(stacked * float("nan"), tokens, mask))}


def case_decoder_cosines() -> Any:
    w_dec = torch.randn(8, 5, generator=_gen(7))
    w_dec[3] = 0.0
    sae = SimpleNamespace(W_dec=w_dec)
    true = torch.randn(4, 5, generator=_gen(8))
    true[0] = w_dec[1] * 3.0
    return {"directions norms": sm.decoder_directions(sae).norm(dim=-1).tolist(),
            "max cosine": sm.max_cosine_per_feature(sae, true).tolist(),
            "1-d": raised(lambda: sm.max_cosine_per_feature(sae, true[0])),
            "width": raised(lambda: sm.max_cosine_per_feature(sae, true[:, :3])),
            "zero row": raised(lambda: sm.max_cosine_per_feature(sae, torch.zeros(2, 5))),
            "nan": raised(lambda: sm.max_cosine_per_feature(sae, true * float("nan")))}


def case_splice_edit() -> Any:
    stash: dict[str, torch.Tensor] = {}
    mask = torch.tensor([[False, True, True], [False, True, False]])

    def encode_decode(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.relu(a), a * 0.5

    edit = sm.clean_sae_zero(encode_decode, mask, "blocks.0.hook_resid_pre", stash)
    clean = torch.arange(12.0).reshape(2, 3, 2) - 4.0
    out = edit(clean)
    return {"out": out.tolist(), "stash": {k: v.tolist() for k, v in sorted(stash.items())},
            "nan": raised(lambda: edit(clean * float("nan")))}


def _dead_sources(fired: np.ndarray, units: list[int]) -> dict[str, Any]:
    """The bound's data identity: equal data equal, any change (latents, prompts, ids) new."""
    base = sr.dead_fraction_bound(fired).fingerprint()
    flipped = fired.copy()
    flipped[0, 1] = not flipped[0, 1]
    return {"source": sr.dead_fraction_bound(fired).source,
            "same data": sr.dead_fraction_bound(fired.copy()).fingerprint() == base,
            "from ints": sr.dead_fraction_bound(fired.astype(int)).fingerprint() == base,
            "one latent flipped": sr.dead_fraction_bound(flipped).fingerprint() == base,
            "with ids": sr.dead_fraction_bound(fired, units=units).fingerprint() == base,
            "fewer prompts": sr.dead_fraction_bound(fired[:-1]).fingerprint() == base,
            "transposed": sr.dead_fraction_bound(fired.T.copy()).fingerprint() == base}


def case_resample_statistics() -> Any:
    rng = np.random.default_rng(9)
    err, dev = rng.uniform(0.1, 0.5, 12), rng.uniform(1.0, 2.0, 12)
    clean, zero = rng.uniform(2.0, 2.5, 12), rng.uniform(5.0, 6.0, 12)
    sae = clean + rng.uniform(0.1, 0.5, 12)
    fired = rng.random((12, 10)) < 0.2
    fired[:, 0] = False
    units = [i // 3 for i in range(12)]
    return {"ev": _stat(sr.explained_variance(err, dev)),
            "ev clustered": _stat(sr.explained_variance(err, dev, units=units)),
            "ce": _stat(sr.ce_loss_recovered(clean, sae, zero)),
            "ce clustered": _stat(sr.ce_loss_recovered(clean, sae, zero, units=units)),
            "ce from lists": _stat(sr.ce_loss_recovered(list(clean), list(sae), list(zero))),
            "token mean": _stat(sr.token_mean(err * 10, np.arange(1, 13))),
            "token mean clustered": _stat(sr.token_mean(err * 10, np.arange(1, 13), units=units)),
            "dead": sr.dead_fraction(fired),
            "dead from ints": sr.dead_fraction(fired.astype(int)),
            "dead of one latent": [sr.dead_fraction(fired[:, :1]), sr.dead_fraction(fired[:, 1:2])],
            "dead bound": [sr.dead_fraction_bound(fired).estimate(),
                           sr.dead_fraction_bound(fired).n_units,
                           sr.dead_fraction_bound(fired, units=units).n_units],
            "ce lengths": raised(lambda: sr.ce_loss_recovered(clean, sae[:3], zero)),
            "dead sources": _dead_sources(fired, units),
            "dead shape": raised(lambda: sr.dead_fraction(fired[0])),
            "dead empty": raised(lambda: sr.dead_fraction(np.zeros((0, 4), bool))),
            "dead units": raised(lambda: sr.dead_fraction_bound(fired, units=units[:5]))}


def case_recovery_claim() -> Any:
    rng = np.random.default_rng(10)
    clean, corrupted = rng.normal(3.0, 0.5, 16), rng.normal(0.0, 0.5, 16)
    patched = corrupted + 0.8 * (clean - corrupted) + rng.normal(0, 0.1, 16)
    rows = {RowKey(s): (patched - corrupted + s * 0.01, clean - corrupted, None) for s in range(2)}
    options = claim_options(seeds=[0, 1], quorum=1, n_resamples=300)
    spec = ratio_claim("patching recovers", "normalised recovery", rows, threshold=0.6,
                       alternative="greater", options=options, settings={"a": 1},
                       model_info={"m": 1}, details={"d": 1}, figures={"f": {"kind": "x"}})
    member = ratio_claim("member", "normalised recovery", rows, threshold=0.6,
                         alternative="less", options=options, quorum=False,
                         value_range=(-10.0, 10.0))
    flat = {RowKey(0): (np.full(12, 0.9), np.ones(12), None)}
    bounded = ratio_claim("flat", "normalised recovery", flat, threshold=0.6, alternative="greater",
                          options=claim_options(n_resamples=300), value_range=(-1.0, 1.0))
    return {"gap": check_gap(clean, corrupted),
            "zero gap": raised(lambda: check_gap(clean, clean + 1e-9)),
            "gap small next to the scale": raised(lambda: check_gap(np.full(4, 1000.5), np.full(4, 1000.0))),
            "gap exactly the absolute tolerance": raised(lambda: check_gap(np.full(4, 1e-6), np.zeros(4))),
            "gap just above the absolute tolerance": check_gap(np.full(4, 2e-6), np.zeros(4)),
            "zero-variance ratio with a range": bounded.evaluate().to_dict(),
            "claim": spec.evaluate().to_dict(), "spec quorum": [spec.quorum, member.quorum],
            "member": member.evaluate().to_dict(),
            "figures": sorted(spec.evaluate().figures)}


CASES: dict[str, Callable[[], Any]] = {
    name[len("case_"):]: fn for name, fn in globals().items()
    if name.startswith("case_") and callable(fn)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_statistics_match_snapshot(name: str, snapshot: dict[str, Any]) -> None:
    check_case(name, CASES[name], snapshot)


def test_snapshot_has_no_stale_cases(snapshot: dict[str, Any]) -> None:
    assert set(snapshot) <= set(CASES), f"snapshot cases without a test: {set(snapshot) - set(CASES)}"
