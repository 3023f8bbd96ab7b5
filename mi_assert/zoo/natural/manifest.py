"""The manifest of ``kjv-gpt2-4l``: corpus, training settings, losses, discovered heads, hashes.

``python -m mi_assert.zoo.natural.manifest write`` computes it from the saved checkpoints (run
after :mod:`.train`); ``... check`` (and ``tests/zoo/test_natural_manifest.py``) recomputes
what it can from the committed files and compares.

- **Loss**: mean next-token cross entropy on the held-out chapters (BOS + 255-token windows,
  every token predicted once), per checkpoint, against the unigram baseline (training-token
  frequencies, add-one smoothed, evaluated on the same held-out tokens).
- **Heads**: ``find_heads`` on repeated held-out passages of the fit split (text seen twice,
  through the real tokenizer), per checkpoint: the induction and previous-token rankings. The
  heads recorded as discovered are the final checkpoint's :data:`DISCOVERED_PER_ROLE` best per
  role, with their scores; the claims in ``suites/natural/`` assert them on the confirm split.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch

from mi_assert.zoo.natural import corpus
from mi_assert.zoo.natural.prompts import (
    FIT,
    FOLDER,
    NAME,
    heldout_chapters,
    repeated_passages,
    tokenizer,
)

MANIFEST_NAME = "manifest.json"
#: the final checkpoint's best heads per role recorded as discovered (with their scores)
DISCOVERED_PER_ROLE = 3
#: repeated passages used for discovery
DISCOVERY_PROMPTS = 32
DISCOVERY_TOKENS = 48
WINDOW = 256
LOSS_ATOL = 2e-3
SCORE_ATOL = 5e-3


def step_folders(folder: Path = FOLDER) -> list[tuple[int, Path]]:
    out = [(int(d.name[4:]), d) for d in folder.glob("step*") if d.name[4:].isdigit()]
    return sorted(out)


def file_hashes(folder: Path = FOLDER) -> dict[str, str]:
    """sha256 of every committed file under the model's folder (the manifest excepted)."""
    out: dict[str, str] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME and not path.name.startswith("."):
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def heldout_tokens(tokenizer: Any) -> list[torch.Tensor]:
    """Each held-out chapter as BOS + its tokens."""
    return [torch.tensor([tokenizer.bos_token_id, *tokenizer(c.text)["input_ids"]])
            for c in heldout_chapters()]


def windows(chapters: list[torch.Tensor], size: int = WINDOW) -> torch.Tensor:
    """Non-overlapping windows of ``size`` tokens; each window after a chapter's first gets BOS
    prepended to ``size - 1`` fresh tokens, so every token is predicted once."""
    rows: list[torch.Tensor] = []
    for ids in chapters:
        bos, body = ids[:1], ids[1:]
        for start in range(0, len(body) - 1, size - 1):
            chunk = body[start:start + size - 1]
            if len(chunk) >= 2:
                rows.append(torch.cat([bos, chunk]))
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


@torch.no_grad()
def heldout_loss(model: Any, tokens: torch.Tensor, batch: int = 16) -> float:
    """Mean next-token CE (nats) over every predicted held-out token (HF model, -1 = padding)."""
    total, count = 0.0, 0
    for i in range(0, len(tokens), batch):
        x = tokens[i:i + batch]
        mask = x >= 0
        logits = model(torch.where(mask, x, 0)).logits[:, :-1]
        target = x[:, 1:]
        keep = mask[:, 1:]
        ce = torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum")
        total += float(ce)
        count += int(keep.sum())
    return total / count


def unigram_loss(counts: list[int], tokens: torch.Tensor) -> float:
    c = torch.tensor(counts, dtype=torch.float64) + 1.0
    logp = (c / c.sum()).log()
    target = tokens[:, 1:]
    return float(-logp[target[target >= 0]].mean())


ROLES = ("induction", "previous_token")


def head_scores(spec: str) -> dict[str, list[list[float]]]:
    """Every head's fit-split score per role, ``[layer][head]`` (``find_heads`` with
    ``top_k=None`` on the discovery prompts)."""
    from mi_assert import find_heads, load_model

    handle = load_model(spec, backend="transformer_lens", device="cpu")
    prompts = repeated_passages(DISCOVERY_PROMPTS, DISCOVERY_TOKENS, FIT, seed=0)
    out: dict[str, list[list[float]]] = {}
    for role in ROLES:
        grid = [[0.0] * handle.n_heads for _ in range(handle.n_layers)]
        for s in find_heads(handle, role, top_k=None, prompts=prompts):
            grid[s.layer][s.head] = round(s.score, 4)
        out[role] = grid
    return out


def top_heads(grid: list[list[float]], k: int = 5) -> list[list[Any]]:
    """``[[layer, head, score], ...]``, best first."""
    flat = [[layer, head, v] for layer, row in enumerate(grid) for head, v in enumerate(row)]
    return sorted(flat, key=lambda r: (-r[2], r[0], r[1]))[:k]


