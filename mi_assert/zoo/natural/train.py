"""Train ``kjv-gpt2-4l``: the tokenizer, the model and its log-spaced checkpoints.

``python -m mi_assert.zoo.natural.train [--out DIR] [--steps N]`` (about 45 minutes on one CPU
core). Writes, under ``DIR`` (default: the zoo's committed folder):

- ``stepK/`` for each of :data:`CHECKPOINT_STEPS`: a Hugging Face ``GPT2LMHeadModel`` folder
  (weights stored in float16 to keep the committed total small; the tied unembedding stored
  once), with the tokenizer beside them: a byte-level BPE tokenizer (``tokenizers``) trained
  on the training chapters, saved as a ``GPT2TokenizerFast``. Each folder loads with
  ``mi_assert.load_model`` on TransformerLens, the bridge and nnsight;
- ``heldout.txt``: the held-out chapters; ``train_log.json``.

The manifest (``manifest.json`` in ``DIR``) is written by :mod:`.manifest` from the saved files.

Determinism: the model is initialised after ``torch.manual_seed(seed)`` and batches come from a
``torch.Generator`` seeded with ``seed``; the thread count is recorded, since float reductions
split across threads differently at another count.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from mi_assert.zoo.natural import corpus

NAME = "kjv-gpt2-4l"
ROOT = Path(__file__).resolve().parent.parent / "checkpoints" / NAME
BOS = "<|endoftext|>"

MODEL_CONFIG: dict[str, Any] = {
    "vocab_size": 1024,
    "n_positions": 256,
    "n_embd": 256,
    "n_layer": 4,
    "n_head": 8,
    "n_inner": 512,
    "activation_function": "gelu_new",
    "resid_pdrop": 0.0,
    "embd_pdrop": 0.0,
    "attn_pdrop": 0.0,
    "tie_word_embeddings": True,
}

#: log-spaced, so the induction bump shows as a trajectory (the init is not stored: it is the
#: seed's ``GPT2LMHeadModel`` init)
CHECKPOINT_STEPS: tuple[int, ...] = (75, 420, 1000, 2400, 4000)


@dataclass(frozen=True)
class Phase:
    """A stretch of training with its own cosine schedule (warm-up, then cosine down to 0.1 x
    ``lr``) and data mixture."""

    steps: int
    lr: float
    warmup: int
    #: fraction of rows that hold one passage twice (BOS + w + w, w of (seq_len - 1) // 2
    #: tokens): text duplicated within a context, as web corpora have
    repeat_fraction: float


#: phase 1 alone left the model without induction heads (best fit-split score 0.08 at step
#: 2400, recorded in the manifest); phase 2 restarts the schedule with more duplicated rows
PHASES: tuple[Phase, ...] = (Phase(2400, 1e-3, 100, 0.25), Phase(1600, 2e-3, 50, 0.5))


@dataclass(frozen=True)
class NaturalTrainConfig:
    seed: int = 0
    phases: tuple[Phase, ...] = PHASES
    batch_size: int = 16
    seq_len: int = 256
    weight_decay: float = 0.1
    threads: int = 1

    @property
    def steps(self) -> int:
        return sum(p.steps for p in self.phases)


def train_tokenizer(chapters: list[corpus.Chapter], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (GPT-2's pre-tokenisation) as a ``GPT2TokenizerFast``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast  # type: ignore[attr-defined]  # lazily exported

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator((c.text for c in chapters), vocab_size=vocab_size,
                            min_frequency=2, special_tokens=[BOS])
    tok = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=BOS, eos_token=BOS,
                            unk_token=BOS, model_max_length=MODEL_CONFIG["n_positions"])
    return tok


def token_stream(tok: Any, chapters: list[corpus.Chapter]) -> torch.Tensor:
    """All chapters tokenised, each preceded by BOS, as one 1-D tensor."""
    ids: list[int] = []
    for c in chapters:
        ids.append(tok.bos_token_id)
        ids.extend(tok(c.text)["input_ids"])
    return torch.tensor(ids, dtype=torch.long)


def batches(stream: torch.Tensor, cfg: NaturalTrainConfig, phase: Phase,
            gen: torch.Generator) -> torch.Tensor:
    """``batch_size`` windows of ``seq_len`` tokens at uniform random offsets; each starts with
    BOS (prepended), as the model will see prompts."""
    starts = torch.randint(0, len(stream) - cfg.seq_len, (cfg.batch_size,), generator=gen)
    rows = torch.stack([stream[s:s + cfg.seq_len - 1] for s in starts.tolist()])
    if phase.repeat_fraction > 0:
        half = (cfg.seq_len - 1) // 2
        repeat = torch.rand(cfg.batch_size, generator=gen) < phase.repeat_fraction
        doubled = torch.cat([rows[:, :half], rows[:, :half], rows[:, 2 * half:]], dim=1)
        rows = torch.where(repeat[:, None], doubled, rows)
    bos = torch.full((cfg.batch_size, 1), int(stream[0]), dtype=torch.long)
    return torch.cat([bos, rows], dim=1)


def lr_at(step: int, phase: Phase) -> float:
    """Learning rate at ``step`` (0-based) of ``phase``."""
    if step < phase.warmup:
        return phase.lr * (step + 1) / phase.warmup
    progress = (step - phase.warmup) / max(1, phase.steps - phase.warmup)
    return phase.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def save_checkpoint(model: Any, tok: Any, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    half = {k: v.detach().to(torch.float16).clone() for k, v in model.state_dict().items()}
    model.save_pretrained(folder, state_dict=half)
    tok.save_pretrained(folder)
    drop_tied_head(folder)


def drop_tied_head(folder: Path) -> None:
    """Remove ``lm_head.weight`` from a saved checkpoint when it equals the token embedding:
    the config ties them, so loading restores it (a cloned state dict would store it twice)."""
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    state = load_file(path)
    head = state.get("lm_head.weight")
    if head is not None and torch.equal(head, state["transformer.wte.weight"]):
        del state["lm_head.weight"]
        save_file(state, path, metadata={"format": "pt"})


def train(out: Path, cfg: NaturalTrainConfig, *, resume_after: int | None = None,
          monitor: Path | None = None) -> None:
    """Run every phase; with ``resume_after`` (a phase boundary step) start from the state saved
    there by an earlier run (model, optimiser, data generator: the same numbers as one run)."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(cfg.threads)
    chapters = corpus.parse_chapters(corpus.raw_text())
    train_chapters, heldout = corpus.split(chapters)
    out.mkdir(parents=True, exist_ok=True)
    corpus.write_chapters(heldout, str(out / "heldout.txt"))
    if resume_after is None:
        tok = train_tokenizer(train_chapters, MODEL_CONFIG["vocab_size"])
    else:
        tok = AutoTokenizer.from_pretrained(out / f"step{resume_after}")
    stream = token_stream(tok, train_chapters)
    torch.manual_seed(cfg.seed)
    model = GPT2LMHeadModel(GPT2Config(**MODEL_CONFIG, bos_token_id=tok.bos_token_id,
                                       eos_token_id=tok.eos_token_id))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.phases[0].lr,
                            betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(cfg.seed)
    done = 0
    if resume_after is not None:
        state = torch.load(resume_path(out, resume_after), weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        done = resume_after
    losses: list[float] = []
    start = time.perf_counter()
    model.train()
    step = 0
    for phase in cfg.phases:
        for k in range(phase.steps):
            step += 1
            if step <= done:
                continue
            for group in opt.param_groups:
                group["lr"] = lr_at(k, phase)
            x = batches(stream, cfg, phase, gen)
            loss = model(x, labels=x).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
            if step % 50 == 0:
                print(f"step {step}/{cfg.steps} loss {sum(losses[-50:]) / len(losses[-50:]):.3f} "
                      f"{time.perf_counter() - start:.0f}s", flush=True)
            where = out if step in CHECKPOINT_STEPS else monitor if step % 200 == 0 else None
            if where is not None:
                model.eval()
                save_checkpoint(model, tok, where / f"step{step}")
                model.train()
        if step > done:
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state()},
                       resume_path(out, step))
    seconds = time.perf_counter() - start
    log = {"name": NAME, "train_config": asdict(cfg), "model_config": MODEL_CONFIG,
           "checkpoint_steps": list(CHECKPOINT_STEPS), "train_seconds": round(seconds, 1),
           "train_tokens": int(len(stream)), "tokens_seen": cfg.steps * cfg.batch_size * cfg.seq_len,
           "loss_every_10_steps": [round(v, 4) for v in losses[::10]],
           "torch": torch.__version__}
    log_path = out / "train_log.json"
    if resume_after is not None and log_path.exists():
        earlier = json.loads(log_path.read_text())
        log["train_seconds"] = round(earlier["train_seconds"] + seconds, 1)
        log["loss_every_10_steps"] = earlier["loss_every_10_steps"][:resume_after // 10] + log["loss_every_10_steps"]
    log_path.write_text(json.dumps(log, indent=1) + "\n")


def resume_path(out: Path, step: int) -> Path:
    """Where the training state at a phase boundary is kept: outside the package, under
    ``$MI_ASSERT_TRAIN_STATE`` (default ``~/.cache/mi-assert``), never committed."""
    import os

    root = Path(os.environ.get("MI_ASSERT_TRAIN_STATE", "~/.cache/mi-assert")).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{NAME}-{out.resolve().name}-resume-step{step}.pt"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT)
    parser.add_argument("--threads", type=int, default=NaturalTrainConfig.threads)
    parser.add_argument("--resume-after", type=int, default=None,
                        help="start from the state an earlier run saved at this phase boundary")
    parser.add_argument("--monitor", type=Path, default=None,
                        help="also save a checkpoint every 200 steps here (not committed)")
    args = parser.parse_args(argv)
    train(args.out, NaturalTrainConfig(threads=args.threads), resume_after=args.resume_after,
          monitor=args.monitor)


if __name__ == "__main__":
    main()
