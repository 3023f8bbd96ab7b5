"""One Hugging Face GPT-2, three backends: same logits, activations, interventions, gradients."""

from __future__ import annotations

import pytest
import torch

from mi_assert import Intervention
from tests.backends.conftest import ATOL, BACKENDS

OTHERS = [b for b in BACKENDS if b != "transformer_lens"]


def _tokens(seed: int = 0, batch: int = 3, pos: int = 12) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(2, 100, (batch, pos), generator=gen)
    tokens[:, 0] = 0  # BOS
    return tokens


def _max_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs difference over finite entries; infinities (masked scores) must coincide."""
    assert a.shape == b.shape, (a.shape, b.shape)
    finite = torch.isfinite(b)
    assert torch.equal(torch.isfinite(a), finite), "masked (non-finite) entries differ"
    return float((a[finite] - b[finite]).abs().max()) if finite.any() else 0.0


def test_shape_facts_agree(gpt2_handles: dict) -> None:
    facts = {b: (h.n_layers, h.n_heads, h.d_model, h.d_head, h.d_vocab, h.n_ctx, h.has_mlp,
                 h.bos_token_id) for b, h in gpt2_handles.items()}
    assert len(set(facts.values())) == 1, facts
    if not gpt2_handles["nnsight"].spec.startswith("tiny-gpt2"):  # the fixture's own model
        assert facts["nnsight"] == (2, 4, 64, 16, 100, 64, True, 0)
    assert {b: h.backend for b, h in gpt2_handles.items()} == {b: b for b in BACKENDS}


def assert_every_hook_matches(ref, other) -> dict:
    """Logits and every canonical hook of ``ref`` agree on ``other``; returns ``other``'s cache."""
    names = ref.hook_names()
    tokens = _tokens()
    ref_logits, ref_cache = ref.run_with_cache(tokens, names, check_nan=False)
    logits, cache = other.run_with_cache(tokens, names, check_nan=False)
    assert _max_gap(logits, ref_logits) <= ATOL
    gaps = {n: _max_gap(cache[n], ref_cache[n]) for n in names}
    assert max(gaps.values()) <= ATOL, {n: g for n, g in gaps.items() if g > ATOL}
    # the comparison is not vacuous: activations differ between hooks and prompts
    assert _max_gap(cache["blocks.1.attn.hook_pattern"], cache["blocks.0.attn.hook_pattern"]) > 1e-2
    return cache


@pytest.mark.parametrize("backend", OTHERS)
def test_logits_and_every_canonical_hook_match_transformer_lens(gpt2_handles: dict, backend: str) -> None:
    assert_every_hook_matches(gpt2_handles["transformer_lens"], gpt2_handles[backend])


def assert_nnsight_matches_raw_model(handle) -> None:
    tokens = _tokens(1)
    with torch.no_grad():
        hf_logits = handle.module(tokens).logits
    assert _max_gap(handle.forward(tokens), hf_logits) <= ATOL


