"""Prints the equality errors quoted in docs/edges.md (a script, not a test). Run:

    OMP_NUM_THREADS=1 .venv/bin/python -m tests.edges.measure_equality
"""

from __future__ import annotations

import mi_assert
from mi_assert.edges import edge_sweep
from mi_assert.prompts.pairs import induction_pairs
from tests.edges.conftest import random_model, random_pairs_data
from tests.edges.reference import autograd_eap, naive_exact


def _err(a, b) -> float:
    return float((a - b).abs().max())


def main() -> None:
    clean, corrupted, metric = random_pairs_data()
    planted = mi_assert.load_model("planted-induction@s0", device="cpu")
    ps = induction_pairs(planted, seed=0, n_prompts=16)
    cases = [("random 2L4H LN+MLP", random_model(attn_only=False), clean, corrupted, metric),
             ("random 2L4H LN attn-only", random_model(attn_only=True), clean, corrupted, metric),
             ("random 2L4H LN+MLP parallel", random_model(attn_only=False, parallel=True), clean,
              corrupted, metric),
             ("random 2L4H RMS+MLP rotary", random_model(attn_only=False, normalization="RMS",
                                                         positions="rotary"), clean, corrupted, metric),
             ("random 2L4H LN+MLP alibi", random_model(attn_only=False, positions="alibi"), clean,
              corrupted, metric),
             ("planted-induction@s0", planted.model, ps.clean, ps.corrupted,
              mi_assert.logit_diff(ps.correct, ps.wrong))]
    for label, model, c, x, m in cases:
        exact = edge_sweep(model, c, x, m)
        eap = edge_sweep(model, c, x, m, method="eap")
        names = [e.name for e in exact.edges]
        ref_exact = naive_exact(model, c, x, m, names)
        ref_eap = autograd_eap(model, c, x, m, names)
        print(f"{label}: {len(exact)} edges, batch {c.shape[0]}x{c.shape[1]}; exact vs naive "
              f"{_err(exact.per_prompt, ref_exact):.1e} (largest |score| "
              f"{float(ref_exact.abs().max()):.3g}); eap vs autograd "
              f"{_err(eap.per_prompt, ref_eap):.1e}")
        if label.startswith("planted"):
            linear = [i for i, e in enumerate(exact.edges)
                      if e.receiver.kind == "logits" or (e.receiver.layer == 1 and e.input == "v")]
            print(f"  eap vs exact on the {len(linear)} linear edges (logits, L1 v inputs): "
                  f"{_err(exact.per_prompt[linear], eap.per_prompt[linear]):.1e}; on "
                  f"L0H0->L1H0.k: exact {exact.score('L0H0->L1H0.k'):.3f}, eap "
                  f"{eap.score('L0H0->L1H0.k'):.3f}")


if __name__ == "__main__":
    main()
