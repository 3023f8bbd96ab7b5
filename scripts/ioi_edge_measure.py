"""Measure edge-level IOI circuits on ioi-small (the numbers in suites/ioi/test_ioi_edges.py).

For each seed: discover the circuit on fit prompts (``discover_circuit``), then on held-out
templates measure its faithfulness, beats-random (wins of ``n_random``) and the TOST bounds
of the equivalence claim, with timings.

    OMP_NUM_THREADS=1 python scripts/ioi_edge_measure.py [--fit 24] [--heldout 24]
        [--method eap_ig] [--steps 5] [--target 0.8] [--n-random 100] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import time

import torch

import mi_assert
from mi_assert.edges import (
    check_circuit_beats_random,
    check_circuit_equivalent,
    discover_circuit,
    measure_circuits,
)
from mi_assert.prompts.generators import make_split


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fit", type=int, default=24)
    parser.add_argument("--heldout", type=int, default=24)
    parser.add_argument("--method", default="eap_ig")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--target", type=float, default=0.8)
    parser.add_argument("--n-random", type=int, default=100)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--heldout-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for s in args.seeds:
        handle = mi_assert.load_model(f"ioi-small@s{s}", device="cpu")
        fit = make_split(handle, "ioi", 0, n_prompts=args.fit, corruption="abc").fit
        t0 = time.perf_counter()
        found = discover_circuit(handle, fit, method=args.method, steps=args.steps,
                                 target_faithfulness=args.target)
        t_disc = time.perf_counter() - t0
        info = {k: v for k, v in found.describe().items() if k != "edges"}
        print(f"ioi-small@s{s}: {info} ({t_disc:.1f} s)")
        print(f"  edges: {' '.join(found.names)}")
        if args.verbose:
            curve = [round(float(f), 3) for f in found.faithfulness_tried]
            print(f"  fit faithfulness for k = 1..{found.ks_tried[-1]}: {curve}")
        for hs in args.heldout_seeds:
            held = make_split(handle, "ioi", hs, n_prompts=args.heldout, corruption="abc").heldout
            f_held = measure_circuits(handle, [found.circuit], held).faithfulness()[0]
            t0 = time.perf_counter()
            br = check_circuit_beats_random(handle, found.circuit, held, n_random=args.n_random,
                                            seed=hs)
            t_br = time.perf_counter() - t0
            t0 = time.perf_counter()
            eq = check_circuit_equivalent(handle, found.circuit, held, epsilon=args.epsilon)
            t_eq = time.perf_counter() - t0
            bounds = [(round(m.estimate, 4), round(m.bound, 4)) for m in eq.family]
            print(f"  held-out seed {hs}: faithfulness {f_held:.3f}; beats-random "
                  f"{br.details['wins']}/{args.n_random} bound {br.bound:.3f} "
                  f"passed={br.passed} (random {br.details['random_faithfulness']}) "
                  f"[{t_br:.1f} s]; equivalence eps {args.epsilon}: mean d "
                  f"{eq.details['mean_d']} (estimate, bound) {bounds} passed={eq.passed} "
                  f"[{t_eq:.1f} s]")


if __name__ == "__main__":
    main()
