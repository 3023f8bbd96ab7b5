"""Tracr-compiled RASP programs as HookedTransformers, with the compiler's graph as ground truth.

Tracr (Lindner et al. 2023) compiles a RASP program into transformer weights whose every
residual direction is a value of a named RASP variable (``tokens:a``, ``indices:3``,
``prev_2:c``), so which head reads which variable, as query, key or value, is known exactly.
``scripts/tracr_compile.py`` (run in its own virtual environment with jax and Tracr) exports
each program to ``mi_assert/zoo/tracr/NAME.npz`` (the compiled parameters under Tracr's names)
and ``NAME.json`` (config, encodings, the compiler's graph, example outputs); this module needs
only torch and TransformerLens.

Conversion: Tracr layer ``l``'s attention and MLP are block ``l`` of the HookedTransformer, no
normalisation, ReLU MLPs; the token ids are Tracr's input encoding (``BOS`` 0, ``PAD`` 1, the
vocabulary after), and the unembedding reads the output variable's directions into the logits
of the same token ids (BOS and PAD logits are 0), so ``logits[..., id]`` is the coordinate
Tracr's own unembedding takes its argmax over. A position where the program outputs None has
all logits 0.

Ground truth (:meth:`TracrProgram.ground_truth_edge_names`; as a
:class:`~mi_assert.edges.Circuit`: :func:`mi_assert.zoo.tracr_circuits.ground_truth_edges`,
kept apart so that the zoo registry can build these models without importing
:mod:`mi_assert.edges`): a receiver input reads a variable when the compiled
weight has a non-zero row in one of its directions, apart from the plumbing every head and MLP
reads (the ``tokens:BOS`` direction behind attend-to-BOS defaults and the constant ``one``);
the senders of a variable are the upstream nodes whose output weights write it (``embed`` for
``tokens`` and ``indices``); the writer of the program's output variable sends to the logits.
Edges that read only ``indices`` carry nothing in any pair of aligned clean/corrupted prompts
(both have the same positions), so patching scores them exactly 0: ``positional=False``
leaves them out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mi_assert.errors import MiAssertInputError

TRACR_ROOT = Path(__file__).parent / "tracr"
#: the compiled programs (``mi_assert/zoo/tracr/NAME.{npz,json}``)
PROGRAMS: tuple[str, ...] = ("tracr-induction", "tracr-sort")
FORMAT = "mi-assert-tracr/1"


@dataclass(frozen=True)
class TracrProgram:
    """A compiled program's export: encodings, the compiler's graph and Tracr's outputs."""

    name: str
    program: str
    output_variable: str
    config: dict[str, Any]
    residual_labels: tuple[str, ...]
    input_encoding: dict[str, int]
    output_values: tuple[str, ...]
    graph: dict[str, Any]
    examples: tuple[dict[str, Any], ...]
    bos: str = "BOS"
    meta: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def bos_token_id(self) -> int:
        return self.input_encoding[self.bos]

    @property
    def plumbing(self) -> tuple[str, ...]:
        return tuple(self.graph.get("plumbing", ()))

    def encode(self, seq: list[str]) -> list[int]:
        """Token ids of ``BOS`` followed by ``seq``."""
        unknown = sorted(set(seq) - set(self.input_encoding))
        if unknown:
            raise MiAssertInputError(f"{self.name}: tokens {unknown} are not in the vocabulary "
                                     f"{sorted(self.input_encoding)}")
        return [self.bos_token_id, *(self.input_encoding[t] for t in seq)]

    # ----- the compiler's graph as edges ----------------------------------------------------
    def _writers(self) -> dict[str, list[tuple[str, int, int]]]:
        """RASP variable -> the nodes that write one of its directions, as (name, layer,
        0 for a head / 1 for an MLP; embed is (embed, -1, 1)), in forward order."""
        embed = [("embed", -1, 1)]
        out: dict[str, list[tuple[str, int, int]]] = {"tokens": embed, "indices": embed,
                                                      "one": embed}
        nodes = [(h["name"], h["layer"], 0, h["writes"]) for h in self.graph["heads"]]
        nodes += [(m["name"], m["layer"], 1, m["writes"]) for m in self.graph["mlps"]]
        for name, layer, kind, writes in sorted(nodes, key=lambda n: (n[1], n[2])):
            for variable in writes:
                out.setdefault(variable, []).append((name, layer, kind))
        return out

    def _read(self, reads: dict[str, list[str]]) -> list[str]:
        """The variables a receiver input reads beyond the plumbing directions."""
        return [v for v, dirs in reads.items() if any(d not in self.plumbing for d in dirs)]

    def ground_truth_edge_names(self, positional: bool = True) -> list[str]:
        """The compiler's graph as edge names (module docstring), in the order the export
        lists heads and MLPs; ``positional=False`` drops edges that carry only ``indices``."""
        writers = self._writers()
        names: list[str] = []

        def add(receiver: str, layer: int, kind: int, reads: dict[str, list[str]]) -> None:
            for variable in self._read(reads):
                if not positional and variable == "indices":
                    continue
                for sender, s_layer, s_kind in writers.get(variable, []):
                    # upstream only: earlier layers, and a layer's heads before its MLP
                    if (s_layer, s_kind) < (layer, kind) and f"{sender}->{receiver}" not in names:
                        names.append(f"{sender}->{receiver}")

        for h in self.graph["heads"]:
            for inp in ("q", "k", "v"):
                add(f"{h['name']}.{inp}", h["layer"], 0, h[inp])
        for m in self.graph["mlps"]:
            add(m["name"], m["layer"], 1, m["reads"])
        names += [f"{sender}->logits" for sender, _, _ in writers[self.output_variable]]
        return names


