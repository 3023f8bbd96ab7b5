"""Calibration of the edge-circuit claims on planted induction models.

Each draw ``i`` takes the planted model ``planted-induction@s{i % n_models}``, a fresh prompt
batch ``induction_pairs(seed=1000 + i, n_prompts=N)`` (``--prompts``, default 16) and random-circuit seed ``i`` for the
claim's draws, and runs ``check_circuit_beats_random`` (defaults: 100 random circuits,
q = 0.9, alpha = 0.05) on

* the model's planted circuit ``embed -> L0Hp.v, L0Hp -> L1Hi.k, L1Hi -> logits`` (p: its
  previous-token head, i: its induction head; ground truth of the zoo), which should pass;
* a null circuit: 3 edges drawn uniformly among the 3-edge sets with an edge into the logits
  (seed ``5000 + i``; a set without one is refused by the claim), tallied apart when it
  shares an edge with the planted circuit. A disjoint null should pass at most at rate alpha.

``--claims`` picks the claims: ``beats-random`` (default) and/or ``necessary``
(``check_circuit_necessary``, defaults). Prints a markdown table of pass rates with
Clopper-Pearson 95% intervals; ``--write-docs`` puts it into the "Calibration" section of
docs/edges.md (between its markers; one block per claim set).

    OMP_NUM_THREADS=1 python scripts/edges_calibration.py --draws 100 --write-docs
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from scipy import stats

import mi_assert
from mi_assert.edges import Circuit, EdgeGraph
from mi_assert.edges.claims import check_circuit_beats_random, check_circuit_necessary
from mi_assert.prompts.pairs import induction_pairs

ALPHA = 0.05
DOCS = Path(__file__).resolve().parents[1] / "docs" / "edges.md"
CLAIMS: dict[str, Callable[..., Any]] = {"beats-random": check_circuit_beats_random,
                                         "necessary": check_circuit_necessary}
KINDS = ("planted", "null, disjoint", "null, shares a planted edge")


def markers(claims: Sequence[str]) -> tuple[str, str]:
    """The docs markers around the block of one claim set."""
    tag = "+".join(claims)
    return f"<!-- edges-calibration {tag}:start -->", f"<!-- edges-calibration {tag}:end -->"


def planted_circuit(handle: Any) -> list[str]:
    """The planted circuit of a planted-induction model, from its ground truth."""
    truth = handle.meta["ground_truth"]
    ((_, prev),) = truth.heads("previous_token")
    ((_, induction),) = truth.heads("induction")
    return [f"embed->L0H{prev}.v", f"L0H{prev}->L1H{induction}.k", f"L1H{induction}->logits"]


def null_circuit(graph: EdgeGraph, seed: int, size: int = 3) -> Circuit:
    """``size`` edges drawn uniformly among the ``size``-edge sets with an edge into the
    logits (rejection sampling, torch generator seeded with ``seed``)."""
    gen = torch.Generator().manual_seed(seed)
    while True:
        picked = torch.randperm(graph.n_edges, generator=gen)[:size]
        edges = tuple(graph.edges[int(i)] for i in picked)
        if any(e.receiver.kind == "logits" for e in edges):
            return Circuit(graph, edges)


@dataclass
class Tally:
    passes: int = 0
    runs: int = 0
    failures: list[int] = field(default_factory=list)

    def add(self, passed: bool, draw: int) -> None:
        self.runs += 1
        self.passes += int(passed)
        if not passed:
            self.failures.append(draw)

    def rate(self) -> str:
        if self.runs == 0:
            return "—"
        low, high = stats.binomtest(self.passes, self.runs).proportion_ci(0.95, "exact")
        return f"{self.passes}/{self.runs} = {self.passes / self.runs:.1%} [{low:.1%}, {high:.1%}]"


def calibrate(draws: int, n_models: int = 5, n_random: int = 100,
              claims: Sequence[str] = ("beats-random",), n_prompts: int = 16,
              progress: Callable[[str], None] | None = None) -> tuple[dict[str, Tally], float]:
    """Pass tallies per (claim, circuit kind) over ``draws`` draws, and the seconds it took."""
    unknown = sorted(set(claims) - set(CLAIMS))
    if unknown or not claims:
        raise SystemExit(f"--claims: {unknown or 'none'}; allowed {', '.join(CLAIMS)}")
    started = time.perf_counter()
    handles = [mi_assert.load_model(f"planted-induction@s{s}", device="cpu")
               for s in range(min(n_models, draws))]
    tallies = {f"{claim}: {kind}": Tally() for claim in claims for kind in KINDS}
    for i in range(draws):
        handle = handles[i % len(handles)]
        graph = EdgeGraph.from_handle(handle)
        ps = induction_pairs(handle, seed=1000 + i, n_prompts=n_prompts)
        planted = planted_circuit(handle)
        null = null_circuit(graph, 5000 + i)
        shares = bool(set(planted) & set(null.names))
        circuits = {"planted": planted, KINDS[2] if shares else KINDS[1]: null}
        for claim in claims:
            for kind, circuit in circuits.items():
                evidence = CLAIMS[claim](handle, circuit, ps, n_random=n_random, seed=i,
                                         alpha=ALPHA)
                tallies[f"{claim}: {kind}"].add(evidence.passed, i)
        if progress is not None and (i + 1) % 10 == 0:
            progress(f"{i + 1}/{draws} draws, {time.perf_counter() - started:.0f} s")
    return tallies, time.perf_counter() - started


#: what each circuit kind should do, per claim: the planted circuit pass, a disjoint null fail;
#: a null sharing a vital planted edge is partially necessary, but no better than random draws
WANTS = {"planted": "≥ 99%", KINDS[1]: f"≤ α = {ALPHA:g}"}
WANTS_SHARED = {"beats-random": "≤ α (it restores nothing alone)",
                "necessary": "may pass (it holds a vital edge)"}


def table(tallies: dict[str, Tally]) -> str:
    rows = ["| claim: circuit | passes [95% CI] | want | failed draws |", "|---|---|---|---|"]
    for name, tally in tallies.items():
        claim, kind = name.split(": ", 1)
        want = WANTS.get(kind) or WANTS_SHARED[claim]
        failed = (", ".join(map(str, tally.failures[:10])) or "none") if kind == "planted" else "—"
        rows.append(f"| {name} | {tally.rate()} | {want} | {failed} |")
    return "\n".join(rows)


def section(tallies: dict[str, Tally], seconds: float, command: str, draws: int,
            n_models: int, n_prompts: int, claims: Sequence[str] = ("beats-random",)) -> str:
    start, end = markers(claims)
    return "\n".join([
        start,
        f"Measured with `{command}` ({draws} draws over planted-induction@s0..s{n_models - 1}, "
        f"{n_prompts} prompt pairs each; {seconds / 60:.1f} min on one CPU thread of the shared "
        "2-core machine):",
        "",
        table(tallies),
        end,
    ])


def write_docs(text: str, path: Path = DOCS) -> None:
    """Replace the block of ``text``'s markers in ``path``; a new block goes at the end of the
    Calibration section (which is appended when missing)."""
    start, end = text.splitlines()[0], text.splitlines()[-1]
    doc = path.read_text()
    if start in doc and end in doc:
        doc = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: text, doc,
                     flags=re.DOTALL)
    elif "\n## Calibration\n" in doc:
        head, rest = doc.split("\n## Calibration\n", 1)
        later = rest.find("\n## ")
        body, tail = (rest, "") if later < 0 else (rest[:later], rest[later:])
        doc = f"{head}\n## Calibration\n{body.rstrip()}\n\n{text}\n{tail}"
    else:
        doc = doc.rstrip("\n") + "\n\n## Calibration\n\n" + text + "\n"
    path.write_text(doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--models", type=int, default=5, help="planted seeds s0..s{N-1}")
    parser.add_argument("--n-random", type=int, default=100)
    parser.add_argument("--prompts", type=int, default=16, help="prompt pairs per draw")
    parser.add_argument("--claims", default="beats-random",
                        help=f"comma-separated, of {', '.join(CLAIMS)}")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    claims = [c.strip() for c in args.claims.split(",") if c.strip()]
    tallies, seconds = calibrate(args.draws, args.models, args.n_random, claims, args.prompts,
                                 progress=lambda s: print(s, file=sys.stderr, flush=True))
    command = "OMP_NUM_THREADS=1 python scripts/edges_calibration.py --draws " + str(args.draws)
    if args.models != 5:
        command += f" --models {args.models}"
    if args.n_random != 100:
        command += f" --n-random {args.n_random}"
    if args.prompts != 16:
        command += f" --prompts {args.prompts}"
    if claims != ["beats-random"]:
        command += f" --claims {','.join(claims)}"
    text = section(tallies, seconds, command, args.draws, min(args.models, args.draws),
                   args.prompts, claims)
    print(text)
    if args.write_docs:
        write_docs(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