def test_nnsight_matches_raw_hugging_face_model(gpt2_handles: dict) -> None:
    assert_nnsight_matches_raw_model(gpt2_handles["nnsight"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_residual_identities(gpt2_handles: dict, backend: str) -> None:
    gpt2_handles[backend].check_residual_identities(_tokens(2), atol=ATOL)


def _interventions(ref, tokens: torch.Tensor) -> list[list[Intervention]]:
    """Edits at every kind of site, values taken from a corrupted run where it makes sense."""
    corrupt = _tokens(7)
    names = ["blocks.0.attn.hook_z", "blocks.1.attn.hook_pattern", "blocks.1.attn.hook_q",
             "blocks.1.attn.hook_k", "blocks.0.attn.hook_v", "blocks.1.hook_resid_pre"]
    _, cc = ref.run_with_cache(corrupt, names)
    gen = torch.Generator().manual_seed(3)
    direction = torch.randn(ref.d_model, generator=gen)
    return [
        [Intervention("blocks.0.attn.hook_z", 0.0, heads=[1], positions=[2, 3])],
        [Intervention("blocks.0.attn.hook_z", cc["blocks.0.attn.hook_z"][:, :, [2]], heads=[2])],
        [Intervention("blocks.1.attn.hook_pattern", cc["blocks.1.attn.hook_pattern"][:, [0, 3]], heads=[0, 3])],
        [Intervention("blocks.1.attn.hook_q", cc["blocks.1.attn.hook_q"][:, 5:][:, :, [1]], heads=[1], positions=[5, 6, 7, 8, 9, 10, 11]),
         Intervention("blocks.1.attn.hook_k", 0.5, mode="add", heads=[1])],
        [Intervention("blocks.0.attn.hook_v", cc["blocks.0.attn.hook_v"])],
        [Intervention("blocks.1.hook_resid_pre", direction, mode="add", positions=[4])],
        [Intervention("blocks.1.hook_resid_pre", cc["blocks.1.hook_resid_pre"][:, [6]], positions=[6])],
        [Intervention("blocks.0.hook_resid_mid", direction * 2, mode="add")],
        [Intervention("blocks.1.hook_resid_post", lambda x: x.roll(1, dims=-1))],
        [Intervention("blocks.0.hook_mlp_out", 0.0), Intervention("blocks.1.hook_attn_out", 0.0, positions=[11])],
        [Intervention("hook_embed", direction, mode="add", positions=[1])],
        [Intervention("hook_pos_embed", 0.0)],
        [Intervention("ln_final.hook_normalized", lambda x: x.flip(-1))],
        [Intervention("blocks.0.attn.hook_attn_scores", lambda s: s + torch.linspace(0, 3, s.shape[-1]), heads=[0], positions=[3])],
    ]


def assert_interventions_match(ref, other, cases: list[list[Intervention]]) -> None:
    """Each intervention set changes the logits, and gives ``ref``'s logits and cache on ``other``."""
    tokens = _tokens()
    clean = ref.forward(tokens)
    for ivs in cases:
        ref_logits, ref_cache = ref.run_with_interventions(tokens, ivs, cache_hooks=[ivs[0].hook])
        logits, cache = other.run_with_interventions(tokens, ivs, cache_hooks=[ivs[0].hook])
        label = [(iv.hook, iv.mode, iv.heads, iv.positions) for iv in ivs]
        assert _max_gap(ref_logits, clean) > 1e-3, f"intervention had no effect: {label}"
        assert _max_gap(logits, ref_logits) <= ATOL, label
        # the cache is taken after the edit, like TransformerLens
        assert _max_gap(cache[ivs[0].hook], ref_cache[ivs[0].hook]) <= ATOL, label


@pytest.mark.parametrize("backend", OTHERS)
def test_interventions_give_identical_logits(gpt2_handles: dict, backend: str) -> None:
    ref = gpt2_handles["transformer_lens"]
    assert_interventions_match(ref, gpt2_handles[backend], _interventions(ref, _tokens()))


GRADIENT_HOOKS = ["hook_embed", "blocks.0.hook_resid_pre", "blocks.0.attn.hook_q",
                  "blocks.0.attn.hook_k", "blocks.0.attn.hook_v", "blocks.0.attn.hook_pattern",
                  "blocks.0.attn.hook_z", "blocks.0.hook_attn_out", "blocks.0.hook_resid_mid",
                  "blocks.1.hook_mlp_out", "blocks.1.attn.hook_z", "blocks.1.hook_resid_post",
                  "ln_final.hook_normalized"]


def assert_gradients_match(ref, other, hooks: list[str]) -> None:
    """d(logit difference)/d(activation) and the activations agree at every hook."""
    tokens = _tokens(4)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1, 5] - logits[:, -1, 7]

    _, ref_acts, ref_grads = ref.gradients(tokens, hooks, metric)
    _, acts, grads = other.gradients(tokens, hooks, metric)
    for name in hooks:
        assert float(ref_grads[name].abs().max()) > 1e-6, f"zero reference gradient at {name}"
        assert _max_gap(grads[name], ref_grads[name]) <= ATOL, name
        assert _max_gap(acts[name], ref_acts[name]) <= ATOL, name


@pytest.mark.parametrize("backend", OTHERS)
def test_gradients_agree(gpt2_handles: dict, backend: str) -> None:
    assert_gradients_match(gpt2_handles["transformer_lens"], gpt2_handles[backend],
                           ["hook_pos_embed", *GRADIENT_HOOKS])


WEIGHT_FIELDS = ("W_E", "W_U", "W_Q", "W_K", "W_V", "W_O")


def assert_weights_match(ref, other, fields: tuple[str, ...] = WEIGHT_FIELDS) -> None:
    """``other.weights()`` equals ``ref.weights()`` (TransformerLens layout) field by field."""
    ref_w, got = ref.weights(), other.weights()
    for field in fields:
        a, b = getattr(got, field), getattr(ref_w, field)
        assert a.shape == b.shape, field
        assert _max_gap(a, b) <= ATOL, field


def assert_patching_sweeps_equal(handles: dict) -> None:
    """The all-heads patching sweep gives TransformerLens's values on every backend."""
    import mi_assert

    clean, corrupted = _tokens(5, batch=4), _tokens(6, batch=4)
    metric = mi_assert.logit_diff(torch.tensor([5, 6, 7, 8]), torch.tensor([9, 10, 11, 12]))
    sweeps = {b: torch.as_tensor(mi_assert.patching_sweep(h, clean, corrupted, metric, site="head_out").values)
              for b, h in handles.items()}
    ref = sweeps["transformer_lens"]
    assert float(ref.abs().max()) > 1e-2
    for backend, values in sweeps.items():
        assert values.shape == ref.shape and _max_gap(values.float(), ref.float()) <= ATOL, backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_weights_in_transformer_lens_layout(gpt2_handles: dict, backend: str) -> None:
    assert_weights_match(gpt2_handles["transformer_lens"], gpt2_handles[backend], (*WEIGHT_FIELDS, "W_pos"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_strings_tokenize_the_same(gpt2_handles: dict, backend: str) -> None:
    handle = gpt2_handles[backend]
    if handle.spec.startswith("tiny-gpt2"):
        expected = gpt2_handles["transformer_lens"].to_tokens(["the cat sat"])
        assert handle.to_tokens(["the cat sat"]).tolist() == expected.tolist()
        return
    tokens = handle.to_tokens(["w1 w2 w3", "w4 w5 w6"])
    assert tokens.tolist() == [[0, 3, 4, 5], [0, 6, 7, 8]]
