"""nnsight over a TransformerLens HookedTransformer (the zoo's planted model) equals the TL backend;
users' own nnsight-wrapped models are accepted by ``as_handle``."""

from __future__ import annotations

import warnings

import pytest
import torch

from mi_assert import Intervention, as_handle, load_model
from mi_assert.backends.batching import run_stacked_variants
from tests.backends.conftest import ATOL
from tests.backends.test_parity import _max_gap


@pytest.fixture(scope="module")
def planted_pair() -> tuple:
    tl = load_model("planted-induction@s0", device="cpu")
    nn = load_model("planted-induction@s0", backend="nnsight", device="cpu")
    return tl, nn


def _repeated(batch: int = 4, half: int = 8, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    rand = torch.randint(1, 20, (batch, half), generator=gen)
    return torch.cat([torch.zeros(batch, 1, dtype=torch.long), rand, rand], dim=1)


def test_planted_meta_and_shape_facts(planted_pair: tuple) -> None:
    tl, nn = planted_pair
    assert nn.backend == "nnsight" and nn.spec == tl.spec
    assert nn.bos_token_id == tl.bos_token_id == 0
    assert nn.meta["ground_truth"] is not None
    assert (nn.n_layers, nn.n_heads, nn.d_model, nn.d_vocab, nn.has_mlp) == (
        tl.n_layers, tl.n_heads, tl.d_model, tl.d_vocab, tl.has_mlp)
    assert nn.checkpoint_hash() == tl.checkpoint_hash()


def test_planted_activations_equal_transformer_lens(planted_pair: tuple) -> None:
    tl, nn = planted_pair
    tokens = _repeated()
    names = tl.hook_names()  # includes attention-only aliases (resid_mid, ln_final)
    ref_logits, ref_cache = tl.run_with_cache(tokens, names, check_nan=False)
    logits, cache = nn.run_with_cache(tokens, names, check_nan=False)
    assert _max_gap(logits, ref_logits) <= ATOL
    for name in names:
        assert _max_gap(cache[name], ref_cache[name]) <= ATOL, name
    nn.check_residual_identities(tokens)


def test_planted_interventions_and_gradients_equal_transformer_lens(planted_pair: tuple) -> None:
    tl, nn = planted_pair
    tokens = _repeated(seed=1)
    induction = tl.meta["ground_truth"].heads("induction")[0]
    prev = tl.meta["ground_truth"].heads("previous_token")[0]
    ivs = [Intervention(f"blocks.{prev[0]}.attn.hook_z", 0.0, heads=[prev[1]]),
           Intervention(f"blocks.{induction[0]}.attn.hook_pattern", 0.0, heads=[induction[1]], positions=[12])]
    ref, _ = tl.run_with_interventions(tokens, ivs)
    got, _ = nn.run_with_interventions(tokens, ivs)
    assert _max_gap(ref, tl.forward(tokens)) > 1e-2  # ablating the previous-token head matters
    assert _max_gap(got, ref) <= ATOL

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1].log_softmax(-1)[:, 3]

    hooks = [f"blocks.{induction[0]}.attn.hook_z", "blocks.0.hook_resid_post", "hook_embed"]
    _, _, ref_grads = tl.gradients(tokens, hooks, metric)
    _, _, grads = nn.gradients(tokens, hooks, metric)
    for name in hooks:
        assert float(ref_grads[name].abs().max()) > 0, name
        assert _max_gap(grads[name], ref_grads[name]) <= ATOL, name


def test_stacked_variants_equal_separate_runs(planted_pair: tuple) -> None:
    """V patched variants of a batch in one forward give the same logits as V forwards."""
    tl, nn = planted_pair
    tokens = _repeated(batch=3, seed=2)
    variants = [{"blocks.1.attn.hook_z": [_zero_head(h)]} for h in range(nn.n_heads)]
    for handle in (tl, nn):
        stacked = run_stacked_variants(handle, tokens, variants)
        assert stacked.shape == (len(variants), *tokens.shape, handle.d_vocab)
        for v, edits in enumerate(variants):
            single, _ = handle.run_with_edits(tokens, edits)
            assert _max_gap(stacked[v], single) <= ATOL


def _zero_head(head: int):
    def edit(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        z[:, :, head] = 0.0
        return z

    return edit


def test_as_handle_accepts_users_nnsight_models(tiny_gpt2_dir, planted_pair: tuple) -> None:
    import nnsight
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(tiny_gpt2_dir)
    tokens = torch.randint(1, 100, (2, 6))
    with torch.no_grad():
        expected = hf(tokens).logits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapped = [nnsight.TransformersModel(hf, tokenizer=tok), nnsight.LanguageModel(hf, tokenizer=tok),
                   nnsight.NNsight(hf)]
    for model in wrapped:
        handle = as_handle(model)
        assert handle.backend == "nnsight"
        assert _max_gap(handle.forward(tokens), expected) <= ATOL
        _, cache = handle.run_with_cache(tokens, ["blocks.1.attn.hook_pattern"])
        assert torch.allclose(cache["blocks.1.attn.hook_pattern"].sum(-1), torch.ones(2, 4, 6))
    tl, _ = planted_pair
    users_tl = as_handle(nnsight.NNsight(tl.model))
    assert users_tl.backend == "nnsight"
    assert _max_gap(users_tl.forward(_repeated()), tl.forward(_repeated())) <= ATOL


def test_sdpa_model_is_switched_to_eager_with_a_warning(tiny_gpt2_dir) -> None:
    import nnsight
    from transformers import AutoModelForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(tiny_gpt2_dir, attn_implementation="sdpa").eval()
    with pytest.warns(UserWarning, match="eager"):
        handle = as_handle(nnsight.NNsight(hf))
    _, cache = handle.run_with_cache(torch.randint(1, 100, (1, 5)), ["blocks.0.attn.hook_pattern"])
    assert cache["blocks.0.attn.hook_pattern"].shape == (1, 4, 5, 5)
