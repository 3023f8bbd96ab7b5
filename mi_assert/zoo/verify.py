"""Check committed checkpoints against ``manifest.json``: file hashes, recomputed metrics, bars.

Metrics are recomputed from the committed weights on the fixed evaluation sets of
:mod:`mi_assert.zoo.evaluation`, so a tampered, truncated or mis-trained checkpoint shows up
as a hash mismatch, a metric mismatch, or a missed bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from mi_assert.zoo import artifacts, evaluation
from mi_assert.zoo.registry import CHECKPOINT_ROOT

#: absolute tolerance on recomputed metrics (losses, logit diffs, attention scores);
#: float results differ in the last bits across thread counts and CPUs
METRIC_ATOL = 2e-3
#: fractions of prompts (accuracies) may flip a borderline prompt across machines
ACCURACY_ATOL = 0.01

#: the bars each committed checkpoint must clear
INDUCTION_SCORE_BAR = 0.5  # best layer-1 head's induction score ...
INDUCTION_BAR_LENGTHS = (10,)  # ... at these repeat lengths, for every seed; seeds whose
# manifest says "multi_length_induction": true must clear it at every HEAD_SCORE_LENGTH
IOI_HELDOUT_ACCURACY_BAR = 0.95
IOI_ABC_FRACTION_BAR = 0.1  # |ABC-corrupted logit diff| <= 10% of the clean logit diff


def compare(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Differences between two nested metric records beyond the tolerances."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected a mapping, got {type(actual).__name__}"]
        out: list[str] = []
        for key, value in expected.items():
            child = f"{where}.{key}" if where else str(key)
            if key not in actual:
                out.append(f"{child}: missing in recomputed metrics")
            else:
                out.extend(compare(value, actual[key], child))
        return out
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected a list of {len(expected)}, got {actual!r:.60}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in compare(e, a, f"{where}[{i}]")]
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        tol = ACCURACY_ATOL if where.rsplit(".", 1)[-1] in ("accuracy", "top1") else METRIC_ATOL
        if not isinstance(actual, (int, float)) or not math.isclose(expected, actual, abs_tol=tol):
            return [f"{where}: manifest {expected:.6g}, recomputed {actual!r:.12} (tolerance {tol})"]
        return []
    return [] if expected == actual else [f"{where}: manifest {expected!r}, recomputed {actual!r}"]


def check_files(folder: Path, record: dict[str, Any]) -> list[str]:
    """Every file listed in the record exists with its sha256; no unlisted checkpoint files."""
    problems: list[str] = []
    for rel, digest in record.get("files", {}).items():
        path = folder / rel
        if not path.exists():
            problems.append(f"{path}: missing")
        elif artifacts.sha256_file(path) != digest:
            problems.append(f"{path}: sha256 differs from the manifest")
    listed = set(record.get("files", {}))
    for path in folder.glob("*.safetensors"):
        if path.name not in listed:
            problems.append(f"{path}: not in the manifest")
    return problems


def load_tl(folder: Path, step: int | None = None) -> Any:
    from mi_assert.loading import load_native_tl

    weights = folder / ("model.safetensors" if step is None else f"step{step}.safetensors")
    model, _ = load_native_tl(folder, weights)
    return model.eval()


def induction_bar_problems(metrics: dict[str, Any], label: str,
                           lengths: tuple[int, ...] = evaluation.HEAD_SCORE_LENGTHS) -> list[str]:
    """The best layer-1 head must score above :data:`INDUCTION_SCORE_BAR` at each length."""
    problems = []
    for length in lengths:
        best = max(metrics["induction_scores"][str(length)][-1])
        if not best > INDUCTION_SCORE_BAR:
            problems.append(f"{label}: best layer-1 induction score {best:.3f} at repeat length "
                            f"{length} is not above {INDUCTION_SCORE_BAR}")
    return problems


def ioi_bar_problems(metrics: dict[str, Any], label: str) -> list[str]:
    held = metrics["heldout"]
    problems = []
    if held["accuracy"] < IOI_HELDOUT_ACCURACY_BAR:
        problems.append(f"{label}: held-out IO-over-S accuracy {held['accuracy']:.3f} < {IOI_HELDOUT_ACCURACY_BAR}")
    if not held["logit_diff"] > 0:
        problems.append(f"{label}: held-out logit difference {held['logit_diff']:.3f} is not positive")
    if abs(held["abc_logit_diff"]) > IOI_ABC_FRACTION_BAR * abs(held["logit_diff"]):
        problems.append(f"{label}: ABC-corrupted logit difference {held['abc_logit_diff']:.3f} is not "
                        f"within {IOI_ABC_FRACTION_BAR:.0%} of 0 relative to the clean {held['logit_diff']:.3f}")
    return problems


def verify_trained(name: str, seed_key: str, record: dict[str, Any], root: Path,
                   intermediate: bool = True) -> list[str]:
    """Hashes, recomputed final (and intermediate) metrics, and bars for one seed."""
    folder = root / name / seed_key
    label = f"{name}@{seed_key}"
    problems = check_files(folder, record)
    if problems:
        return problems
    recompute = evaluation.induction_metrics if name == "attn-only-2l-induction" else evaluation.ioi_metrics
    final = recompute(load_tl(folder))
    problems += [f"{label}: {d}" for d in compare(record["metrics"], final)]
    if intermediate:
        for step, expected in record.get("intermediate", {}).items():
            got = recompute(load_tl(folder, int(step)))
            problems += [f"{label}:step{step}: {d}" for d in compare(expected, got)]
    if name == "attn-only-2l-induction":
        multi = record.get("heads", {}).get("multi_length_induction", False)
        lengths = evaluation.HEAD_SCORE_LENGTHS if multi else INDUCTION_BAR_LENGTHS
        problems += induction_bar_problems(final, label, lengths)
        if record["metrics"]["accuracy"] < 0.9:
            problems.append(f"{label}: accuracy on the repeated half {record['metrics']['accuracy']:.3f} < 0.9")
    else:
        problems += ioi_bar_problems(final, label)
    return problems


def verify_tiny_gpt2(record: dict[str, Any], root: Path) -> list[str]:
    from transformers import AutoTokenizer, GPT2LMHeadModel

    from mi_assert.zoo import tiny_gpt2

    folder = root / tiny_gpt2.NAME
    problems = check_files(folder, record)
    if problems:
        return problems
    # transformers leaves PreTrainedModel.eval unannotated
    model = cast(Any, GPT2LMHeadModel.from_pretrained(str(folder))).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    got = tiny_gpt2.evaluate(model, tokenizer)
    return [f"tiny-gpt2: {d}" for d in compare(record["metrics"], got)]


def verify_all(root: Path = CHECKPOINT_ROOT, log: Callable[[str], Any] = lambda _: None) -> list[str]:
    data = artifacts.read_manifest(root)
    problems: list[str] = []
    models = data.get("models", {})
    if not models:
        return [f"no manifest at {root / artifacts.MANIFEST_NAME}"]
    for name, seeds in models.items():
        for key, record in seeds.items():
            if name == "tiny-gpt2":
                found = verify_tiny_gpt2(record, root)
            else:
                found = verify_trained(name, key, record, root)
            log(f"{name}@{key}: {'ok' if not found else f'{len(found)} problem(s)'}")
            problems += found
    return problems
