"""What a claim cost: forward passes counted by the backends, per claim, in the report record."""

from __future__ import annotations

import mi_assert
from mi_assert import cost
from mi_assert.record import recording
from mi_assert.report.collect import to_records


def test_snapshots_count_forward_passes_and_prompts() -> None:
    start = cost.snapshot()
    cost.count_forward(8)
    cost.count_forward(3)
    spent = cost.between(start, cost.snapshot())
    assert (spent["forward_passes"], spent["prompts"]) == (2, 11)
    assert spent["seconds"] >= 0 and spent["rss_growth_mb"] >= 0 and spent["peak_rss_mb"] > 0


def test_each_claim_records_what_ran_since_the_previous_one() -> None:
    handle = mi_assert.load_model("planted-induction@s0")
    handle.forward(handle.to_tokens(mi_assert.prompts.repeated_tokens(2, 4, 64, seed=0)))
    with recording() as rec:
        handle.forward(mi_assert.prompts.repeated_tokens(2, 4, 64, seed=1))
        mi_assert.check_induction_head(handle, 1, 0, seeds=[5])  # checks do not record
        mi_assert.assert_induction_head(handle, 1, 0, seeds=[7])
        mi_assert.assert_duplicate_token_head(handle, 0, 3, seeds=[7])  # the same measurement
        mi_assert.assert_induction_head(handle, 1, 0, seeds=[9])  # new prompts
    first, second, third = (r.cost for r in rec.peek())
    # the first claim's cost includes the forward pass and the check made before it
    assert first["forward_passes"] >= 3 and first["prompts"] >= 2 + 2 * 32
    assert second["forward_passes"] == second["prompts"] == 0  # reused seed 7's patterns
    assert third["forward_passes"] >= 1 and third["prompts"] >= 32
    records = to_records(rec.peek())
    assert records[0]["cost"] == first and "cost" not in records[0]["evidence"]
