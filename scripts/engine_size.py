"""Size and power of the bootstrap engine at the threshold, on synthetic samples.

For each statistic (mean of several shapes, ratio of means, a count-weighted fraction, AUROC),
sample size n and direction, draw samples whose *true* value is exactly the threshold and
count how often the claim passes (a false pass: the rate should be <= alpha), then shift the
truth by +delta (2.5 standard errors, in the claim's direction) and count passes (power). Every
interval the engine offers is read off the same resamples. Writes a markdown table.

    python scripts/engine_size.py --draws 1000 --sizes 10,30 --jobs 2   # table of docs/engine_size.md
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import special, stats

from mi_assert.stats.bootstrap import INTERVALS, Resampled
from mi_assert.stats.statistic import AUROC, CountWeighted, Mean, RatioOfMeans, RowStatistic

ALPHA = 0.05
Rng = np.random.Generator


@dataclass(frozen=True)
class Case:
    """A family of samples whose true statistic is ``truth + shift``."""

    name: str
    truth: float
    #: (rng, n, shift) -> the row statistic of one draw
    draw: Callable[[Rng, int, float], RowStatistic]
    #: standard error of the statistic at n (sets delta = 2.5 se)
    se: Callable[[int], float]
    #: the values the statistic can take (delta is clipped to stay 0.02 inside)
    span: tuple[float, float] = (-math.inf, math.inf)


def _mean_case(name: str, sample: Callable[[Rng, int], np.ndarray], mean: float, sd: float) -> Case:
    return Case(f"mean, {name}", mean, lambda r, n, s: Mean(sample(r, n) + s),
                lambda n: sd / math.sqrt(n))


def _ratio(r: Rng, n: int, shift: float) -> RowStatistic:
    den = r.normal(2.0, 0.5, n)
    num = (0.6 + shift) * den + r.normal(0.0, 0.5, n)
    return RatioOfMeans(num, den)


def _fraction(r: Rng, n: int, shift: float) -> RowStatistic:
    dead = (r.random(n) < 0.3 + shift).astype(np.float64)
    return CountWeighted(lambda w: (w @ dead) / w.sum(axis=1), n, name="dead fraction")


AUROC_SHIFT = 1.0  # positives ~ N(1, 1) against negatives ~ N(0, 1)


def _auroc(r: Rng, n: int, shift: float) -> RowStatistic:
    # a shift of the AUROC by s moves the positives' mean so that Phi(d / sqrt 2) = truth + s
    d = math.sqrt(2.0) * float(special.ndtri(special.ndtr(AUROC_SHIFT / math.sqrt(2.0)) + shift))
    return AUROC(r.normal(d, 1.0, n), r.normal(0.0, 1.0, n))


def _auroc_se(n: int) -> float:
    a = float(special.ndtr(AUROC_SHIFT / math.sqrt(2.0)))
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)  # Hanley & McNeil
    return math.sqrt((a * (1 - a) + (n - 1) * (q1 - a * a) + (n - 1) * (q2 - a * a)) / (n * n))


CASES = [
    _mean_case("normal", lambda r, n: r.normal(0.5, 1.0, n), 0.5, 1.0),
    _mean_case("exponential (skew 2)", lambda r, n: r.exponential(0.5, n), 0.5, 0.5),
    _mean_case("Bernoulli 0.3", lambda r, n: (r.random(n) < 0.3).astype(np.float64), 0.3,
               math.sqrt(0.21)),
    _mean_case("Beta(9, 1), attention-like", lambda r, n: r.beta(9.0, 1.0, n), 0.9,
               math.sqrt(9.0 / (100 * 11))),
    Case("ratio of means (recovery-like)", 0.6, _ratio, lambda n: 0.5 / 2.0 / math.sqrt(n)),
    Case("count-weighted fraction 0.3", 0.3, _fraction, lambda n: math.sqrt(0.21 / n), (0.0, 1.0)),
    Case("AUROC, n per class", float(special.ndtr(AUROC_SHIFT / math.sqrt(2.0))), _auroc, _auroc_se,
         (0.0, 1.0)),
]


def allowance(alpha: float, draws: int, level: float = 0.01) -> float:
    """The largest false-pass rate an exact one-sided binomial test at ``level`` does not reject."""
    k = int(stats.binom.isf(level, draws, alpha))
    return k / draws


def run_cell(case_index: int, n: int, direction: str, shift: float, draws: int,
             seed: int) -> dict[str, float]:
    case = CASES[case_index]
    rng = np.random.default_rng(seed)
    passes = dict.fromkeys(INTERVALS, 0)
    for i in range(draws):
        dist = Resampled(case.draw(rng, n, shift), n_resamples=2000, seed=i, interval="calibrated")
        for interval in INTERVALS:
            dist.interval = interval  # the same resamples read by each interval
            passes[interval] += dist.result(case.truth, direction, ALPHA).passes()  # type: ignore[arg-type]
    return {k: v / draws for k, v in passes.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--sizes", default="10,20,30,50")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (cells run in parallel)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    allow = allowance(ALPHA, args.draws)
    lines = [
        f"draws per cell: {args.draws}; alpha = {ALPHA} one-sided; allowance (exact binomial, "
        f"1 % one-sided) = {allow:.3f}; power at truth + 2.5 se in the claim's direction.",
        "",
        "| statistic | n | direction | " + " | ".join(f"size {i}" for i in INTERVALS)
        + " | " + " | ".join(f"power {i}" for i in INTERVALS) + " |",
        "|---|---|---|" + "---|" * (2 * len(INTERVALS)),
    ]
    over: list[str] = []
    started = time.time()
    cells = [(c, case, n, d, direction) for c, case in enumerate(CASES) for n in sizes
             for d, direction in enumerate(("greater", "less"))]
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = []
        for c, case, n, d, direction in cells:
            seed = 1000 * c + 10 * n + d
            delta = 2.5 * case.se(n) * (1 if direction == "greater" else -1)
            low, high = case.span[0] + 0.02, case.span[1] - 0.02
            delta = min(max(case.truth + delta, low), high) - case.truth
            futures.append((pool.submit(run_cell, c, n, direction, 0.0, args.draws, seed),
                            pool.submit(run_cell, c, n, direction, delta, args.draws, seed + 5)))
        for (_c, case, n, _d, direction), (size_f, power_f) in zip(cells, futures, strict=True):
            size, power = size_f.result(), power_f.result()
            flag = {i: ("**" if size[i] > allow else "") for i in INTERVALS}
            over += [f"{case.name} n={n} {direction} {i}" for i in INTERVALS if flag[i]]
            lines.append(f"| {case.name} | {n} | {direction} | "
                         + " | ".join(f"{flag[i]}{size[i]:.3f}{flag[i]}" for i in INTERVALS)
                         + " | " + " | ".join(f"{power[i]:.2f}" for i in INTERVALS) + " |")
            print(lines[-1], f"[{time.time() - started:.0f} s]", file=sys.stderr, flush=True)
    lines += ["", f"cells over the allowance (bold): {len(over)}", *[f"- {o}" for o in over],
              "", f"time: {time.time() - started:.0f} s"]
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
