"""Build ``tiny-gpt2``: a 2-layer GPT-2 in Hugging Face format with a project-built tokenizer.

* Tokenizer: byte-level BPE (like GPT-2's) trained with the ``tokenizers`` library on a fixed
  synthetic corpus (every IOI template filled with every name, place and object, plus short
  word lists), 512 tokens, ``<|endoftext|>`` as BOS/EOS/UNK. Saved with ``save_pretrained``
  so loaders that reload a tokenizer by ``name_or_path`` find it on disk.
* Model: ``GPT2LMHeadModel`` (2 layers, d_model 64, 4 heads, 64 positions, tied embeddings),
  trained for :data:`TRAIN_STEPS` steps on half induction batches (``<|endoftext|>`` + random
  tokens repeated twice) and half IOI sentences, so its weights have structure (it copies
  repeated tokens) rather than being pure noise. It is meant for loader and backend-parity
  tests, not for circuit claims.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, cast

import torch

from mi_assert.prompts import ioi
from mi_assert.zoo import artifacts
from mi_assert.zoo.registry import CHECKPOINT_ROOT

NAME = "tiny-gpt2"
SEED = 0
VOCAB_SIZE = 512
SPECIAL = "<|endoftext|>"
TRAIN_STEPS = 400
BATCH_SIZE = 32
N_POSITIONS = 64


def corpus() -> list[str]:
    """The tokenizer's training text: deterministic, generated from the IOI word lists."""
    lines: list[str] = []
    for t, template in enumerate(ioi.ALL_TEMPLATES):
        for i, a in enumerate(ioi.NAMES):
            b = ioi.NAMES[(i + 1 + t) % len(ioi.NAMES)]
            text = template.format(A=a, B=b, S=b, P=ioi.PLACES[i % len(ioi.PLACES)],
                                   O=ioi.OBJECTS[(i + t) % len(ioi.OBJECTS)])
            lines.append(text.replace(" ,", ",").replace(" .", ".") + " " + a + ".")
    lines.append(" ".join(ioi.NAMES + ioi.PLACES + ioi.OBJECTS))
    return lines


def build_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=[SPECIAL], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(corpus(), trainer=trainer)
    # transformers leaves the fast tokenizer's __init__ unannotated
    return cast(Any, PreTrainedTokenizerFast)(
        tokenizer_object=core, bos_token=SPECIAL, eos_token=SPECIAL, unk_token=SPECIAL,
        model_max_length=N_POSITIONS,
    )


def build_model(tokenizer: Any, seed: int = SEED) -> Any:
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=N_POSITIONS, n_embd=64, n_layer=2, n_head=4,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return GPT2LMHeadModel(config)


def _batch(gen: torch.Generator, step: int, tokenizer: Any, ioi_rows: torch.Tensor) -> torch.Tensor:
    bos = tokenizer.bos_token_id
    if step % 2 == 0:  # induction: BOS + r + r
        length = int(torch.randint(5, 21, (1,), generator=gen))
        r = torch.randint(1, len(tokenizer), (BATCH_SIZE, length), generator=gen)
        return torch.cat([torch.full((BATCH_SIZE, 1), bos), r, r], dim=1)
    idx = torch.randint(0, ioi_rows.shape[0], (BATCH_SIZE,), generator=gen)
    return ioi_rows[idx]


def _ioi_rows(tokenizer: Any) -> torch.Tensor:
    """IOI sentences with their answer, tokenized with BOS (only the template-length group
    that is most common, so rows stack)."""
    rows: dict[int, list[list[int]]] = {}
    for split in ("fit", "heldout"):
        prompts = ioi.ioi_prompt_set(None, seed=7, n_prompts=512, corruption="none", templates=split)
        assert prompts.correct is not None  # IOI prompt sets always carry their answers
        for text, answer in zip(prompts.meta["text"], prompts.correct, strict=True):
            sentence = text.replace(" ,", ",").replace(" .", ".") + " " + ioi.id_to_word(int(answer))
            ids = [tokenizer.bos_token_id, *tokenizer(sentence, add_special_tokens=False)["input_ids"]]
            rows.setdefault(len(ids), []).append(ids)
    best = max(rows.values(), key=len)
    return torch.tensor(best)


def build(out_root: Path = CHECKPOINT_ROOT) -> dict[str, Any]:
    """Train the tokenizer and model, ``save_pretrained`` both to ``out_root/tiny-gpt2/``."""
    folder = out_root / NAME
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with artifacts.single_thread_determinism():
        tokenizer = build_tokenizer()
        model = build_model(tokenizer)
        rows = _ioi_rows(tokenizer)
        gen = torch.Generator().manual_seed(3_000_017)
        opt = torch.optim.AdamW(model.parameters(), lr=3e-3)

        def step_loss(step: int, model: Any) -> torch.Tensor:
            tokens = _batch(gen, step, tokenizer, rows)
            return cast(torch.Tensor, model(input_ids=tokens, labels=tokens).loss)

        losses = artifacts.fit_steps(model, opt, TRAIN_STEPS, step_loss)
    seconds = time.perf_counter() - start
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    metrics = evaluate(model, tokenizer)
    record = {
        "seed": SEED,
        "steps": TRAIN_STEPS,
        "train_config": {"batch_size": BATCH_SIZE, "lr": 3e-3, "vocab_size": VOCAB_SIZE,
                         "data": "alternating induction batches (BOS + r + r, L 5..20) and IOI sentences"},
        "final_train_loss": sum(losses[-20:]) / 20,
        "metrics": metrics,
        "n_params": artifacts.n_params(model),
        "train_seconds": round(seconds, 2),
        "threads": 1,
        "files": artifacts.hash_folder(folder),
        **artifacts.environment(),
    }
    artifacts.update_manifest(NAME, "build", record, out_root)
    return record


@torch.no_grad()
def evaluate(model: Any, tokenizer: Any) -> dict[str, float]:
    """Loss and accuracy on the second copy of fixed repeated-token prompts (length 16)."""
    gen = torch.Generator().manual_seed(3_000_019)
    length = 16
    r = torch.randint(1, len(tokenizer), (64, length), generator=gen)
    tokens = torch.cat([torch.full((64, 1), tokenizer.bos_token_id), r, r], dim=1)
    logits = model(input_ids=tokens).logits
    pred = logits[:, length + 1: 2 * length]
    target = tokens[:, length + 2: 2 * length + 1]
    loss = torch.nn.functional.cross_entropy(pred.reshape(-1, pred.shape[-1]), target.reshape(-1))
    return {"repeat_loss": float(loss), "repeat_accuracy": float((pred.argmax(-1) == target).float().mean())}
