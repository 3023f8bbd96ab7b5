"""mi-assert: mechanistic-interpretability claims as statistically backed pytest tests.

Public names are imported lazily (PEP 562) so that pytest loading the plugin does not import
torch, TransformerLens, nnsight or SAELens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mi_assert._lazy import lazy_exports

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY: dict[str, str] = {
    # foundation
    "load_model": "mi_assert.loading",
    "as_handle": "mi_assert.backends",
    "ModelHandle": "mi_assert.backends.base",
    "Intervention": "mi_assert.backends.base",
    "Evidence": "mi_assert.stats.evidence",
    "ClaimFailed": "mi_assert.verdict",
    "raise_if_failed": "mi_assert.verdict",
    "MiAssertInputError": "mi_assert.errors",
    "ModelUnavailableError": "mi_assert.errors",
    "UnknownHookError": "mi_assert.errors",
    "bootstrap_mean": "mi_assert.stats.bootstrap",
    "holm_adjust": "mi_assert.stats.multiple",
    "seed_everything": "mi_assert.seeding",
    "PromptSet": "mi_assert.prompts",
    # attention-head claims
    "assert_induction_head": "mi_assert.heads.assertions",
    "assert_previous_token_head": "mi_assert.heads.assertions",
    "assert_duplicate_token_head": "mi_assert.heads.assertions",
    "assert_copying_head": "mi_assert.heads.assertions",
    "assert_attends_to_bos": "mi_assert.heads.assertions",
    "find_heads": "mi_assert.heads.discovery",
    # causal claims
    "logit_diff": "mi_assert.causal.metrics",
    "logprob": "mi_assert.causal.metrics",
    "prob": "mi_assert.causal.metrics",
    "kl_to_clean": "mi_assert.causal.metrics",
    "patching_sweep": "mi_assert.causal.sweeps",
    "attribution_sweep": "mi_assert.causal.sweeps",
    "assert_patching_recovery": "mi_assert.causal.assertions",
    "assert_ablation_effect": "mi_assert.causal.assertions",
    "assert_path_patching": "mi_assert.causal.assertions",
    "assert_circuit_faithfulness": "mi_assert.causal.circuits",
    "assert_circuit_completeness": "mi_assert.causal.circuits",
    "assert_circuit_minimality": "mi_assert.causal.circuits",
    "assert_direct_logit_attribution": "mi_assert.causal.attribution",
    "assert_logit_lens": "mi_assert.causal.attribution",
    "assert_probe_accuracy": "mi_assert.causal.probes",
    "assert_composition": "mi_assert.causal.composition",
    "direct_logit_attribution": "mi_assert.causal.attribution",
    "composition_score": "mi_assert.causal.composition",
    # SAE claims
    "assert_sae_reconstruction": "mi_assert.sae.assertions",
    "assert_feature_recovery": "mi_assert.sae.assertions",
    "assert_feature_fires": "mi_assert.sae.assertions",
    "assert_feature_steering": "mi_assert.sae.assertions",
    # measure_* (data, no verdict) and check_* (non-raising verdicts)
    "check_sae_reconstruction": "mi_assert.sae.assertions",
    "check_feature_recovery": "mi_assert.sae.assertions",
    "check_feature_fires": "mi_assert.sae.assertions",
    "check_feature_steering": "mi_assert.sae.assertions",
    "measure_sae_reconstruction": "mi_assert.sae.assertions",
    "check_direct_logit_attribution": "mi_assert.causal.attribution",
    "check_logit_lens": "mi_assert.causal.attribution",
    "logit_lens_ranks": "mi_assert.causal.attribution",
    "check_probe_accuracy": "mi_assert.causal.probes",
    "measure_probe_accuracy": "mi_assert.causal.probes",
    "check_composition": "mi_assert.causal.composition",
    "composition_scores": "mi_assert.causal.composition",
    "check_patching_recovery": "mi_assert.causal.assertions",
    "measure_patching_recovery": "mi_assert.causal.assertions",
    "check_ablation_effect": "mi_assert.causal.assertions",
    "measure_ablation_effect": "mi_assert.causal.assertions",
    "check_path_patching": "mi_assert.causal.assertions",
    "check_circuit_faithfulness": "mi_assert.causal.circuits",
    "check_circuit_completeness": "mi_assert.causal.circuits",
    "check_circuit_minimality": "mi_assert.causal.circuits",
    "check_induction_head": "mi_assert.heads.assertions",
    "check_previous_token_head": "mi_assert.heads.assertions",
    "check_duplicate_token_head": "mi_assert.heads.assertions",
    "check_copying_head": "mi_assert.heads.assertions",
    "check_attends_to_bos": "mi_assert.heads.assertions",
    "measure_role": "mi_assert.heads.measure",
    # reports, sweeps
    "checkpoints_of": "mi_assert.zoo.checkpoint_list",
    "progress": "mi_assert.report.progress",
    # edge-level circuits
    "edge_sweep": "mi_assert.edges.sweep",
    "Edge": "mi_assert.edges.graph",
    "EdgeGraph": "mi_assert.edges.graph",
    "EdgeScores": "mi_assert.edges.scores",
    "check_circuit_beats_random": "mi_assert.edges.claims",
    "assert_circuit_beats_random": "mi_assert.edges.claims",
    "check_circuit_equivalent": "mi_assert.edges.claims",
    "assert_circuit_equivalent": "mi_assert.edges.claims",
    "check_circuit_necessary": "mi_assert.edges.claims",
    "assert_circuit_necessary": "mi_assert.edges.claims",
    "circuit_figure": "mi_assert.edges.drawing",
    "circuit_svg": "mi_assert.edges.drawing",
    "faithfulness_curve": "mi_assert.edges.curve",
    "check_faithfulness_auc": "mi_assert.edges.curve",
    "assert_faithfulness_auc": "mi_assert.edges.curve",
    "discover_circuit": "mi_assert.edges.discovery",
    "CircuitDiscovery": "mi_assert.edges.discovery",
    # counterexample search
    "check_holds_for_all": "mi_assert.search.counterexample",
    "assert_holds_for_all": "mi_assert.search.counterexample",
    "CounterexampleFound": "mi_assert.search.counterexample",
    "attention_margin": "mi_assert.search.prompt_claims",
    "logit_diff_margin": "mi_assert.search.prompt_claims",
    # invariance / directional claims under prompt transforms
    "check_invariant": "mi_assert.search.invariance",
    "assert_invariant": "mi_assert.search.invariance",
    "check_directional": "mi_assert.search.invariance",
    "assert_directional": "mi_assert.search.invariance",
    # logit-lens / tuned-lens claims
    "TunedLens": "mi_assert.lens.translators",
    "train_tuned_lens": "mi_assert.lens.train",
    "save_lens": "mi_assert.lens.store",
    "load_lens": "mi_assert.lens.store",
    "measure_lens": "mi_assert.lens.measure",
    "lens_profile": "mi_assert.lens.measure",
    "check_lens_agreement": "mi_assert.lens.assertions",
    "assert_lens_agreement": "mi_assert.lens.assertions",
    "check_tuned_lens_beats_logit_lens": "mi_assert.lens.assertions",
    "assert_tuned_lens_beats_logit_lens": "mi_assert.lens.assertions",
}

#: subpackages reachable as attributes (``import mi_assert as m; m.zoo.available()``)
_SUBMODULES = ("backends", "causal", "heads", "prompts", "record", "report", "sae", "stats",
               "strategies", "verdict", "zoo", "edges")

__all__ = sorted(_LAZY) + list(_SUBMODULES) + ["__version__"]

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily
    from mi_assert import (
        backends,
        causal,
        edges,
        heads,
        prompts,
        record,
        report,
        sae,
        stats,
        strategies,
        verdict,
        zoo,
    )
    from mi_assert.backends import as_handle
    from mi_assert.backends.base import Intervention, ModelHandle
    from mi_assert.causal.assertions import (
        assert_ablation_effect,
        assert_patching_recovery,
        assert_path_patching,
        check_ablation_effect,
        check_patching_recovery,
        check_path_patching,
        measure_ablation_effect,
        measure_patching_recovery,
    )
    from mi_assert.causal.attribution import (
        assert_direct_logit_attribution,
        assert_logit_lens,
        check_direct_logit_attribution,
        check_logit_lens,
        direct_logit_attribution,
        logit_lens_ranks,
    )
    from mi_assert.causal.circuits import (
        assert_circuit_completeness,
        assert_circuit_faithfulness,
        assert_circuit_minimality,
        check_circuit_completeness,
        check_circuit_faithfulness,
        check_circuit_minimality,
    )
    from mi_assert.causal.composition import (
        assert_composition,
        check_composition,
        composition_score,
        composition_scores,
    )
    from mi_assert.causal.metrics import kl_to_clean, logit_diff, logprob, prob
    from mi_assert.causal.probes import (
        assert_probe_accuracy,
        check_probe_accuracy,
        measure_probe_accuracy,
    )
    from mi_assert.causal.sweeps import attribution_sweep, patching_sweep
    from mi_assert.edges.claims import (
        assert_circuit_beats_random,
        assert_circuit_equivalent,
        assert_circuit_necessary,
        check_circuit_beats_random,
        check_circuit_equivalent,
        check_circuit_necessary,
    )
    from mi_assert.edges.curve import (
        assert_faithfulness_auc,
        check_faithfulness_auc,
        faithfulness_curve,
    )
    from mi_assert.edges.discovery import CircuitDiscovery, discover_circuit
    from mi_assert.edges.drawing import circuit_figure, circuit_svg
    from mi_assert.edges.graph import Edge, EdgeGraph
    from mi_assert.edges.scores import EdgeScores
    from mi_assert.edges.sweep import edge_sweep
    from mi_assert.errors import MiAssertInputError, ModelUnavailableError, UnknownHookError
    from mi_assert.heads.assertions import (
        assert_attends_to_bos,
        assert_copying_head,
        assert_duplicate_token_head,
        assert_induction_head,
        assert_previous_token_head,
        check_attends_to_bos,
        check_copying_head,
        check_duplicate_token_head,
        check_induction_head,
        check_previous_token_head,
    )
    from mi_assert.heads.discovery import find_heads
    from mi_assert.heads.measure import (
        measure_role,
    )
    from mi_assert.lens.assertions import (
        assert_lens_agreement,
        assert_tuned_lens_beats_logit_lens,
        check_lens_agreement,
        check_tuned_lens_beats_logit_lens,
    )
    from mi_assert.lens.measure import lens_profile, measure_lens
    from mi_assert.lens.store import load_lens, save_lens
    from mi_assert.lens.train import train_tuned_lens
    from mi_assert.lens.translators import TunedLens
    from mi_assert.loading import load_model
    from mi_assert.prompts import PromptSet
    from mi_assert.report.progress import progress
    from mi_assert.sae.assertions import (
        assert_feature_fires,
        assert_feature_recovery,
        assert_feature_steering,
        assert_sae_reconstruction,
        check_feature_fires,
        check_feature_recovery,
        check_feature_steering,
        check_sae_reconstruction,
        measure_sae_reconstruction,
    )
    from mi_assert.search.counterexample import (
        CounterexampleFound,
        assert_holds_for_all,
        check_holds_for_all,
    )
    from mi_assert.search.invariance import (
        assert_directional,
        assert_invariant,
        check_directional,
        check_invariant,
    )
    from mi_assert.search.prompt_claims import attention_margin, logit_diff_margin
    from mi_assert.seeding import seed_everything
    from mi_assert.stats.bootstrap import bootstrap_mean
    from mi_assert.stats.evidence import Evidence
    from mi_assert.stats.multiple import holm_adjust
    from mi_assert.verdict import ClaimFailed, raise_if_failed
    from mi_assert.zoo.checkpoint_list import checkpoints_of


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, _SUBMODULES)
