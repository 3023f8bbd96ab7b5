"""Causal claims: metrics, patching sweeps, circuits, attribution, probes and composition.

Modules (each one job; public names are re-exported lazily from ``mi_assert`` and from here):

* ``metrics`` — per-prompt metrics (``logit_diff``, ``logprob``, ``prob``, ``kl_to_clean``);
* ``components`` — parse "L9H9", (9, 9), "mlp3", "resid_pre5", hook names into sites;
* ``interventions`` — patch/ablation edit functions (mean, zero, resample, noise);
* ``recovery`` — ratio-of-means claims (rows for the engine in :mod:`mi_assert.stats`);
* ``draws`` — which prompts each seed uses (explicit prompts vs a generator's held-out draws);
* ``assertions`` — ``measure_*`` (plain data), ``check_*`` (Evidence) and ``assert_*``
  (raises) for patching recovery, ablation effects and path patching;
* ``circuits`` — ``check_/assert_circuit_faithfulness`` / ``_completeness`` / ``_minimality``;
* ``sweeps`` — ``patching_sweep`` / ``attribution_sweep`` in TransformerLens layout and units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mi_assert._lazy import lazy_exports

#: public name -> submodule that defines it (imported on first use: no torch at import time)
_LAZY: dict[str, str] = {
    "measure_patching_recovery": ".assertions",
    "judge_patching_recovery": ".assertions",
    "check_patching_recovery": ".assertions",
    "assert_patching_recovery": ".assertions",
    "PatchingMeasurement": ".assertions",
    "PatchingRun": ".assertions",
    "measure_ablation_effect": ".assertions",
    "check_ablation_effect": ".assertions",
    "assert_ablation_effect": ".assertions",
    "AblationMeasurement": ".assertions",
    "AblationRun": ".assertions",
    "check_path_patching": ".assertions",
    "assert_path_patching": ".assertions",
    "path_patched_logits": ".assertions",
    "check_circuit_faithfulness": ".circuits",
    "assert_circuit_faithfulness": ".circuits",
    "check_circuit_completeness": ".circuits",
    "assert_circuit_completeness": ".circuits",
    "check_circuit_minimality": ".circuits",
    "assert_circuit_minimality": ".circuits",
    "CircuitRunner": ".circuits",
}

__all__ = sorted(_LAZY)



if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily
    from mi_assert.causal.assertions import (
        AblationMeasurement,
        AblationRun,
        PatchingMeasurement,
        PatchingRun,
        assert_ablation_effect,
        assert_patching_recovery,
        assert_path_patching,
        check_ablation_effect,
        check_patching_recovery,
        check_path_patching,
        judge_patching_recovery,
        measure_ablation_effect,
        measure_patching_recovery,
        path_patched_logits,
    )
    from mi_assert.causal.circuits import (
        CircuitRunner,
        assert_circuit_completeness,
        assert_circuit_faithfulness,
        assert_circuit_minimality,
        check_circuit_completeness,
        check_circuit_faithfulness,
        check_circuit_minimality,
    )

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
