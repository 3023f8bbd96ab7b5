"""Causal claims: metrics, patching sweeps, circuits, attribution, probes and composition.

Modules (each one job; public names are re-exported lazily from ``mi_assert``):

* ``metrics`` — per-prompt metrics (``logit_diff``, ``logprob``, ``prob``, ``kl_to_clean``);
* ``components`` — parse "L9H9", (9, 9), "mlp3", "resid_pre5", hook names into sites;
* ``interventions`` — patch/ablation edit functions (mean, zero, resample, noise);
* ``recovery`` — ratio-of-means statistics with a paired bootstrap over prompts;
* ``draws`` — which prompts each seed uses (explicit prompts vs a generator's held-out draws);
* ``assertions`` — ``assert_patching_recovery``, ``assert_ablation_effect``,
  ``assert_path_patching``;
* ``circuits`` — ``assert_circuit_faithfulness`` / ``_completeness`` / ``_minimality``;
* ``sweeps`` — ``patching_sweep`` / ``attribution_sweep`` in TransformerLens layout and units.
"""
