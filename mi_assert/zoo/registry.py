"""The model zoo: names, what each model is, and where its weights come from.

Spec grammar for zoo names: ``NAME[@sSEED][:stepSTEP]``, e.g. ``planted-induction@s3``,
``attn-only-2l-induction@s1``, ``attn-only-2l-induction@s0:step200``. Trained models live as
committed checkpoints under ``mi_assert/zoo/checkpoints/NAME/sSEED/`` (``config.json`` with a
HookedTransformerConfig dict + ``model.safetensors``, intermediate ``stepK.safetensors``);
Hugging Face-format models live as ``save_pretrained`` folders.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from mi_assert.errors import MiAssertInputError, suggest

CHECKPOINT_ROOT = Path(__file__).parent / "checkpoints"
MANIFEST_PATH = CHECKPOINT_ROOT / "manifest.json"

_SPEC_RE = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+?)(?:@s(?P<seed>\d+))?(?::step(?P<step>\d+))?$")


@dataclass(frozen=True)
class ZooEntry:
    """One zoo model. ``kind``: 'planted' (built in code), 'trained' (native TL checkpoint),
    or 'hf' (a Hugging Face folder)."""

    name: str
    kind: str
    description: str
    seeds: tuple[int, ...] = (0,)
    builder: Callable[..., Any] | None = field(default=None, compare=False, repr=False)
    #: what ground truth a test can rely on (roles -> heads for planted; task for trained)
    ground_truth: str = ""

    def checkpoint_dir(self, seed: int) -> Path:
        if self.kind == "hf":
            return CHECKPOINT_ROOT / self.name
        return CHECKPOINT_ROOT / self.name / f"s{seed}"

    def hf_steps(self) -> list[int]:
        """Training steps saved as Hugging Face folders ``NAME/stepK/`` (an 'hf' entry with a
        training trajectory), in order; empty for a single-folder 'hf' entry."""
        if self.kind != "hf":
            return []
        root = CHECKPOINT_ROOT / self.name
        return sorted(int(d.name[4:]) for d in root.glob("step*")
                      if d.name[4:].isdigit() and (d / "config.json").exists())

    def hf_folder(self, step: int | None) -> Path:
        """The Hugging Face folder of ``step`` (None: the final one)."""
        steps = self.hf_steps()
        root = CHECKPOINT_ROOT / self.name
        if not steps:
            if step is not None:
                raise MiAssertInputError(f"zoo model {self.name!r} has no training steps; load it as {self.name!r}")
            return root
        if step is None:
            return root / f"step{steps[-1]}"
        if step not in steps:
            raise MiAssertInputError(
                f"zoo model {self.name!r} has no step {step}; available steps: "
                + ", ".join(str(k) for k in steps))
        return root / f"step{step}"


@dataclass(frozen=True)
class ZooSpec:
    name: str
    seed: int | None
    step: int | None

    def __str__(self) -> str:
        out = self.name
        if self.seed is not None:
            out += f"@s{self.seed}"
        if self.step is not None:
            out += f":step{self.step}"
        return out


def _planted_builder(seed: int, **kwargs: Any) -> Any:
    from mi_assert.zoo.planted import build_planted_induction

    return build_planted_induction(seed=seed, **kwargs)


_REGISTRY: dict[str, ZooEntry] = {}


def register(entry: ZooEntry) -> None:
    _REGISTRY[entry.name] = entry


register(ZooEntry(
    name="planted-induction",
    kind="planted",
    description="2-layer attention-only model with hand-set weights: previous-token, "
    "positional impostor, duplicate-token and BOS heads in layer 0; a K-composition "
    "induction head and distractors in layer 1. Any seed (head permutation + weight noise).",
    seeds=tuple(range(1000)),
    builder=_planted_builder,
    ground_truth="exact roles in PlantedCircuit (mi_assert.zoo.ground_truth(spec))",
))
register(ZooEntry(
    name="attn-only-2l-induction",
    kind="trained",
    description="2-layer attention-only model (d_model 64, 4 heads) trained 1500 steps on "
    "repeated random tokens (repeat lengths 8..32). s0: previous-token head L0H3 and induction "
    "heads in layer 1 at every length; s1, s2: induction that fades with distance (head score "
    "> 0.5 at repeat length 10, < 0.5 at 30). Intermediate steps 0..1000.",
    seeds=(0, 1, 2),
    ground_truth="head scores per repeat length, loss and accuracy in the manifest",
))
register(ZooEntry(
    name="ioi-small",
    kind="trained",
    description="3-layer transformer with MLPs (d_model 64, 4 heads) trained on the synthetic "
    "IOI task of mi_assert.prompts.ioi (fit templates, loss at END); >= 98% IO-over-S on "
    "held-out templates; word-level tokenizer.",
    seeds=(0, 1, 2),
    ground_truth="IOI accuracy / logit difference recorded in the manifest",
))
register(ZooEntry(
    name="kjv-gpt2-4l",
    kind="hf",
    description="GPT-2-style model (4 layers, d_model 256, 8 heads, d_mlp 512, context 256) with "
    "a byte-level BPE tokenizer (1024 tokens), trained on the King James Bible (Debian "
    "bible-kjv-text) by mi_assert.zoo.natural.train; log-spaced checkpoints stepK; circuits "
    "emerged, none planted.",
    seeds=(0,),
    ground_truth="discovered induction / previous-token heads and held-out loss in its manifest",
))
register(ZooEntry(
    name="tiny-gpt2",
    kind="hf",
    description="2-layer GPT-2 (d_model 64) in Hugging Face format (save_pretrained) with a "
    "project-built byte-level BPE tokenizer; briefly trained; for loader and backend-parity tests.",
    seeds=(0,),
    ground_truth="none (barely trained weights); parity across backends",
))


def _tracr_builder(name: str) -> Callable[..., Any]:
    def build(seed: int, **kwargs: Any) -> Any:
        from mi_assert.zoo.tracr_models import zoo_builder

        return zoo_builder(name)(seed, **kwargs)

    return build


register(ZooEntry(
    name="tracr-induction",
    kind="planted",
    description="RASP program compiled by Tracr (causal, 2 layers x 1 head, d_model 31, vocab "
    "a..f, BOS 0): L0H0 copies the previous token (prev), L1H0 attends where prev equals the "
    "current token and copies that position's token (keys read L0H0: K-composition).",
    seeds=(0,),
    builder=_tracr_builder("tracr-induction"),
    ground_truth="the compiler's graph: mi_assert.zoo.tracr_circuits.ground_truth_edges(spec)",
))
register(ZooEntry(
    name="tracr-sort",
    kind="planted",
    description="Tracr's make_sort_unique(tokens, tokens) compiled (bidirectional, 2 layers x "
    "1 head, d_model 37, vocab a..f, BOS 0): L0H0 + mlp0 compute each token's rank "
    "(SelectorWidth), L1H0 attends by rank (keys read mlp0) and copies the token.",
    seeds=(0,),
    builder=_tracr_builder("tracr-sort"),
    ground_truth="the compiler's graph: mi_assert.zoo.tracr_circuits.ground_truth_edges(spec)",
))


def available() -> list[str]:
    """Names of every zoo model."""
    return sorted(_REGISTRY)


def entries() -> list[ZooEntry]:
    return [_REGISTRY[n] for n in available()]


def is_zoo_spec(spec: str) -> bool:
    match = _SPEC_RE.match(spec)
    return bool(match and match.group("name") in _REGISTRY)


def parse_spec(spec: str) -> ZooSpec:
    match = _SPEC_RE.match(spec)
    if not match or match.group("name") not in _REGISTRY:
        raise MiAssertInputError(
            f"unknown zoo model {spec!r}.{suggest(spec.split('@')[0], available())} "
            f"Zoo models: {', '.join(available())} (spec form NAME[@sSEED][:stepSTEP])"
        )
    seed = match.group("seed")
    step = match.group("step")
    return ZooSpec(match.group("name"), int(seed) if seed else None, int(step) if step else None)


def get(name: str) -> ZooEntry:
    return _REGISTRY[parse_spec(name).name]


def manifest() -> dict[str, Any]:
    """The committed training manifest (empty when no model has been trained)."""
    if not MANIFEST_PATH.exists():
        return {}
    return cast(dict[str, Any], json.loads(MANIFEST_PATH.read_text()))
