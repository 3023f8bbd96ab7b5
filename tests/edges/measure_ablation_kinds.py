"""Faithfulness of the planted circuits and of one random circuit under each ablation kind.

``OMP_NUM_THREADS=1 python -m tests.edges.measure_ablation_kinds`` (planted-induction@s0, 16
swap pairs of ``induction_pairs(seed=0)``; the table in docs/edges.md, "Ablation kinds").
"""

from __future__ import annotations

import torch

import mi_assert
from mi_assert.edges import EdgeGraph, draw_random_circuits, measure_circuits
from mi_assert.edges.ablation import ABLATION_KINDS
from mi_assert.prompts.pairs import induction_pairs

PLANTED = ["embed->L0H0.v", "L0H0->L1H0.k", "L1H0->logits"]
#: the planted path with the induction head's query and value inputs from embed
FULL = [*PLANTED, "embed->L1H0.q", "embed->L1H0.v"]
#: a random 30-edge circuit (of 81), seed 1: big enough to touch the planted path in part
RANDOM_SIZE, RANDOM_SEED = 30, 1


def main() -> None:
    torch.set_num_threads(1)
    model = mi_assert.load_model("planted-induction@s0")
    ps = induction_pairs(model, seed=0, n_prompts=16)
    graph = EdgeGraph.from_handle(model)
    random_circuit = draw_random_circuits(graph, RANDOM_SIZE, 1, RANDOM_SEED)[0]
    print(f"random circuit ({RANDOM_SIZE} edges, seed {RANDOM_SEED}): {random_circuit.names}")
    print("| ablation | mean F(clean) | mean F(ablated) | planted path (3 edges) | planted path + "
          f"q, v (5 edges) | random ({RANDOM_SIZE} edges) |")
    print("|---|---|---|---|---|---|")
    for kind in ABLATION_KINDS:
        m = measure_circuits(model, [PLANTED, FULL, random_circuit], ps,
                             ablation=kind)  # type: ignore[arg-type]
        f = m.faithfulness()
        print(f"| `{kind}` | {m.clean.mean():.3f} | {m.corrupted.mean():.3f} | {f[0]:.4f} | "
              f"{f[1]:.4f} | {f[2]:.4f} |")


if __name__ == "__main__":
    main()
