"""SAE claims on SAELens SAEs: reconstruction, feature recovery, firing and steering.

Public entry points: :func:`assert_sae_reconstruction`, :func:`assert_feature_recovery`,
:func:`assert_feature_fires`, :func:`assert_feature_steering` (each ``check_*`` +
:func:`mi_assert.verdict.raise_if_failed`); the non-raising ``check_*``;
:func:`measure_sae_reconstruction` (plain per-prompt data, no verdict); and :func:`load_sae`
(zoo names, local ``save_model`` folders, SAELens hub releases).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mi_assert._lazy import lazy_exports

_LAZY = {
    "assert_sae_reconstruction": "mi_assert.sae.assertions",
    "assert_feature_recovery": "mi_assert.sae.assertions",
    "assert_feature_fires": "mi_assert.sae.assertions",
    "assert_feature_steering": "mi_assert.sae.assertions",
    "check_sae_reconstruction": "mi_assert.sae.assertions",
    "check_feature_recovery": "mi_assert.sae.assertions",
    "check_feature_fires": "mi_assert.sae.assertions",
    "check_feature_steering": "mi_assert.sae.assertions",
    "measure_sae_reconstruction": "mi_assert.sae.assertions",
    "reconstruction_evidence": "mi_assert.sae.assertions",
    "ReconstructionData": "mi_assert.sae.assertions",
    "PromptData": "mi_assert.sae.assertions",
    "load_sae": "mi_assert.sae.zoo",
    "sae_forward": "mi_assert.sae.metrics",
    "make_superposition": "mi_assert.sae.synthetic",
    "SuperpositionConfig": "mi_assert.sae.synthetic",
}

__all__ = sorted(_LAZY)



if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily
    from mi_assert.sae.assertions import (
        PromptData,
        ReconstructionData,
        assert_feature_fires,
        assert_feature_recovery,
        assert_feature_steering,
        assert_sae_reconstruction,
        check_feature_fires,
        check_feature_recovery,
        check_feature_steering,
        check_sae_reconstruction,
        measure_sae_reconstruction,
        reconstruction_evidence,
    )
    from mi_assert.sae.metrics import (
        sae_forward,
    )
    from mi_assert.sae.synthetic import (
        SuperpositionConfig,
        make_superposition,
    )
    from mi_assert.sae.zoo import (
        load_sae,
    )

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
