"""Bad input, one table: every row is a call that must be refused with a clear error.

A row is (``family/what``, a call on the shared fixtures, the exception type, a substring of the
message that names what is allowed). No row may end in a raw torch/Python error, and none may
pass silently. :func:`row_counts` gives the rows per family (the README states them).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch

import mi_assert
from mi_assert import loading
from mi_assert.causal.recovery import check_gap
from mi_assert.errors import (
    MiAssertInputError,
    ModelUnavailableError,
    UnknownHookError,
    UnsupportedModelError,
)
from mi_assert.prompts import repeated_tokens
from mi_assert.prompts.generators import make_split
from mi_assert.prompts.pairs import factual_recall
from mi_assert.sae.synthetic import basis_sae, random_sae
from mi_assert.sae.zoo import load_sae
from mi_assert.seeding import seed_everything
from mi_assert.stats.multiple import holm_adjust
from mi_assert.stats.statistic import Mean, RatioOfMeans

E = MiAssertInputError
HOOK = "blocks.0.hook_resid_post"
Z_HOOK = "blocks.0.attn.hook_z"
STORE = "When Mary and John went to the store"


class Fixtures:
    """Small models and data, each built on first use and shared by every row of the module."""

    @cached_property
    def planted(self) -> Any:
        """planted-induction@s0: 2 layers x 4 heads, attention only, d_vocab 64, n_ctx 64."""
        return mi_assert.load_model("planted-induction@s0", device="cpu")

    @cached_property
    def broken(self) -> Any:
        """A planted model with NaN weights in a query and an output matrix (its own copy: other
        rows keep finite weights)."""
        handle = mi_assert.load_model("planted-induction@s5", device="cpu")
        with torch.no_grad():
            handle.model.blocks[0].attn.W_Q[0, 0, 0] = float("nan")
            handle.model.blocks[0].attn.W_O[0, 0, 0] = float("nan")
        return handle

    @cached_property
    def attn(self) -> Any:
        """attn-only-2l-induction@s0: 4 heads of d_head 16 (hook_z width 64)."""
        return mi_assert.load_model("attn-only-2l-induction@s0", device="cpu")

    @cached_property
    def tiny(self) -> Any:
        """tiny-gpt2: byte-level BPE tokenizer, MLPs."""
        return mi_assert.load_model("tiny-gpt2", device="cpu")

    @cached_property
    def ioi(self) -> Any:
        """ioi-small: a word-level tokenizer with an unknown token."""
        return mi_assert.load_model("ioi-small", device="cpu")

    @cached_property
    def pairs(self) -> Any:
        """16 swap-corrupted induction pairs on the planted model (18 tokens)."""
        from mi_assert.prompts.pairs import induction_pairs

        return induction_pairs(self.planted, seed=0, n_prompts=16)

    @cached_property
    def repeated(self) -> torch.Tensor:
        """BOS + 8 random tokens repeated twice, 16 prompts of 17 tokens."""
        return repeated_tokens(16, 8, 64, seed=1, bos_token_id=0)

    @cached_property
    def basis(self) -> Any:
        """The exact basis SAE of the planted layer-0 residual stream (264 latents)."""
        return basis_sae(self.planted.d_model, HOOK, "planted-induction@s0")

    def sae(self, d_in: int, hook: str = Z_HOOK) -> Any:
        sae = random_sae(d_in, 16, seed=0)
        sae.cfg.metadata.hook_name = hook
        return sae

    @cached_property
    def activations(self) -> torch.Tensor:
        return torch.randn(32, self.planted.d_model, generator=torch.Generator().manual_seed(0))

    @cached_property
    def logits(self) -> torch.Tensor:
        """Logits [3 prompts, 5 positions, 7 tokens]."""
        return torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(0))

    @cached_property
    def folder(self) -> Path:
        """An empty folder (neither a model checkpoint nor an SAE)."""
        return Path(tempfile.mkdtemp(prefix="mi-assert-bad-inputs-"))

    @cached_property
    def gemma_folder(self) -> Path:
        """A Hugging Face config of an architecture no backend maps."""
        from transformers import GemmaConfig

        path = Path(tempfile.mkdtemp(prefix="mi-assert-gemma-"))
        GemmaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                    num_attention_heads=2, vocab_size=50).save_pretrained(path)
        return path


@dataclass(frozen=True)
class Row:
    id: str
    call: Callable[[Fixtures], object]
    error: type[Exception]
    says: str

    @property
    def family(self) -> str:
        return self.id.split("/", 1)[0]


# ----- helpers for rows that need a little set-up --------------------------------------------------
@contextlib.contextmanager
def hub_unreachable(declared: bool = False) -> Iterator[None]:
    """The hub unreachable (by probe, or declared with HF_HUB_OFFLINE=1), no real network used."""
    import huggingface_hub.constants

    env = {"HF_HUB_OFFLINE": "1"} if declared else {}
    cleared = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    with mock.patch.dict(os.environ, {**cleared, **env}, clear=True), \
            mock.patch.object(huggingface_hub.constants, "HF_HUB_OFFLINE", False), \
            mock.patch.object(loading, "hub_reachable", return_value=False):
        yield


def load_offline(name: str, declared: bool = False) -> object:
    with hub_unreachable(declared):
        return loading.load_model(name, device="cpu", backend="nnsight")


def duplicated_pairs(f: Fixtures) -> Any:
    """16 pairs that are 4 distinct pairs repeated."""
    ps = f.pairs
    idx = torch.arange(16) % 4
    return mi_assert.PromptSet(ps.clean[idx], ps.corrupted[idx], ps.correct[idx], ps.wrong[idx])


def steer(f: Fixtures, **kwargs: Any) -> object:
    kwargs.setdefault("metric", lambda logits: logits[:, -1, 0])
    return mi_assert.check_feature_steering(f.basis, f.planted, f.repeated, 1, **kwargs)


def dla(f: Fixtures, **kwargs: Any) -> object:
    ps = f.pairs
    args = {"components": (1, 0), "correct_ids": ps.correct, "wrong_ids": ps.wrong,
            "min_share": 0.5, **kwargs}
    return mi_assert.check_direct_logit_attribution(f.planted, ps.clean, **args)


def lens(f: Fixtures, **kwargs: Any) -> object:
    return mi_assert.check_logit_lens(f.planted, f.pairs.clean, **{"answer_ids": f.pairs.correct, **kwargs})


def probe(f: Fixtures, **kwargs: Any) -> object:
    args = {"hook": HOOK, "labels": f.repeated[:, -1], **kwargs}
    return mi_assert.check_probe_accuracy(f.planted, args.pop("hook"), f.repeated, **args)


def recovery(f: Fixtures, *args: Any, **kwargs: Any) -> object:
    return mi_assert.check_patching_recovery(f.planted, *args, **kwargs)


def induction(f: Fixtures, *heads: Any, **options: Any) -> object:
    return mi_assert.check_induction_head(f.planted, *(heads or (1, 0)), **options)


def reconstruction(f: Fixtures, **kwargs: Any) -> object:
    return mi_assert.check_sae_reconstruction(f.basis, f.planted, f.repeated, **kwargs)


def from_activations(f: Fixtures, acts: Any = None, **kwargs: Any) -> object:
    sae = basis_sae(f.planted.d_model, HOOK)
    return mi_assert.check_sae_reconstruction(sae, activations=f.activations if acts is None else acts, **kwargs)


def with_nan(x: torch.Tensor) -> torch.Tensor:
    out = x.clone()
    out[3, 5] = math.nan
    return out


def intervene(f: Fixtures, **kwargs: Any) -> object:
    args = {"hook": "blocks.0.hook_resid_pre", "value": 0.0, **kwargs}
    return f.planted.run_with_interventions(f.repeated, [mi_assert.Intervention(**args)])


def transcoder(f: Fixtures) -> object:
    from sae_lens.saes import Transcoder, TranscoderConfig

    tc = Transcoder(TranscoderConfig(d_in=264, d_sae=32, d_out=264, apply_b_dec_to_input=False))
    tc.cfg.metadata.hook_name = HOOK
    return mi_assert.check_sae_reconstruction(tc, f.planted, f.repeated)


# ----- the table ----------------------------------------------------------------------------------
ROWS: tuple[Row, ...] = (
    # loading: load_model's arguments
    Row("loading/unknown-kwarg-planted", lambda f: mi_assert.load_model("planted-induction", device="cpu", foo=1),
        E, "Extra keywords allowed: d_vocab, n_ctx, offset, strength, noise"),
    Row("loading/misspelt-builder-option", lambda f: mi_assert.load_model("planted-induction", device="cpu", nois=0.1),
        E, "Did you mean 'noise'?"),
    Row("loading/kwarg-on-trained-checkpoint", lambda f: mi_assert.load_model("attn-only-2l-induction", device="cpu", foo=1),
        E, "Extra keywords allowed: none"),
    Row("loading/misspelt-own-option", lambda f: mi_assert.load_model("ioi-small", device="cpu", dtyp="fp16"),
        E, "Did you mean 'dtype'?"),
    Row("loading/unknown-kwarg-hf", lambda f: mi_assert.load_model("tiny-gpt2", device="cpu", flash=True),
        E, "allowed: device_map, n_devices, max_memory, revision, trust_remote_code"),
    Row("loading/unknown-backend", lambda f: mi_assert.load_model("planted-induction", backend="jax"),
        E, "allowed: transformer_lens, bridge, nnsight"),
    Row("loading/bridge-on-native-model", lambda f: mi_assert.load_model("planted-induction", backend="bridge", device="cpu"),
        E, "Use backend='transformer_lens' or 'nnsight'"),
    Row("loading/bad-device", lambda f: mi_assert.load_model("planted-induction", device="gpu"),
        E, "e.g. 'auto', 'cpu', 'cuda', 'cuda:1'"),
    Row("loading/bad-dtype", lambda f: mi_assert.load_model("planted-induction", dtype="fp8"),
        E, "allowed: float32, fp32, float16"),
    Row("loading/missing-path", lambda f: mi_assert.load_model("./no/such/checkpoint"),
        E, "Give a zoo name"),
    Row("loading/folder-without-config", lambda f: mi_assert.load_model(str(f.folder), device="cpu"),
        E, "expected a folder with config.json"),
    Row("loading/not-a-name", lambda f: mi_assert.load_model(123),
        E, "a model name or path (a str or Path)"),
    Row("loading/hub-unreachable", lambda f: load_offline("nobody/no-such-model-xyz"),
        ModelUnavailableError, "set HF_HUB_OFFLINE=1 to make this check instant"),
    Row("loading/hub-declared-offline", lambda f: load_offline("nobody/no-such-model-xyz", declared=True),
        ModelUnavailableError, "Zoo models work offline: attn-only-2l-induction"),
    Row("loading/unsupported-architecture", lambda f: mi_assert.load_model(str(f.gemma_folder), device="cpu"),
        UnsupportedModelError, "supported model types: gpt2, gpt_neox, llama, mistral, qwen2"),
    Row("loading/plain-module", lambda f: mi_assert.as_handle(torch.nn.Linear(3, 3)),
        UnsupportedModelError, "HookedTransformer"),
    # zoo: names, seeds, steps
    Row("zoo/misspelt-name", lambda f: mi_assert.load_model("planted-induktion"),
        E, "Did you mean 'planted-induction'"),
    Row("zoo/unknown-seed", lambda f: mi_assert.load_model("ioi-small@s7", device="cpu"),
        E, "has seeds [0, 1, 2]"),
    Row("zoo/seed-out-of-range", lambda f: mi_assert.load_model("planted-induction", seed=5000),
        E, "has seeds [0, 1, 2"),
    Row("zoo/missing-step", lambda f: mi_assert.load_model("attn-only-2l-induction@s0:step150", device="cpu"),
        ModelUnavailableError, "available steps: step0, step100"),
    Row("zoo/step-of-planted-model", lambda f: mi_assert.load_model("planted-induction:step10"),
        E, "planted models have no training steps"),
    Row("zoo/checkpoints-of-unknown", lambda f: mi_assert.checkpoints_of("nope"),
        E, "Zoo models: attn-only-2l-induction, ioi-small"),
    # backends: hooks, token ids, string prompts, interventions
    Row("backends/misspelt-hook", lambda f: f.planted.parse_hook("blocks.1.attn.hook_patern"),
        UnknownHookError, "Did you mean 'blocks.1.attn.hook_pattern'"),
    Row("backends/hook-layer-out-of-range", lambda f: f.planted.parse_hook("blocks.7.hook_resid_pre"),
        E, "the model has 2 layers (0..1)"),
    Row("backends/hook-not-a-string", lambda f: f.planted.run_with_cache(f.repeated, [3]),
        E, "hook name must be a string"),
    Row("backends/misspelt-hook-nnsight", lambda f: f.tiny.run_with_cache(torch.ones(1, 4, dtype=torch.long), ["blocks.0.hook_resid_pree"]),
        UnknownHookError, "blocks.0.hook_resid_pre"),
    Row("backends/layer-out-of-range", lambda f: f.planted.check_layer(5),
        E, "the model has 2 layers (0..1)"),
    Row("backends/head-out-of-range", lambda f: f.planted.check_head(0, 9),
        E, "layer 0 has 4 heads (0..3)"),
    Row("backends/prompt-beyond-n_ctx", lambda f: f.planted.forward(torch.zeros(1, 65, dtype=torch.long)),
        E, "exceeds the model's context n_ctx=64"),
    Row("backends/token-id-out-of-range", lambda f: f.planted.forward(torch.tensor([[70, 1]])),
        E, "token ids must lie in 0..63"),
    Row("backends/negative-token-id", lambda f: f.planted.forward(torch.tensor([[-1, 1]])),
        E, "token ids must lie in 0..63"),
    Row("backends/float-tokens", lambda f: f.planted.forward(torch.zeros(1, 3)),
        E, "a LongTensor [batch, pos], lists of ints of one length"),
    Row("backends/float-token-list", lambda f: f.planted.forward([[1.5, 2.0]]),
        E, "got dtype torch.float32"),
    Row("backends/bool-tokens", lambda f: f.planted.forward(torch.tensor([[True, False]])),
        E, "a LongTensor [batch, pos]"),
    Row("backends/ragged-token-lists", lambda f: f.planted.forward([[1, 2], [3]]),
        E, "lists of ints of one length"),
    Row("backends/no-tokens", lambda f: f.planted.forward(None),
        E, "a LongTensor [batch, pos]"),
    Row("backends/empty-batch", lambda f: f.planted.forward(torch.zeros(0, 5, dtype=torch.long)),
        E, "need at least one prompt of length >= 1"),
    Row("backends/3d-tokens", lambda f: f.planted.forward(torch.zeros(2, 3, 4, dtype=torch.long)),
        E, "tokens must be [batch, pos]"),
    Row("backends/strings-without-tokenizer", lambda f: f.planted.forward("hello"),
        E, "pass token ids (a LongTensor [batch, pos])"),
    Row("backends/prompts-of-different-lengths", lambda f: f.tiny.to_tokens([STORE, "When Christopher and John went to the store"]),
        E, "prompt 1: ' Christopher' -> [' Chris', 't', 'o', 'p', 'he', 'r']"),
    Row("backends/prompt-token-count-with-bos", lambda f: f.tiny.to_tokens([STORE, "When Christopher and John went to the store"]),
        E, "has 14"),
    Row("backends/prompts-missing-a-word", lambda f: f.tiny.to_tokens(["Mary went", "Mary and John went"]),
        E, "different numbers of words"),
    Row("backends/prompt-words-outside-vocabulary", lambda f: f.ioi.to_tokens(["When Mary went", "When Zanzibar went"]),
        E, "Use words in the vocabulary, or pass token ids"),
    Row("backends/intervention-value-shape", lambda f: intervene(f, value=torch.zeros(3, 5)),
        E, "does not broadcast to the selected slice"),
    Row("backends/intervention-mode", lambda f: intervene(f, mode="mul"),
        E, "allowed 'replace' or 'add'"),
    Row("backends/intervention-head-out-of-range", lambda f: intervene(f, hook=Z_HOOK, heads=[9]),
        E, "layer 0 has 4 heads (0..3)"),
    Row("backends/intervention-position-out-of-range", lambda f: intervene(f, positions=[99]),
        E, "with 17 positions"),
    Row("backends/intervention-heads-on-resid", lambda f: intervene(f, heads=[1]),
        E, "per-head hooks are attn.hook_q/k/v/z/pattern/attn_scores"),
    Row("backends/edit-wrong-shape", lambda f: f.tiny.run_with_edits(torch.ones(1, 4, dtype=torch.long), {Z_HOOK: lambda z: z[..., 0]}),
        E, "must return a tensor of the activation's shape"),
    # metrics: answers, positions, what a metric returns
    Row("metrics/answer-not-single-token", lambda f: mi_assert.logit_diff("Paris", "London").bind(f.tiny),
        E, "'Paris' is 3 tokens ['P', 'ar', 'is']"),
    Row("metrics/answer-needs-leading-space", lambda f: mi_assert.logit_diff("store", " John").bind(f.tiny),
        E, "(' store' is one token"),
    Row("metrics/answer-outside-vocabulary", lambda f: mi_assert.logit_diff("Mary", "Zanzibar").bind(f.ioi),
        E, "'Zanzibar' is not in the vocabulary"),
    Row("metrics/answer-strings-without-tokenizer", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, metric=mi_assert.logit_diff("a", "b")),
        E, "pass token ids (an int, a list of ints or a LongTensor [batch])"),
    Row("metrics/unbound-answer-strings", lambda f: mi_assert.logit_diff("Paris", 3)(f.logits),
        E, "call metric.bind(model) first, or pass token ids"),
    Row("metrics/strings-mixed-with-ids", lambda f: mi_assert.logit_diff(["Mary", 3], 1),
        E, "mixes strings and ids"),
    Row("metrics/float-answer-ids", lambda f: mi_assert.logit_diff(1.5, 2),
        E, "an int, a list of ints, an integer tensor [batch], or answer strings"),
    Row("metrics/empty-answers", lambda f: mi_assert.logprob([]),
        E, "token_ids is empty"),
    Row("metrics/answers-vs-batch", lambda f: mi_assert.logit_diff(torch.tensor([1, 2]), torch.tensor([0, 0]))(f.logits),
        E, "give one answer id per prompt (or a single int for all)"),
    Row("metrics/answer-id-out-of-range", lambda f: mi_assert.logprob(torch.tensor([1, 2, 99]))(f.logits),
        E, "token ids must lie in 0..6"),
    Row("metrics/position-out-of-range", lambda f: mi_assert.logprob(1, position=9)(f.logits),
        E, "(allowed -5..4)"),
    Row("metrics/position-not-int", lambda f: mi_assert.logit_diff(1, 2, position=1.5),
        E, "position must be an int or a LongTensor [batch]"),
    Row("metrics/per-prompt-positions-2d", lambda f: mi_assert.logprob(1, position=torch.zeros(2, 2, dtype=torch.long)),
        E, "an integer tensor [batch]"),
    Row("metrics/returns-a-scalar", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, metric=lambda lg: lg[:, -1, 0].mean()),
        E, "return per-prompt values instead"),
    Row("metrics/returns-wrong-shape", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, metric=lambda lg: lg[:, -1, :2]),
        E, "expected (16,): one value per prompt"),
    Row("metrics/returns-not-a-tensor", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, metric=lambda lg: 1.0),
        E, "a metric must return a Tensor [batch]"),
    Row("metrics/returns-nan", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, metric=lambda lg: lg[:, -1, 0] * math.nan),
        E, "returned NaN/inf values"),
    Row("metrics/kl-without-logits", lambda f: mi_assert.kl_to_clean(torch.zeros(3)),
        E, "needs the clean run's logits [batch, pos, d_vocab]"),
    Row("metrics/unknown-metric-name", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, metric="logitdiff"),
        E, "one of logit_diff, logprob, prob"),
    Row("metrics/named-metric-without-answers", lambda f: mi_assert.patching_sweep(f.planted, f.pairs.clean, f.pairs.corrupted, "logit_diff"),
        E, "pass a metric object instead"),
    # causal: patching, ablation, paths, sweeps, circuits
    Row("causal/misaligned-corrupted", lambda f: recovery(f, f.pairs.clean, f.pairs.corrupted[:, :-1], ["L1H0"], mi_assert.logit_diff(f.pairs.correct, f.pairs.wrong)),
        E, "aligned token by token (same length)"),
    Row("causal/batch-mismatch", lambda f: recovery(f, f.pairs.clean, f.pairs.corrupted[:-1], ["L1H0"], mi_assert.logit_diff(1, 2)),
        E, "the batch sizes must match"),
    Row("causal/misspelt-component", lambda f: recovery(f, f.pairs, components=["L1H0", "atn1"]),
        UnknownHookError, "Allowed: (layer, head) tuples, 'L<l>H<h>'"),
    Row("causal/component-layer-out-of-range", lambda f: recovery(f, f.pairs, components=["L5H0"]),
        E, "the model has 2 layers"),
    Row("causal/component-head-out-of-range", lambda f: recovery(f, f.pairs, components=[(1, 4)]),
        E, "4 heads (0..3)"),
    Row("causal/mlp-on-attention-only-model", lambda f: recovery(f, f.pairs, components=["mlp0"]),
        E, "allowed sites are attnL, resid_preL, resid_midL, resid_postL and heads"),
    Row("causal/component-not-understood", lambda f: recovery(f, f.pairs, components=[3.5]),
        E, "use a (layer, head) tuple, a head name"),
    Row("causal/no-components", lambda f: recovery(f, f.pairs),
        E, "components is required"),
    Row("causal/zero-clean-corrupted-gap", lambda f: recovery(f, f.pairs.clean, f.pairs.clean.clone(), ["L1H0"], mi_assert.logit_diff(f.pairs.correct, f.pairs.wrong)),
        E, "The corrupted prompts must change the metric"),
    Row("causal/both-thresholds", lambda f: recovery(f, f.pairs, components=["L1H0"], min_recovery=0.5, max_recovery=0.9),
        E, "give min_recovery or max_recovery, not both"),
    Row("causal/recovery-threshold-when-noising", lambda f: recovery(f, f.pairs, components=["L1H0"], direction="noise", min_recovery=0.5),
        E, "for noising use min_drop/max_drop"),
    Row("causal/positions-out-of-range", lambda f: recovery(f, f.pairs, components=["L1H0"], positions=[99]),
        E, "positions must be ints in -18..17"),
    Row("causal/bad-direction", lambda f: recovery(f, f.pairs, components=["L1H0"], direction="up"),
        E, "allowed 'denoise' (clean into corrupted) or 'noise'"),
    Row("causal/fixed-metric-with-generator", lambda f: recovery(f, components=["L1H0"], prompts="induction_pairs", metric=mi_assert.logit_diff(1, 2)),
        E, "the metric must be a name ('logit_diff', 'logprob', 'prob')"),
    Row("causal/misspelt-generator", lambda f: recovery(f, components=["L1H0"], prompts="induction_pair"),
        E, "Did you mean 'induction_pairs'?"),
    Row("causal/prompt-kwargs-without-generator", lambda f: recovery(f, f.pairs, components=["L1H0"], prompt_kwargs={"n": 1}),
        E, "prompt_kwargs only apply with prompts=NAME of a generator"),
    Row("causal/too-few-distinct-pairs", lambda f: recovery(f, duplicated_pairs(f), components=["L1H0"]),
        E, "Give more distinct prompts (or lower min_prompts)"),
    Row("causal/noise-scale-negative", lambda f: mi_assert.check_ablation_effect(f.planted, f.pairs, ["L1H0"], method="noise", noise_scale=-1.0),
        E, "noise_scale must be a positive number"),
    Row("causal/sweep-max-batch-zero", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, max_batch=0),
        E, "max_batch must be an int >= 1"),
    Row("causal/sweep-recheck-negative", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, method="attribution", recheck_top_k=-1),
        E, "recheck_top_k must be an int >= 0"),
    Row("causal/ablation-method", lambda f: mi_assert.check_ablation_effect(f.planted, f.pairs, ["L1H0"], method="mean_"),
        E, "allowed: mean, zero, resample, noise"),
    Row("causal/ablation-reference-length", lambda f: mi_assert.check_ablation_effect(f.planted, f.pairs, ["L1H0"], reference=f.pairs.clean[:, :-2]),
        E, "so they must have the same length"),
    Row("causal/path-without-a-path", lambda f: mi_assert.check_path_patching(f.planted, f.pairs, sender="L1H0", receivers=["L0H1"]),
        E, "not after the sender L1H0 (layer 1)"),
    Row("causal/path-receiver-input", lambda f: mi_assert.check_path_patching(f.planted, f.pairs, sender="L0H0", receivers=["L1H0"], receiver_input="z"),
        E, "allowed q, k, v, resid"),
    Row("causal/path-receivers-not-heads", lambda f: mi_assert.check_path_patching(f.planted, f.pairs, sender="L0H0", receivers=["attn1"]),
        E, "must be attention heads (their q/k/v inputs are patched) or the string 'logits'"),
    Row("causal/path-without-sender", lambda f: mi_assert.check_path_patching(f.planted, f.pairs, receivers=["L1H0"]),
        E, "sender and receivers are required"),
    Row("causal/sweep-misspelt-site", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, site="head_outs"),
        E, "Did you mean 'head_out'"),
    Row("causal/sweep-method", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, method="fast"),
        E, "allowed 'exact' or 'attribution'"),
    Row("causal/sweep-engine", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, engine="turbo"),
        E, "allowed auto, generic, layered, kernel"),
    Row("causal/sweep-positions", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, positions="some"),
        E, "allowed 'all' (patch every position at once) or 'each'"),
    Row("causal/sweep-mlp-on-attention-only-model", lambda f: mi_assert.patching_sweep(f.planted, f.pairs, site="mlp_out"),
        E, "is attention-only (no MLPs)"),
    Row("causal/sweep-without-corrupted", lambda f: mi_assert.patching_sweep(f.planted, f.pairs.clean),
        E, "patching needs corrupted prompts aligned with the clean ones"),
    Row("causal/circuit-ablation", lambda f: mi_assert.check_circuit_faithfulness(f.planted, f.pairs, ["L1H0"], ablation="foo"),
        E, "allowed mean, zero, resample"),
    Row("causal/circuit-nodes", lambda f: mi_assert.check_circuit_faithfulness(f.planted, f.pairs, ["L1H0"], nodes="foo"),
        E, "allowed auto, heads, heads+mlps"),
    Row("causal/completeness-max-gap", lambda f: mi_assert.check_circuit_completeness(f.planted, f.pairs, ["L1H0"], max_gap=0),
        E, "max_gap must be a finite number > 0"),
    # attribution: direct logit attribution, logit lens, composition, probes
    Row("attribution/dla-layer-out-of-range", lambda f: dla(f, components=(2, 0)),
        E, "the model has 2 layers (0..1)"),
    Row("attribution/dla-component-not-writing", lambda f: dla(f, components="resid_pre1"),
        E, "allowed: heads ((l, h), 'L1H3', '1.3'), 'attnL', 'mlpL', 'embed', 'pos_embed'"),
    Row("attribution/dla-answer-out-of-range", lambda f: dla(f, correct_ids=64),
        E, "correct_ids must lie in 0..63"),
    Row("attribution/dla-answers-vs-prompts", lambda f: dla(f, wrong_ids=[1, 2, 3]),
        E, "pass one id per prompt or a single id for all"),
    Row("attribution/dla-no-threshold", lambda f: dla(f, min_share=None),
        E, "give at least one threshold"),
    Row("attribution/dla-correct-equals-wrong", lambda f: mi_assert.direct_logit_attribution(f.planted, f.pairs.clean, f.pairs.correct, f.pairs.correct),
        E, "correct_ids equal wrong_ids"),
    Row("attribution/dla-missing-answers", lambda f: mi_assert.direct_logit_attribution(f.planted, f.pairs.clean),
        E, "pass token ids (an int, a list or a tensor [batch])"),
    Row("attribution/lens-layer-out-of-range", lambda f: lens(f, from_layer=2),
        E, "layer 2 is out of range"),
    Row("attribution/lens-top-k", lambda f: lens(f, top_k=0),
        E, "top_k must be an int in 1..64 (d_vocab)"),
    Row("attribution/lens-threshold-out-of-range", lambda f: lens(f, min_fraction=1.0),
        E, "needs a threshold in [lo, hi) = [0, 1)"),
    Row("attribution/lens-position-out-of-range", lambda f: lens(f, position=-50),
        E, "(allowed -18..17)"),
    Row("attribution/composition-kind", lambda f: mi_assert.composition_score(f.planted, (0, 0), (1, 0), kind="x"),
        E, "allowed 'q' (into the queries), 'k' (into the keys) or 'v' (into the values)"),
    Row("attribution/composition-layer-order", lambda f: mi_assert.check_composition(f.planted, (1, 0), (0, 1)),
        E, "a head can only compose with heads of later layers"),
    Row("attribution/composition-not-a-head", lambda f: mi_assert.check_composition(f.planted, "attn0", (1, 0)),
        E, "use (layer, head), 'L1H3' or '1.3'"),
    Row("attribution/probe-misspelt-hook", lambda f: probe(f, hook="blocks.0.hook_resid_postt"),
        UnknownHookError, "Did you mean 'blocks.0.hook_resid_post'"),
    Row("attribution/probe-label-shape", lambda f: probe(f, labels=f.repeated[:3, -1]),
        E, "it must be [16] (one position)"),
    Row("attribution/probe-control", lambda f: probe(f, control="foo"),
        E, "allowed 'shuffle', 'type'"),
    Row("attribution/probe-heldout-fraction", lambda f: probe(f, heldout_fraction=1.5),
        E, "heldout_fraction must lie in (0, 1)"),
    Row("attribution/probe-no-labels", lambda f: probe(f, labels=None),
        E, "pass exactly one of labels=... or labels_fn=tokens -> labels"),
    # heads: which head, which role, prompts
    Row("heads/layer-out-of-range", lambda f: induction(f, 2, 0),
        E, "the model has 2 layers (0..1)"),
    Row("heads/head-out-of-range", lambda f: induction(f, "L1H7"),
        E, "layer 1 has 4 heads (0..3)"),
    Row("heads/head-name-not-understood", lambda f: induction(f, "L1X2"),
        E, "write 'L5H5' or '5.5' (layer 5, head 5)"),
    Row("heads/no-head", lambda f: mi_assert.check_induction_head(f.planted),
        E, "no head given: use one of"),
    Row("heads/head-given-twice", lambda f: induction(f, [(1, 2), "L1H2"]),
        E, "heads listed more than once: L1H2"),
    Row("heads/repeat-beyond-n_ctx", lambda f: induction(f, repeat_lens=(8, 40)),
        E, "longest that fits is 31"),
    Row("heads/threshold-out-of-range", lambda f: induction(f, threshold=1.5),
        E, "threshold in [0, 1)"),
    Row("heads/copying-threshold", lambda f: mi_assert.check_copying_head(f.planted, 1, 0, threshold=2.0),
        E, "needs a threshold in [0, 1)"),
    Row("heads/misspelt-role", lambda f: mi_assert.find_heads(f.planted, "indction"),
        E, "Allowed: induction, previous_token, duplicate_token, bos, copying"),
    Row("heads/top-k", lambda f: mi_assert.find_heads(f.planted, "induction", top_k=0),
        E, "top_k (or None for every head) must be an int >= 1"),
    Row("heads/prompts-beyond-n_ctx", lambda f: mi_assert.find_heads(f.planted, "induction", prompts=torch.zeros(2, 70, dtype=torch.long)),
        E, "exceeds the model's context n_ctx=64"),
    Row("heads/nothing-to-attend-to", lambda f: mi_assert.check_previous_token_head(f.planted, 0, 0, prompts=torch.zeros(16, 1, dtype=torch.long)),
        E, "use prompts with repeated token"),
    Row("heads/split", lambda f: mi_assert.measure_role(f.planted, "induction", split="test"),
        E, "allowed 'fit' or 'heldout'"),
    Row("heads/nan-attention", lambda f: mi_assert.find_heads(f.broken, "previous_token"),
        E, "Check the model's weights and dtype"),
    Row("heads/too-few-distinct-prompts", lambda f: induction(f, prompts=f.repeated[:4]),
        E, "rests on 4 distinct prompts"),
    # options: the shared validator every family uses
    Row("options/unknown-option", lambda f: induction(f, seed=3),
        E, "Did you mean 'seeds'"),
    Row("options/misspelt-option", lambda f: induction(f, repeat_len=10),
        E, "Did you mean 'repeat_lens'?"),
    Row("options/duplicate-seeds", lambda f: induction(f, seeds=(0, 0)),
        E, "seeds must be distinct"),
    Row("options/no-seeds", lambda f: induction(f, seeds=[]),
        E, "seeds must be an int or a non-empty sequence"),
    Row("options/seeds-as-string", lambda f: induction(f, seeds="0"),
        E, "seeds must be an int"),
    Row("options/float-model-seeds", lambda f: induction(f, model_seeds=[1.5]),
        E, "model_seeds must be an int"),
    Row("options/quorum-above-seeds", lambda f: induction(f, seeds=[0, 1, 2], quorum=4),
        E, "an int count must lie in 1..3"),
    Row("options/alpha", lambda f: induction(f, alpha=0.7),
        E, "alpha must be a number in (0, 0.5)"),
    Row("options/alpha-as-string", lambda f: induction(f, alpha="0.05"),
        E, "alpha must be a number in (0, 0.5)"),
    Row("options/n-resamples", lambda f: induction(f, n_resamples=10),
        E, "n_resamples must be an int >= 100"),
    Row("options/min-prompts", lambda f: induction(f, min_prompts=1),
        E, "min_prompts must be an int >= 2"),
    Row("options/n-prompts", lambda f: induction(f, n_prompts=1),
        E, "n_prompts must be an int >= 2"),
    Row("options/batch-size", lambda f: induction(f, batch_size=0),
        E, "batch_size must be an int >= 1"),
    Row("options/nan-threshold", lambda f: induction(f, threshold=math.nan),
        E, "threshold must be a finite number"),
    Row("options/seed-and-seeds", lambda f: mi_assert.check_composition(f.planted, (0, 0), (1, 0), seed=0, seeds=[0]),
        E, "pass seeds= or its alias seed=, not both"),
    Row("options/quorum-causal", lambda f: recovery(f, f.pairs, components=["L1H0"], seeds=[0, 1], quorum=3),
        E, "an int count must lie in 1..2 (the number of seeds)"),
    Row("options/alpha-sae", lambda f: from_activations(f, alpha=0.7),
        E, "alpha must be a number in (0, 0.5)"),
    # sae: the SAE, its hook and width, activations, features, steering, loading
    Row("sae/d_in-mismatch", lambda f: mi_assert.check_sae_reconstruction(f.sae(64), f.planted, f.repeated),
        E, "needs d_in = n_heads * d_head = 512"),
    Row("sae/hook-z-wrong-width", lambda f: mi_assert.check_sae_reconstruction(f.sae(24), f.attn, f.repeated),
        E, "needs d_in = n_heads * d_head = 64"),
    Row("sae/single-head-width", lambda f: mi_assert.check_sae_reconstruction(f.sae(16), f.attn, f.repeated),
        E, "SAEs on per-head hooks must read all heads flattened (d_in = n_heads * d_head = 64"),
    Row("sae/residual-width", lambda f: mi_assert.check_sae_reconstruction(f.sae(100, HOOK), f.planted, f.repeated),
        E, "needs d_in=264"),
    Row("sae/hook-layer-out-of-range", lambda f: reconstruction(f, hook="blocks.7.hook_resid_post"),
        E, "Pass hook=... with a canonical TransformerLens name"),
    Row("sae/hook-not-in-config", lambda f: mi_assert.check_sae_reconstruction(f.sae(264, "synthetic"), f.planted, f.repeated),
        UnknownHookError, "(from sae.cfg.metadata.hook_name)"),
    Row("sae/nan-activations", lambda f: from_activations(f, with_nan(f.activations)),
        E, "mi-assert needs finite activations"),
    Row("sae/nan-model-activations", lambda f: mi_assert.check_sae_reconstruction(f.basis, f.broken, f.repeated),
        E, "non-finite value(s) (NaN or inf)"),
    Row("sae/empty-activations", lambda f: from_activations(f, torch.zeros(0, 264)),
        E, "must be a non-empty [n, d_in] or [batch, pos, d_in] tensor"),
    Row("sae/one-activation-row", lambda f: from_activations(f, torch.zeros(1, 264)),
        E, "need at least 2 activation rows"),
    Row("sae/integer-activations", lambda f: from_activations(f, torch.zeros(4, 264, dtype=torch.long)),
        E, "activations must be floating point"),
    Row("sae/model-and-activations", lambda f: mi_assert.check_sae_reconstruction(f.basis, f.planted, f.repeated, activations=f.activations),
        E, "give either a model and tokens"),
    Row("sae/ce-without-model", lambda f: from_activations(f, min_ce_loss_recovered=0.5),
        E, "pass model= and tokens= instead of activations="),
    Row("sae/tokens-missing", lambda f: mi_assert.check_sae_reconstruction(f.basis, f.planted),
        E, "tokens are required with a model"),
    Row("sae/empty-token-batch", lambda f: mi_assert.check_sae_reconstruction(f.basis, f.planted, torch.zeros(0, 5, dtype=torch.long)),
        E, "need at least one prompt"),
    Row("sae/ce-positions-out-of-range", lambda f: reconstruction(f, min_ce_loss_recovered=0.5, ce_positions=[99]),
        E, "have predicting positions 0..15"),
    Row("sae/ce-of-one-token", lambda f: mi_assert.check_sae_reconstruction(f.basis, f.planted, f.repeated[:, :1], min_ce_loss_recovered=0.5),
        E, "CE loss needs prompts of at least 2 tokens"),
    Row("sae/l0-range-reversed", lambda f: from_activations(f, l0_range=(5, 1)),
        E, "l0_range must be (low, high) with low < high"),
    Row("sae/threshold-out-of-range", lambda f: from_activations(f, min_explained_variance=1.0),
        E, "needs a threshold in [lo, hi) = [-inf, 1)"),
    Row("sae/not-an-sae", lambda f: mi_assert.check_sae_reconstruction(torch.nn.Linear(3, 3), activations=f.activations),
        E, "Load one with mi_assert.sae.load_sae(name_or_path)"),
    Row("sae/transcoder-reconstruction", transcoder,
        E, "assert_feature_fires and assert_feature_recovery work on transcoders"),
    Row("sae/feature-out-of-range", lambda f: mi_assert.check_feature_fires(f.basis, f.planted, f.repeated, f.repeated, feature=999),
        E, "the SAE has 264 latents (0..263)"),
    Row("sae/feature-position-out-of-range", lambda f: mi_assert.check_feature_fires(f.basis, f.planted, f.repeated, f.repeated, feature=1, position=99),
        E, "out of range for prompts of 17 tokens"),
    Row("sae/auroc-threshold", lambda f: mi_assert.check_feature_fires(f.basis, f.planted, f.repeated, f.repeated, feature=1, min_auroc=1.5),
        E, "needs a threshold in [lo, hi) = [0, 1)"),
    Row("sae/steering-metric-not-callable", lambda f: steer(f, metric="logit_diff"),
        E, "metric must be a callable logits [batch, pos, d_vocab] -> [batch]"),
    Row("sae/steering-metric-scalar", lambda f: steer(f, metric=lambda lg: lg.sum()),
        E, "expected (16,): one value per prompt"),
    Row("sae/steering-positions-out-of-range", lambda f: steer(f, positions=[99]),
        E, "out of range for 17 tokens"),
    Row("sae/steering-scale", lambda f: steer(f, scale=math.nan),
        E, "scale must be a finite number"),
    Row("sae/steering-answer-strings-without-tokenizer", lambda f: steer(f, metric=mi_assert.logit_diff("a", "b")),
        E, "has no tokenizer to turn them into token ids"),
    Row("sae/recovery-features-1d", lambda f: mi_assert.check_feature_recovery(f.basis, torch.zeros(5)),
        E, "true_features must be [n_features"),
    Row("sae/recovery-features-width", lambda f: mi_assert.check_feature_recovery(f.basis, torch.randn(10, 3)),
        E, "they must live in the same space"),
    Row("sae/recovery-zero-feature", lambda f: mi_assert.check_feature_recovery(f.basis, torch.zeros(10, 264)),
        E, "every feature needs a direction"),
    Row("sae/load-misspelt-zoo-sae", lambda f: load_sae("synthetic-topkk"),
        E, "Did you mean 'synthetic-topk'?"),
    Row("sae/load-missing-path", lambda f: load_sae("./nowhere/at/all"),
        E, "Give a zoo SAE"),
    Row("sae/load-folder-without-cfg", lambda f: load_sae(f.folder),
        E, "expected cfg.json and sae_weights.safetensors"),
    Row("sae/load-dtype", lambda f: load_sae("synthetic-topk", dtype="fp8"),
        E, "allowed: float32, float64, float16, bfloat16"),
    Row("sae/random-architecture", lambda f: random_sae(4, 4, 0, architecture="gated"),
        E, "allowed 'standard' or 'topk'"),
    # prompts: generators, prompt sets, random repeats
    Row("prompts/misspelt-generator", lambda f: make_split(f.planted, "indction_pairs"),
        E, "Did you mean 'induction_pairs'?"),
    Row("prompts/ioi-on-a-small-vocabulary", lambda f: make_split(f.planted, "ioi"),
        E, "use an ioi-small zoo model"),
    Row("prompts/unknown-generator-option", lambda f: make_split(f.planted, "induction_pairs", bogus=1),
        E, "unknown induction_pairs option"),
    Row("prompts/unknown-repeated-option", lambda f: make_split(f.planted, "repeated", bogus=1),
        E, "unknown repeated option 'bogus'"),
    Row("prompts/factual-recall-without-tokenizer", lambda f: factual_recall(f.planted),
        E, "use induction_pairs for token-id models"),
    Row("prompts/factual-recall-word-vocabulary", lambda f: factual_recall(f.ioi),
        E, "suits GPT-2-style BPE vocabularies"),
    Row("prompts/repeated-no-prompts", lambda f: repeated_tokens(0, 5, 10, 0),
        E, "need repeat_len >= 1 and n_prompts >= 1"),
    Row("prompts/repeated-empty-vocab", lambda f: repeated_tokens(2, 5, 10, 0, vocab=torch.tensor([], dtype=torch.long)),
        E, "vocab must be a non-empty 1-D integer tensor"),
    Row("prompts/repeated-no-repeats", lambda f: repeated_tokens(2, 5, 10, 0, n_repeats=0),
        E, "n_repeats must be an int >= 1"),
    Row("prompts/promptset-misaligned", lambda f: mi_assert.PromptSet(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long)),
        E, "aligned token by token (same length)"),
    Row("prompts/promptset-batch", lambda f: mi_assert.PromptSet(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 3, dtype=torch.long)),
        E, "the batch sizes must match"),
    Row("prompts/promptset-1d", lambda f: mi_assert.PromptSet(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long)),
        E, "must be token batches [batch, pos]"),
    # stats: the statistics engine's inputs
    Row("stats/bootstrap-no-samples", lambda f: mi_assert.bootstrap_mean([]),
        E, "need at least one value per unit"),
    Row("stats/bootstrap-alternative", lambda f: mi_assert.bootstrap_mean([1.0, 2.0, 3.0], alternative="bigger"),
        E, "allowed 'greater' or 'less'"),
    Row("stats/bootstrap-interval", lambda f: mi_assert.bootstrap_mean([1.0, 2.0, 3.0], interval="foo"),
        E, "allowed 'calibrated', 'BCa', 'expanded', 'studentized'"),
    Row("stats/bootstrap-strings", lambda f: mi_assert.bootstrap_mean("abc"),
        E, "samples must be numbers"),
    Row("stats/nan-samples", lambda f: Mean([1.0, math.nan, 2.0]),
        E, "1 of 3 values are NaN/inf"),
    Row("stats/unit-ids-vs-samples", lambda f: Mean([1.0, 2.0, 3.0], units=["a", "b"]),
        E, "2 unit ids for 3 samples"),
    Row("stats/ratio-lengths", lambda f: RatioOfMeans([1.0, 2.0, 3.0], [1.0, 1.0]),
        E, "a ratio of means pairs them per unit"),
    Row("stats/holm-p-value-above-one", lambda f: holm_adjust([0.01, 1.5]),
        E, "p-values must lie in [0, 1]"),
    Row("stats/holm-p-value-nan", lambda f: holm_adjust([math.nan]),
        E, "p-values must lie in [0, 1]"),
    Row("stats/seed-text", lambda f: seed_everything("x"),
        E, "seed must be a non-negative int"),
    Row("stats/zero-gap", lambda f: check_gap(np.ones(2), np.ones(2)),
        E, "The corrupted prompts must change the metric"),
)

FAMILIES: tuple[str, ...] = ("loading", "zoo", "backends", "metrics", "causal", "attribution",
                             "heads", "options", "sae", "prompts", "stats")


def row_counts() -> dict[str, int]:
    """Rows per family, in :data:`FAMILIES` order."""
    counts = Counter(row.family for row in ROWS)
    return {family: counts[family] for family in FAMILIES}


@pytest.fixture(scope="module")
def fixtures(one_torch_thread) -> Fixtures:
    return Fixtures()


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_refused_clearly(fixtures, row):
    with pytest.raises(Exception) as err:  # noqa: B017 - the type is checked below, with the message
        row.call(fixtures)
    assert isinstance(err.value, row.error), f"{row.id}: raised {type(err.value).__name__}: {err.value}"
    assert row.says in str(err.value), f"{row.id}: {row.says!r} not in {str(err.value)!r}"


def test_the_table_is_well_formed():
    ids = [row.id for row in ROWS]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    clear = (MiAssertInputError, ModelUnavailableError)
    for row in ROWS:
        assert row.family in FAMILIES, row.id
        assert row.says.strip(), f"{row.id} names nothing allowed"
        assert issubclass(row.error, clear), f"{row.id}: {row.error.__name__} is not a clear error"


def test_row_counts_cover_every_row():
    counts = row_counts()
    assert sum(counts.values()) == len(ROWS) >= 90
    assert all(counts.values()), counts


def test_readme_states_the_table_size() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    counts = row_counts()
    assert f"checks {sum(counts.values())} such inputs" in readme
    for family, n in counts.items():
        name = {"sae": "SAEs", "stats": "statistics"}.get(family, family)
        assert f"{name} {n}" in readme, f"README: {family} count {n}"
