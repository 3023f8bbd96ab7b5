"""mi-assert: mechanistic-interpretability claims as statistically backed pytest tests.

Public names are imported lazily (PEP 562) so that pytest loading the plugin does not import
torch, TransformerLens, nnsight or SAELens.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY: dict[str, str] = {
    # foundation
    "load_model": "mi_assert.loading",
    "as_handle": "mi_assert.backends",
    "ModelHandle": "mi_assert.backends.base",
    "Intervention": "mi_assert.backends.base",
    "Evidence": "mi_assert.stats.evidence",
    "ClaimFailed": "mi_assert.stats.evidence",
    "MiAssertInputError": "mi_assert.errors",
    "ModelUnavailableError": "mi_assert.errors",
    "UnknownHookError": "mi_assert.errors",
    "bootstrap_mean": "mi_assert.stats.bootstrap",
    "holm_adjust": "mi_assert.stats.multiple",
    "seed_everything": "mi_assert.seeding",
    "PromptSet": "mi_assert.prompts",
    # attention-head claims (issue: heads)
    "assert_induction_head": "mi_assert.heads.assertions",
    "assert_previous_token_head": "mi_assert.heads.assertions",
    "assert_duplicate_token_head": "mi_assert.heads.assertions",
    "assert_copying_head": "mi_assert.heads.assertions",
    "assert_attends_to_bos": "mi_assert.heads.assertions",
    "find_heads": "mi_assert.heads.discovery",
    # causal claims (issue: causal)
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
    # SAE claims (issue: SAE)
    "assert_sae_reconstruction": "mi_assert.sae.assertions",
    "assert_feature_recovery": "mi_assert.sae.assertions",
    "assert_feature_fires": "mi_assert.sae.assertions",
    "assert_feature_steering": "mi_assert.sae.assertions",
    # reports, sweeps (issue: reports)
    "checkpoints_of": "mi_assert.zoo.checkpoint_list",
    "progress": "mi_assert.report.progress",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mi_assert' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
