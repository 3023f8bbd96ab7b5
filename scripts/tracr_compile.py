"""Compile RASP programs with Tracr and export them for ``mi_assert.zoo.tracr_models``.

Runs in its own virtual environment (jax and Tracr are not mi-assert dependencies)::

    python3 -m venv .venv-tracr
    .venv-tracr/bin/pip install tracr-pypi jax dm-haiku numpy
    .venv-tracr/bin/python scripts/tracr_compile.py [--out mi_assert/zoo/tracr]

Per program it writes ``NAME.npz`` (every compiled parameter under Tracr's own name, e.g.
``transformer/layer_0/attn/query/w``, plus ``token_embed/embeddings`` and
``pos_embed/embeddings``) and ``NAME.json``: the model config, the residual basis labels, the
input and output encodings, the compiler's graph (per attention head and MLP: which RASP
variables it reads as q / k / v or as input, and which it writes; read off the compiled
weights' non-zero rows and columns, cross-checked with the RASP program) and a few inputs with
the outputs Tracr's compiled model (decoded, None where no output value reaches 0.5, and the
output variable's raw coordinates in the final residual) and a plain-Python reference of the program give for them
(the RASP evaluator has no causal mask, and the induction program is compiled causal).

Tracr layers alternate attention and MLP: Tracr layer ``transformer/layer_l/attn`` and
``transformer/layer_l/mlp`` are block ``l`` of the HookedTransformer (attention, then MLP).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import numpy as np

BOS = "BOS"
PAD = "PAD"
#: residual directions every head and MLP reads as plumbing, identical on every input that
#: does not move BOS: the BOS token direction (attend-to-BOS default) and the constant one
PLUMBING = ("tokens:BOS", "one")


# ----- programs ------------------------------------------------------------------------------
def induction_program() -> Any:
    """prev = shift_by(1, tokens); induction = Aggregate(Select(prev, tokens, ==), tokens).

    Layer 0 attention copies the previous token; layer 1 attention attends, from each
    position, to the position whose previous token equals the current token (K-composition:
    its keys read layer 0's output) and copies that position's token: an induction head."""
    from tracr.rasp import rasp

    prev = rasp.Aggregate(rasp.Select(rasp.indices, rasp.indices, lambda k, q: q == k + 1),
                          rasp.tokens, default=None).named("prev")
    return rasp.Aggregate(rasp.Select(prev, rasp.tokens, rasp.Comparison.EQ), rasp.tokens,
                          default=None).named("induction")


def sort_program() -> Any:
    """Tracr's ``lib.make_sort_unique(tokens, tokens)``: target_pos = SelectorWidth(Select(
    tokens, tokens, <)) (layer 0 attention + MLP), sort = Aggregate(Select(target_pos,
    indices, ==), tokens) (layer 1 attention, keys read the MLP's output)."""
    from tracr.compiler import lib
    from tracr.rasp import rasp

    return lib.make_sort_unique(rasp.tokens, rasp.tokens)


def induction_reference(seq: list[str]) -> list[str | None]:
    """What the causal induction program computes: at position i the token after the earlier
    positions j - 1 < i holding seq[i] (None where there is none; in a repeated run every such
    position is followed by the same token, so the head's average is still one token)."""
    out: list[str | None] = []
    for i, tok in enumerate(seq):
        hits = [seq[j] for j in range(1, i + 1) if seq[j - 1] == tok]
        out.append(hits[0] if hits and len(set(hits)) == 1 else None)
    return out


def sort_reference(seq: list[str]) -> list[str]:
    return sorted(seq)


VOCAB = ("a", "b", "c", "d", "e", "f")
PROGRAMS: dict[str, dict[str, Any]] = {
    "tracr-induction": {"build": induction_program, "causal": True, "max_seq_len": 10,
                        "reference": induction_reference,
                        "source": "prev = Aggregate(Select(indices, indices, q == k + 1), tokens); "
                                  "induction = Aggregate(Select(prev, tokens, ==), tokens)"},
    "tracr-sort": {"build": sort_program, "causal": False, "max_seq_len": 10,
                   "reference": sort_reference,
                   "source": "lib.make_sort_unique(tokens, tokens): smaller = Select(tokens, "
                             "tokens, <); target_pos = SelectorWidth(smaller); sort = Aggregate("
                             "Select(target_pos, indices, ==), tokens)"},
}


def example_inputs(name: str, n: int, max_seq_len: int, seed: int = 0) -> list[list[str]]:
    """Inputs on which the program's output is well defined (no ties in its selectors)."""
    rng = random.Random(seed)
    out: list[list[str]] = []
    while len(out) < n:
        if name == "tracr-induction":  # a run of distinct tokens, repeated
            k = rng.randint(2, max_seq_len // 2)
            run = rng.sample(VOCAB, k)
            seq = (run * 3)[:rng.randint(k + 1, max_seq_len)]
        else:  # distinct tokens (sort_unique needs unique keys)
            seq = rng.sample(VOCAB, rng.randint(2, len(VOCAB)))
        out.append(seq)
    return out


# ----- export --------------------------------------------------------------------------------
def _variables(labels: list[str], rows: np.ndarray) -> dict[str, list[str]]:
    """Residual directions with a non-zero row, grouped by RASP variable (label before ':')."""
    out: dict[str, list[str]] = {}
    for i in np.flatnonzero(np.abs(rows).max(axis=1) > 1e-9):
        label = labels[int(i)]
        out.setdefault(label.split(":")[0], []).append(label)
    return out


def compiler_graph(params: dict[str, dict[str, np.ndarray]], labels: list[str], n_layers: int,
                   n_heads: int, key_size: int) -> dict[str, Any]:
    """Per head and MLP: which residual directions (grouped by RASP variable) it reads and
    writes, from the non-zero structure of the compiled weights."""
    heads: list[dict[str, Any]] = []
    mlps: list[dict[str, Any]] = []
    for layer in range(n_layers):
        attn = f"transformer/layer_{layer}/attn"
        if f"{attn}/query" in params:
            for h in range(n_heads):
                cols = slice(h * key_size, (h + 1) * key_size)
                w_o = params[f"{attn}/linear"]["w"][cols, :]
                writes = _variables(labels, w_o.T)
                if not writes:
                    continue  # a padding head of a layer with fewer heads
                heads.append({"layer": layer, "head": h, "name": f"L{layer}H{h}",
                              **{inp: _variables(labels, params[f"{attn}/{part}"]["w"][:, cols])
                                 for inp, part in (("q", "query"), ("k", "key"), ("v", "value"))},
                              "writes": writes})
        mlp = f"transformer/layer_{layer}/mlp"
        if f"{mlp}/linear_1" in params:
            writes = _variables(labels, params[f"{mlp}/linear_2"]["w"].T)
            if writes:
                mlps.append({"layer": layer, "name": f"mlp{layer}",
                             "reads": _variables(labels, params[f"{mlp}/linear_1"]["w"]),
                             "writes": writes})
    return {"heads": heads, "mlps": mlps, "plumbing": list(PLUMBING)}


def rasp_reads(program: Any) -> dict[str, dict[str, Any]]:
    """The RASP program's own reads, per SOp label: Aggregate (q, k, v), SelectorWidth (q, k),
    Map / SequenceMap (inputs)."""
    from tracr.rasp import rasp

    out: dict[str, dict[str, Any]] = {}
    todo, seen = [program], set()
    while todo:
        expr = todo.pop()
        if expr.label in seen:
            continue
        seen.add(expr.label)
        if isinstance(expr, rasp.Aggregate):
            sel = expr.selector
            out[expr.label] = {"op": "Aggregate", "q": sel.queries.label, "k": sel.keys.label,
                               "v": expr.sop.label}
            todo += [sel.queries, sel.keys, expr.sop]
        elif isinstance(expr, rasp.SelectorWidth):
            sel = expr.selector
            out[expr.label] = {"op": "SelectorWidth", "q": sel.queries.label, "k": sel.keys.label}
            todo += [sel.queries, sel.keys]
        elif isinstance(expr, rasp.SequenceMap):
            out[expr.label] = {"op": "SequenceMap", "inputs": [expr.fst.label, expr.snd.label]}
            todo += [expr.fst, expr.snd]
        elif isinstance(expr, rasp.Map):
            out[expr.label] = {"op": "Map", "inputs": [expr.inner.label]}
            todo.append(expr.inner)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    return value


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    return {pkg: version(pkg) for pkg in ("tracr-pypi", "jax", "dm-haiku", "numpy")}


def export(name: str, out_dir: Path, n_examples: int = 24) -> dict[str, Any]:
    from tracr.compiler import compiling

    spec = PROGRAMS[name]
    program = spec["build"]()
    model = compiling.compile_rasp_to_model(program, vocab=set(VOCAB),
                                            max_seq_len=spec["max_seq_len"],
                                            causal=spec["causal"], compiler_bos=BOS,
                                            compiler_pad=PAD)
    params = {mod: {k: np.asarray(v, dtype=np.float32) for k, v in d.items()}
              for mod, d in model.params.items()}
    cfg = model.model_config
    labels = list(model.residual_labels)
    out_enc = model.output_encoder
    categorical = hasattr(out_enc, "encoding_map")
    out_values = sorted(out_enc.encoding_map, key=out_enc.encoding_map.get) if categorical else []
    out_rows = [labels.index(f"{program.label}:{v}") for v in out_values]
    examples = []
    for seq in example_inputs(name, n_examples, spec["max_seq_len"]):
        run = model.apply([BOS, *seq])
        # the output variable's coordinates in the final residual (what tracr's unembedding
        # projects onto before its argmax), positions after BOS
        scores = np.asarray(run.residuals[-1])[0, 1:][:, out_rows]
        decoded = [out_values[int(i)] if row.max() > 0.5 else None
                   for i, row in zip(scores.argmax(axis=1), scores, strict=True)]
        assert all(d is None or d == t for d, t in zip(decoded, run.decoded[1:], strict=True))
        examples.append({"input": seq, "tracr_output": decoded,
                         "tracr_output_scores": np.round(scores, 6).tolist(),
                         "reference_output": spec["reference"](seq)})
    meta = {
        "format": "mi-assert-tracr/1",
        "name": name,
        "program": spec["source"],
        "output_variable": program.label,
        "config": {"n_layers": int(cfg.num_layers), "n_heads": int(cfg.num_heads),
                   "key_size": int(cfg.key_size), "mlp_hidden_size": int(cfg.mlp_hidden_size),
                   "d_model": len(labels), "causal": bool(spec["causal"]),
                   "max_seq_len": int(spec["max_seq_len"]), "n_ctx": int(spec["max_seq_len"]) + 1,
                   "activation": "relu", "layer_norm": False},
        "residual_labels": labels,
        "input_encoding": dict(model.input_encoder.encoding_map),
        "bos": BOS, "pad": PAD, "vocab": list(VOCAB),
        "output_encoding": dict(out_enc.encoding_map) if categorical else None,
        "output_values": out_values,
        "categorical_output": categorical,
        "graph": compiler_graph(params, labels, int(cfg.num_layers), int(cfg.num_heads),
                                int(cfg.key_size)),
        "rasp": rasp_reads(program),
        "examples": examples,
        "compiled_with": _versions(),
    }
    flat = {f"{mod}/{k}": v for mod, d in params.items() for k, v in d.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / f"{name}.npz", **flat)
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=1) + "\n")
    ok = sum(e["tracr_output"] == e["reference_output"] for e in examples)
    print(f"{name}: {cfg.num_layers} layers x {cfg.num_heads} heads, d_model {len(labels)}, "
          f"key_size {cfg.key_size}, mlp {cfg.mlp_hidden_size}; tracr == reference on {ok}/"
          f"{len(examples)} examples")
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "mi_assert/zoo/tracr")
    parser.add_argument("names", nargs="*", default=list(PROGRAMS))
    args = parser.parse_args()
    for name in args.names:
        export(name, args.out)


if __name__ == "__main__":
    main()