def build(folder: Path = FOLDER) -> dict[str, Any]:
    from transformers import GPT2LMHeadModel

    log = json.loads((folder / "train_log.json").read_text())
    tok = tokenizer(step_folders(folder)[-1][1])
    train_chapters, _ = corpus.split(corpus.parse_chapters(corpus.raw_text()))
    counts = torch.bincount(torch.tensor([t for c in train_chapters for t in tok(c.text)["input_ids"]]),
                            minlength=tok.vocab_size).tolist()
    held = windows(heldout_tokens(tok))
    steps: dict[str, Any] = {}
    for step, path in step_folders(folder):
        model = GPT2LMHeadModel.from_pretrained(path, dtype=torch.float32).eval()
        steps[f"step{step}"] = {"heldout_loss": round(heldout_loss(model, held), 4),
                                "head_scores": head_scores(f"{NAME}:step{step}")}
    final = steps[f"step{step_folders(folder)[-1][0]}"]
    discovered = {role: top_heads(final["head_scores"][role], k=DISCOVERED_PER_ROLE) for role in ROLES}
    return {
        "name": NAME,
        "corpus": {"name": corpus.CORPUS_NAME, "license": corpus.CORPUS_LICENSE,
                   "packages": list(corpus.PACKAGES),
                   "chapters": {"train": len(train_chapters), "heldout": len(heldout_chapters())},
                   "train_characters": sum(len(c.text) for c in train_chapters),
                   "heldout_every": corpus.HELDOUT_EVERY, "heldout_offset": corpus.HELDOUT_OFFSET},
        "tokenizer": {"kind": "byte-level BPE (tokenizers)", "vocab_size": tok.vocab_size},
        "model_config": log["model_config"], "train_config": log["train_config"],
        "train_seconds": log["train_seconds"], "train_tokens": log["train_tokens"],
        "tokens_seen": log["tokens_seen"], "torch": log["torch"],
        "heldout_tokens": int((held[:, 1:] >= 0).sum()),
        "unigram_loss": round(unigram_loss(counts, held), 4),
        "unigram_counts": counts,
        "steps": steps,
        "discovery": {"prompts": f"{DISCOVERY_PROMPTS} repeated held-out passages of "
                                 f"{DISCOVERY_TOKENS} tokens (fit split), find_heads",
                      "heads": discovered},
        "files": file_hashes(folder),
    }


def read(folder: Path = FOLDER) -> dict[str, Any]:
    return dict(json.loads((folder / MANIFEST_NAME).read_text()))


def write(folder: Path = FOLDER) -> Path:
    from mi_assert.report.atomic import atomic_write_text

    path = folder / MANIFEST_NAME
    atomic_write_text(path, json.dumps(build(folder), indent=1) + "\n")
    return path


def check(folder: Path = FOLDER, steps: list[str] | None = None) -> list[str]:
    """Differences between the manifest and what the committed files give now (empty: green).
    ``steps``: which checkpoints to recompute losses and head scores for (default: all)."""
    from transformers import GPT2LMHeadModel

    data = read(folder)
    problems: list[str] = []
    hashes = file_hashes(folder)
    if hashes != data["files"]:
        changed = sorted(k for k in set(hashes) | set(data["files"]) if hashes.get(k) != data["files"].get(k))
        problems.append(f"file hashes differ for: {', '.join(changed)}")
    tok = tokenizer(step_folders(folder)[-1][1])
    held = windows(heldout_tokens(tok))
    uni = unigram_loss(data["unigram_counts"], held)
    if not math.isclose(uni, data["unigram_loss"], abs_tol=LOSS_ATOL):
        problems.append(f"unigram loss {uni:.4f} != manifest {data['unigram_loss']}")
    for key in steps or list(data["steps"]):
        record = data["steps"][key]
        model = GPT2LMHeadModel.from_pretrained(folder / key, dtype=torch.float32).eval()
        loss = heldout_loss(model, held)
        if not math.isclose(loss, record["heldout_loss"], abs_tol=LOSS_ATOL):
            problems.append(f"{key}: held-out loss {loss:.4f} != manifest {record['heldout_loss']}")
        scores = head_scores(f"{NAME}:{key}")
        for role, grid in record["head_scores"].items():
            worst = max(abs(a - b) for ra, rb in zip(scores[role], grid, strict=True)
                        for a, b in zip(ra, rb, strict=True))
            if worst > SCORE_ATOL:
                problems.append(f"{key}: {role} head scores differ from the manifest by up to {worst:.4f}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write or check the kjv-gpt2-4l manifest")
    parser.add_argument("action", choices=("write", "check"))
    args = parser.parse_args(argv)
    if args.action == "write":
        print(write())
        return 0
    problems = check()
    print("\n".join(problems) or "manifest matches")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
