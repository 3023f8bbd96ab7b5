"""``assert_*_head``: attention-head role claims with statistical verdicts.

Every helper has the shape ``assert_<role>(model, layer=None, head=None, **options)``:

* ``model``: whatever you hold (HookedTransformer, TransformerBridge, nnsight model, a handle,
  or a zoo spec / path string), passed through :func:`mi_assert.backends.as_handle`;
* heads: ``(model, 1, 2)``, ``(model, "L1H2")``, ``(model, "1.2")``, ``(model, (1, 2))``,
  ``(model, [(1, 2), (1, 3)])``, ``(model, ["L1H2", "1.3"])`` or ``(model, 1, [2, 3])``.
  Several heads are one family: each must pass at its Holm-adjusted level (family-wise error
  ``alpha``) and the evidence lists every member;
* ``options``: see :class:`~mi_assert.heads.measure.HeadOptions` (threshold, alpha, seeds,
  model_seeds, quorum, n_prompts, repeat_lens, vocab_fraction, prompts, ...).

How a verdict is reached
------------------------
Per-prompt scores (TL head-detector patterns, standard normalisation: see
:mod:`mi_assert.heads.scores`) on **held-out** prompts (``seed + HELDOUT_OFFSET``: prompts and
vocabularies that :func:`~mi_assert.heads.discovery.find_heads` never saw) are bootstrapped per
(sampling seed, model seed, repeat length). The claim passes when the one-sided lower bound
clears the threshold in **every** row (a ``quorum`` relaxes the seed requirement, never the
repeat lengths).
The headline (estimate, interval, bound, ``n``) is the *deciding row*'s: the worst row of the
seed that decides, so ``n`` is the prompts that one row resampled; ``envelope`` spans every
row's interval.

Why every repeat length must pass (rather than averaging lengths): an induction head finds the
earlier copy of the current token wherever it is, so its score does not depend on the repeat
length; a head that attends a fixed distance ``d`` back matches the induction target only when
the repeat length is ``d + 1``, and so scores high at exactly one length. Averaging would let
such a head pass on one strong length; requiring each length (an intersection–union test,
which needs no multiplicity correction) cannot. The per-length rows appear in the table, so a
positional head is easy to recognise: one passing row among failing ones.

Too little evidence is refused, not decided: each sample carries its prompt's token ids, copies
of one prompt are one unit, and a row resting on fewer than ``min_prompts`` distinct prompts
raises :class:`~mi_assert.errors.MiAssertInputError`. A threshold outside the score's range
[0, 1) is refused the same way.

Measuring is apart from judging: :func:`~mi_assert.heads.measure.measure_role` returns the
per-prompt scores of every head (plain data); ``check_<role>`` turns them into an
:class:`~mi_assert.stats.evidence.Evidence` without raising; ``assert_<role>`` is
``check_role`` followed by :func:`mi_assert.verdict.raise_if_failed`, whose ``AssertionError``
message shows the evidence and the best-scoring heads of that role in the model (what the
model does have).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mi_assert.heads.measure import RoleMeasurement, measure_role
from mi_assert.heads.names import Head, check_heads, head_name, parse_heads
from mi_assert.loading import resolve_model
from mi_assert.stats.composite import holm_family
from mi_assert.stats.evidence import Evidence
from mi_assert.verdict import asserting


def check_role(model: Any, role: str, layer: Any = None, head: Any = None,
               **options: Any) -> Evidence:
    """Evaluate a head-role claim without raising.

    One head: that head's claim. Several heads: a Holm family (each head a separate
    discovery; the headline is the deciding member's). The evidence's ``hint`` names the
    best-scoring heads of the role (shown when the claim fails).
    """
    __tracebackhide__ = True
    handle = resolve_model(model)
    heads = check_heads(parse_heads(layer, head), handle.n_layers, handle.n_heads)
    # the forward passes end at the deepest layer the claim reads
    measured = measure_role(handle, role, split="heldout",
                            through_layer=max(layer_ for layer_, _ in heads), **options)
    return judge_heads(measured, heads)


def judge_heads(measured: RoleMeasurement, heads: list[Head]) -> Evidence:
    """The evidence for "each of ``heads`` plays the measured role" (no model work)."""
    __tracebackhide__ = True
    if len(heads) == 1:
        return measured.evidence(heads[0])
    info = measured.info
    names = ", ".join(head_name(*h) for h in heads)
    evidence = holm_family(
        [measured.claim(h) for h in heads], alpha=measured.options.alpha,
        claim=f"each of {names} is {info.noun}",
        settings={**measured.settings, "heads": names}, model_info=measured.model_info,
    )
    evidence = measured.with_failure_hint(evidence)
    figures: dict[str, Any] = {}
    patterns = [p["data"] for p in map(measured.pattern_figure, heads) if p is not None]
    if patterns:
        figures["pattern"] = {
            "kind": "pattern", "data": np.stack(patterns), "labels": [head_name(*h) for h in heads],
            "tokens": measured.example["tokens"], "xlabel": "key position",
            "ylabel": "query position",
            "title": f"{names} attention on one held-out prompt ({measured.example['label']})",
        }
    hist_rows: list[Any] = []
    hist_labels: list[str] = []
    for h, member in zip(heads, evidence.family, strict=True):
        spec = member.figures.get("samples")
        if spec is None:
            continue
        hist_rows += list(spec["data"])
        hist_labels += [f"{head_name(*h)}: {label}" for label in spec["labels"]]
    if hist_rows:
        figures["samples"] = {
            "kind": "hist", "data": hist_rows, "labels": hist_labels, "xlabel": info.metric,
            "ylabel": "count",
            "title": f"{info.plural}: per-sample {info.metric} by member and seed",
            "threshold": evidence.threshold,
        }
    return evidence.with_context(figures=figures)


def check_induction_head(model: Any, layer: Any = None, head: Any = None, **options: Any) -> Evidence:
    """Claim: a head (or each of several) is an induction head.

    Score: attention from each position to the token right after the earlier occurrence of the
    current token (TL's induction detection pattern), averaged over the positions that have such
    a target, per prompt. Default threshold 0.4 (TransformerLens head-detector demo / ARENA 1.2),
    checked on held-out ``BOS + r + r`` prompts at every repeat length of ``repeat_lens``
    (default 8, 16, 24, 32, shortened to fit the context) so a fixed-offset positional head
    cannot pass; see the module docstring for why every length must pass.
    """
    __tracebackhide__ = True
    return check_role(model, "induction", layer, head, **options)


def check_previous_token_head(model: Any, layer: Any = None, head: Any = None,
                              **options: Any) -> Evidence:
    """Claim: a head attends from each position to the previous one.

    Score: mean attention on position ``i - 1`` over positions ``i >= 1`` (TL's previous-token
    pattern). Default threshold 0.4 (ARENA 1.2's previous-token detector).
    """
    __tracebackhide__ = True
    return check_role(model, "previous_token", layer, head, **options)


def check_duplicate_token_head(model: Any, layer: Any = None, head: Any = None,
                               **options: Any) -> Evidence:
    """Claim: a head attends to earlier copies of the current token.

    Score: attention on earlier positions holding the same token (TL's duplicate-token pattern),
    averaged over positions that have an earlier copy. Default threshold 0.4 (TL/ARENA detector
    convention).
    """
    __tracebackhide__ = True
    return check_role(model, "duplicate_token", layer, head, **options)


def check_attends_to_bos(model: Any, layer: Any = None, head: Any = None, **options: Any) -> Evidence:
    """Claim: a head is an attention sink: BOS gets most of its attention.

    Score: mean attention on position 0 (BOS) over query positions ``i >= 1``. Default threshold
    0.5 (a majority); on the repeated prompts half the positions offer content, so a head that
    only falls back to BOS where content is missing stays below it (see
    :data:`~mi_assert.heads.measure.ROLE_INFO`).
    """
    __tracebackhide__ = True
    return check_role(model, "bos", layer, head, **options)


def check_copying_head(model: Any, layer: Any = None, head: Any = None, **options: Any) -> Evidence:
    """Claim: attending to token t raises t's logit (OV circuit ``W_E W_V W_O W_U``).

    Per-token sample: the diagonal percentile of row t of the full OV circuit (t's own logit
    versus the other tokens'); a random OV circuit of the same shapes scores 0.5, which the
    evidence reports alongside the eigenvalue copying score. Default threshold 0.9. Seeds draw
    different token subsets on large vocabularies (see :mod:`mi_assert.heads.copying`).
    """
    __tracebackhide__ = True
    return check_role(model, "copying", layer, head, **options)


assert_induction_head = asserting(check_induction_head)


assert_previous_token_head = asserting(check_previous_token_head)


assert_duplicate_token_head = asserting(check_duplicate_token_head)


assert_attends_to_bos = asserting(check_attends_to_bos)


assert_copying_head = asserting(check_copying_head)


