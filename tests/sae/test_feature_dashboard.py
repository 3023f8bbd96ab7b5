"""SAE feature dashboards: measured on a zoo SAE against independent computations, carried by
the feature claims without changing their verdicts, and converted for the page."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mi_assert.report.figure_data import browser_figure
from mi_assert.report.figures import figures_to_plain
from mi_assert.sae.assertions import check_feature_fires, check_feature_steering
from mi_assert.sae.dashboard import (
    FeatureDashboard,
    dashboard_from_activations,
    measure_feature_dashboard,
    token_strings,
)
from tests.sae.conftest import HOOK
from tests.sae.test_features import OUT, TOK, _logit_of, _prompts


@pytest.fixture(scope="module")
def zoo_sae():
    from mi_assert.sae.zoo import load_sae

    return load_sae("planted-induction-l0-resid")


def _independent_acts(model, sae, tokens):
    """The latents on every token, straight from TransformerLens and SAELens's encode."""
    _, cache = model.model.run_with_cache(tokens, names_filter=[HOOK])
    return sae.encode(cache[HOOK]).detach().float()  # [batch, pos, d_sae]


@pytest.fixture(scope="module")
def busiest(planted_model, zoo_sae, repeated):
    """(feature, its activations [batch, pos]): the latent that fires on most non-BOS tokens."""
    feats = _independent_acts(planted_model, zoo_sae, repeated)[:, 1:]
    feature = int((feats > 0).sum((0, 1)).argmax())
    return feature, _independent_acts(planted_model, zoo_sae, repeated)[..., feature]


def test_dashboard_matches_independent_computation(planted_model, zoo_sae, repeated, busiest):
    feature, acts = busiest
    dash = measure_feature_dashboard(zoo_sae, planted_model, repeated, feature, k=8)
    assert isinstance(dash, FeatureDashboard) and dash.hook == HOOK and dash.feature == feature
    counted = acts[:, 1:]  # the prompts start with BOS (id 0), never elsewhere
    assert not bool((repeated[:, 1:] == 0).any())
    # top context: the largest activation over the prompts, at its prompt and position
    top = dash.contexts[0]
    assert top.activation == pytest.approx(float(counted.max()), rel=1e-5)
    assert float(acts[top.prompt, top.position]) == pytest.approx(top.activation, rel=1e-5)
    assert top.acts[top.focus] == pytest.approx(top.activation)
    assert top.tokens[top.focus] == int(repeated[top.prompt, top.position])
    values = [c.activation for c in dash.contexts]
    assert values == sorted(values, reverse=True) and len(values) == 8
    assert values == pytest.approx(sorted(counted.flatten().tolist(), reverse=True)[:8], rel=1e-5)
    before, after = dash.window
    assert all(len(c.tokens) <= before + after + 1 and len(c.tokens) == len(c.acts)
               for c in dash.contexts)
    # histogram over firing tokens; density over counted tokens
    n_firing = int((counted > 0).sum())
    assert sum(dash.histogram["counts"]) == dash.n_firing == n_firing > 0
    assert dash.n_tokens == counted.numel() and dash.n_prompts == repeated.shape[0]
    assert dash.density == pytest.approx(n_firing / counted.numel())
    assert dash.histogram["edges"][0] == 0.0
    assert dash.histogram["edges"][-1] == pytest.approx(float(counted.max()), rel=1e-5)
    # quantile bands: weaker examples, none repeated from the top contexts
    assert dash.quantile_groups
    seen = {(c.prompt, c.position) for c in dash.contexts}
    for group in dash.quantile_groups:
        for c in group.contexts:
            assert group.low - 1e-6 <= c.activation <= group.high + 1e-6
            assert (c.prompt, c.position) not in seen
            seen.add((c.prompt, c.position))
    # direct logit effect: W_dec[f] @ W_U, computed here from the raw weights
    effect = zoo_sae.W_dec[feature].detach().float() @ planted_model.model.W_U.detach().float()
    order = torch.argsort(effect, descending=True)
    assert [t for t, _ in dash.boosted] == order[:10].tolist()
    assert [v for _, v in dash.boosted] == pytest.approx(effect[order[:10]].tolist(), abs=1e-5)
    assert [t for t, _ in dash.suppressed] == order.flip(0)[:10].tolist()
    assert [v for _, v in dash.suppressed] == pytest.approx(effect[order.flip(0)[:10]].tolist(), abs=1e-5)
    assert dash.token_ids and "W_U" in dash.logit_path and "LayerNorm" in dash.logit_path
    json.dumps(dash.figure(), allow_nan=False)  # plain data


