"""Two head claims on a model given by ``--mi-model``: the regression demo of
``scripts/demo_regression.sh`` (not collected by the project's tests)."""

import mi_assert


def test_induction_head(mi_model):
    mi_assert.assert_induction_head(mi_model, 1, 0)


def test_previous_token_head(mi_model):
    mi_assert.assert_previous_token_head(mi_model, 0, 0)