@cache
def load_program(name: str) -> TracrProgram:
    """The committed export of ``name`` (one of :data:`PROGRAMS`)."""
    path = TRACR_ROOT / f"{name}.json"
    if name not in PROGRAMS or not path.exists():
        raise MiAssertInputError(f"no compiled Tracr program {name!r}; compiled: "
                                 f"{', '.join(PROGRAMS)} (scripts/tracr_compile.py)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise MiAssertInputError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return TracrProgram(
        name=name, program=meta["program"], output_variable=meta["output_variable"],
        config=meta["config"], residual_labels=tuple(meta["residual_labels"]),
        input_encoding=dict(meta["input_encoding"]), output_values=tuple(meta["output_values"]),
        graph=meta["graph"], examples=tuple(meta["examples"]), bos=meta["bos"], meta=meta)


def _state_dict(prog: TracrProgram, params: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    cfg = prog.config
    n_heads, d_head, d_model = int(cfg["n_heads"]), int(cfg["key_size"]), int(cfg["d_model"])

    def t(key: str) -> torch.Tensor:
        return torch.from_numpy(np.asarray(params[key], dtype=np.float32))

    state: dict[str, torch.Tensor] = {
        "embed.W_E": t("token_embed/embeddings"),
        "pos_embed.W_pos": t("pos_embed/embeddings")[: int(cfg["n_ctx"])],
    }
    for layer in range(int(cfg["n_layers"])):
        attn, block = f"transformer/layer_{layer}/attn", f"blocks.{layer}"
        for part, letter in (("query", "Q"), ("key", "K"), ("value", "V")):
            state[f"{block}.attn.W_{letter}"] = (
                t(f"{attn}/{part}/w").reshape(d_model, n_heads, d_head).permute(1, 0, 2))
            state[f"{block}.attn.b_{letter}"] = t(f"{attn}/{part}/b").reshape(n_heads, d_head)
        state[f"{block}.attn.W_O"] = t(f"{attn}/linear/w").reshape(n_heads, d_head, d_model)
        state[f"{block}.attn.b_O"] = t(f"{attn}/linear/b")
        mlp_key = f"transformer/layer_{layer}/mlp"
        state[f"{block}.mlp.W_in"] = t(f"{mlp_key}/linear_1/w")
        state[f"{block}.mlp.b_in"] = t(f"{mlp_key}/linear_1/b")
        state[f"{block}.mlp.W_out"] = t(f"{mlp_key}/linear_2/w")
        state[f"{block}.mlp.b_out"] = t(f"{mlp_key}/linear_2/b")
    d_vocab = len(prog.input_encoding)
    w_u = torch.zeros(d_model, d_vocab)
    for value in prog.output_values:
        w_u[prog.residual_labels.index(f"{prog.output_variable}:{value}"),
            prog.input_encoding[value]] = 1.0
    state["unembed.W_U"] = w_u
    state["unembed.b_U"] = torch.zeros(d_vocab)
    return state


def build_tracr_model(name: str) -> tuple[Any, TracrProgram]:
    """``(HookedTransformer, TracrProgram)`` of a compiled program, in eval mode on the CPU."""
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    prog = load_program(name)
    cfg = prog.config
    with np.load(TRACR_ROOT / f"{name}.npz") as data:
        params = {k: data[k] for k in data.files}
    tl_cfg = HookedTransformerConfig(
        n_layers=int(cfg["n_layers"]), d_model=int(cfg["d_model"]), d_head=int(cfg["key_size"]),
        n_heads=int(cfg["n_heads"]), d_mlp=int(cfg["mlp_hidden_size"]),
        d_vocab=len(prog.input_encoding), n_ctx=int(cfg["n_ctx"]), act_fn="relu",
        normalization_type=None, attn_only=False,
        attention_dir="causal" if cfg["causal"] else "bidirectional",
        default_prepend_bos=False, seed=0)
    model = HookedTransformer(tl_cfg)
    state = model.state_dict()
    converted = _state_dict(prog, params)
    for key, value in converted.items():
        if state[key].shape != value.shape:
            raise MiAssertInputError(f"{name}: {key} has shape {tuple(value.shape)} in the "
                                     f"export, {tuple(state[key].shape)} in the model")
    state.update(converted)
    model.load_state_dict(state)
    return model.eval(), prog


def zoo_builder(name: str) -> Any:
    """A zoo ``builder(seed, **kwargs) -> (model, program)`` for ``name`` (deterministic: one
    seed, no options)."""

    def build(seed: int, **kwargs: Any) -> tuple[Any, TracrProgram]:
        if kwargs:
            raise MiAssertInputError(f"zoo model {name!r} (compiled by Tracr) takes no options; "
                                     f"got {', '.join(sorted(kwargs))}")
        return build_tracr_model(name)

    return build


def program_of(spec: str) -> TracrProgram:
    """The export behind zoo spec ``spec`` (``tracr-induction``, ``tracr-sort@s0``)."""
    return load_program(str(spec).split("@")[0].split(":")[0])


__all__ = ["PROGRAMS", "TRACR_ROOT", "TracrProgram", "build_tracr_model", "load_program",
           "program_of", "zoo_builder"]