def test_dead_latent_gives_an_empty_dashboard(planted_model, zoo_sae, repeated):
    feats = _independent_acts(planted_model, zoo_sae, repeated)[:, 1:]
    dead = int((feats > 0).sum((0, 1)).argmin())
    assert int((feats[..., dead] > 0).sum()) == 0
    dash = measure_feature_dashboard(zoo_sae, planted_model, repeated, dead)
    assert dash.contexts == () and dash.quantile_groups == () and dash.n_firing == 0
    assert sum(dash.histogram["counts"]) == 0 and dash.density == 0.0
    page = browser_figure(figures_to_plain({"d": dash.figure()})["d"])
    assert page["kind"] == "feature_dashboard" and page["contexts"] == []


def test_fires_evidence_carries_the_dashboard_and_keeps_its_verdict(planted_model, basis):
    pos, neg = _prompts(5, 5, 24, seed=1), _prompts(None, 5, 24, seed=2)
    ev = check_feature_fires(basis, planted_model, pos, neg, feature=TOK + 5, min_auroc=0.85)
    # the numbers test_features.py pins for this claim
    assert ev.passed and ev.estimate == pytest.approx(1.0)
    assert ev.bound == pytest.approx(0.05 ** (1 / 24))
    spec = ev.figures["dashboard"]
    assert spec["kind"] == "feature_dashboard" and set(ev.figures) == {"activations", "dashboard"}
    data = spec["data"]
    assert data["sources"] == {"positive": 24, "negative": 24} and data["n_prompts"] == 48
    # the basis latent for token 5 reads the token one-hot: it fires exactly where token 5 is
    where = torch.cat([pos, neg])[:, 1:] == 5
    assert data["n_firing"] == int(where.sum()) == 24
    assert all(c["tokens"][c["focus"]] == 5 for c in data["contexts"])
    # more prompts for the dashboard only: the verdict and its numbers do not move
    extra = _prompts(5, 5, 8, seed=3)
    more = check_feature_fires(basis, planted_model, pos, neg, feature=TOK + 5, min_auroc=0.85,
                               dashboard_prompts=extra)
    for key in ("passed", "estimate", "low", "high", "bound", "n", "threshold"):
        assert getattr(more, key) == getattr(ev, key), key
    assert more.details == ev.details
    for a, b in zip(more.figures["activations"]["data"], ev.figures["activations"]["data"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert more.figures["dashboard"]["data"]["sources"] == {"positive": 24, "negative": 24,
                                                            "dashboard_prompts": 8}
    assert more.figures["dashboard"]["data"]["n_firing"] == 32
    # the page's copy: drawable, compact
    plain = figures_to_plain(more.figures)["dashboard"]
    assert "error" not in plain
    page = browser_figure(plain)
    assert page["kind"] == "feature_dashboard" and page["contexts"] and page["boosted"]
    assert sum(page["hist"]["counts"][0]) == 32
    assert len(json.dumps(page)) < 8000


def test_steering_evidence_carries_the_dashboard(planted_model, repeated):
    from mi_assert.sae.synthetic import basis_sae

    sae = basis_sae(planted_model.d_model, "blocks.1.hook_resid_post")
    ev = check_feature_steering(sae, planted_model, repeated, feature=OUT + 7,
                                metric=_logit_of(7), scale=1.0, min_effect=5.0)
    assert ev.passed and ev.estimate == pytest.approx(10.0, rel=0.05)  # as test_features.py
    assert {"dashboard", "samples"} <= set(ev.figures)
    data = ev.figures["dashboard"]["data"]
    assert data["sources"] == {"prompts": repeated.shape[0]} and data["hook"] == "blocks.1.hook_resid_post"
    # the 'out' latent of token 7 writes what W_U reads as token 7's logit
    assert data["boosted"][0][0] == 7
    more = check_feature_steering(sae, planted_model, repeated, feature=OUT + 7,
                                  metric=_logit_of(7), scale=1.0, min_effect=5.0,
                                  dashboard_prompts=repeated[:4])
    for key in ("passed", "estimate", "low", "high", "bound", "n"):
        assert getattr(more, key) == getattr(ev, key), key
    assert more.details == ev.details


def test_dashboard_from_activations_on_text_and_bands():
    toks = torch.tensor([[0, 1, 2, 3, 1], [0, 2, 1, 1, 3]])
    acts = torch.tensor([[9.0, 0.5, 0.0, 2.0, 1.5], [9.0, 0.0, 3.0, 0.25, 0.0]])
    mask = toks != 0
    names = {0: "<bos>", 1: " a", 2: " b", 3: "\n"}
    dash = dashboard_from_activations([(toks[:1], acts[:1], mask[:1]), (toks[1:], acts[1:], mask[1:])],
                                      4, "h", token_text=lambda ids: ([names[i] for i in ids], False),
                                      k=2, window=(1, 1), n_quantiles=2, quantile_examples=1)
    assert [(c.prompt, c.position, c.activation) for c in dash.contexts] == [(1, 2, 3.0), (0, 3, 2.0)]
    assert dash.contexts[0].tokens == (" b", " a", " a") and dash.contexts[0].focus == 1
    assert dash.n_tokens == 8 and dash.n_firing == 5 and dash.max_activation == 3.0  # BOS's 9 left out
    assert sum(dash.histogram["counts"]) == 5 and not dash.token_ids
    ctx = dashboard_from_activations([(toks, acts, mask)], 4, "h", k=1, window=2,
                                     token_text=lambda ids: (list(ids), True))
    assert ctx.contexts[0].acts[0] is None  # BOS in the window: not counted
    chosen = [c.activation for g in dash.quantile_groups for c in g.contexts]
    assert chosen and all(a not in (3.0, 2.0) for a in chosen)


def test_token_strings_decode_each_id_alone():
    class Tok:
        def decode(self, ids):
            return "".join({1: " the", 2: " cat"}[i] for i in ids)

    class Handle:
        tokenizer = Tok()

    assert token_strings(Handle(), [1, 2, 1]) == ([" the", " cat", " the"], False)
    assert token_strings(object(), np.array([3, 4])) == ([3, 4], True)


def test_hook_z_latent_goes_through_w_o(one_torch_thread):
    """An ``attn.hook_z`` SAE's decoder row reaches the logits through its layer's W_O."""
    from mi_assert import load_model
    from mi_assert.prompts import repeated_tokens
    from tests.sae.test_hook_z import HOOK as Z_HOOK
    from tests.sae.test_hook_z import z_sae

    model = load_model("attn-only-2l-induction@s0", device="cpu")
    sae = z_sae(model)
    toks = repeated_tokens(8, 8, model.d_vocab, seed=1, bos_token_id=model.bos_token_id)
    dash = measure_feature_dashboard(sae, model, toks, 3, n_logits=5)
    tl = model.model
    effect = sae.W_dec[3].detach() @ tl.W_O[1].detach().flatten(0, 1) @ tl.W_U.detach()
    order = torch.argsort(effect, descending=True)
    assert [t for t, _ in dash.boosted] == order[:5].tolist()
    assert [v for _, v in dash.suppressed] == pytest.approx(effect[order.flip(0)[:5]].tolist(), abs=1e-5)
    assert "W_O" in dash.logit_path and dash.logit_note == "" and dash.hook == Z_HOOK
