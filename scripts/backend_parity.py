"""Measure cross-backend parity on a tiny model (fp32, CPU): max abs differences vs TransformerLens.

Usage: PYTHONPATH=. python scripts/backend_parity.py [MODEL]   (MODEL: a local HF GPT-2 or Llama
folder or zoo name; "llama" / "mistral" / "qwen2" / "neox" / "neox-sequential": a fresh tiny
decoder of that family;
default: a fresh tiny GPT-2; all built like tests/backends/conftest.py's fixtures)
"""

from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

import torch


def main() -> None:
    warnings.simplefilter("ignore")
    from mi_assert import load_model
    from tests.backends.conftest import make_tiny_gpt2, make_tiny_llama, make_tiny_neox
    from tests.backends.test_parity import _interventions, _max_gap, _tokens

    source = sys.argv[1] if len(sys.argv) > 1 else str(make_tiny_gpt2(Path(tempfile.mkdtemp())))
    if source in ("llama", "mistral", "qwen2"):
        source = str(make_tiny_llama(Path(tempfile.mkdtemp()), family=source))
    elif source in ("neox", "neox-sequential"):
        source = str(make_tiny_neox(Path(tempfile.mkdtemp()), parallel=source == "neox"))
    handles = {b: load_model(source, backend=b, device="cpu") for b in ("transformer_lens", "bridge", "nnsight")}
    ref = handles["transformer_lens"]
    names = ref.hook_names()
    tokens = _tokens()
    ref_logits, ref_cache = ref.run_with_cache(tokens, names, check_nan=False)
    hooks = [n for n in names if "attn_scores" not in n]

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return logits[:, -1, 5] - logits[:, -1, 7]

    _, _, ref_grads = ref.gradients(tokens, hooks, metric)
    # every intervention set whose hooks the model has (a rotary model has no hook_pos_embed, a
    # parallel one no hook_resid_mid)
    ivs = [iv for iv in _interventions(ref, tokens) if all(i.hook in names for i in iv)]
    print(f"model {source}; tokens {tuple(tokens.shape)}; {len(names)} canonical hooks; {len(ivs)} intervention sets")
    print("| backend | logits | activations (all hooks) | logits under interventions | gradients |")
    print("|---|---|---|---|---|")
    for backend in ("bridge", "nnsight"):
        h = handles[backend]
        logits, cache = h.run_with_cache(tokens, names, check_nan=False)
        act_gap = max(_max_gap(cache[n], ref_cache[n]) for n in names)
        iv_gap = max(_max_gap(h.run_with_interventions(tokens, iv)[0], ref.run_with_interventions(tokens, iv)[0])
                     for iv in ivs)
        _, _, grads = h.gradients(tokens, hooks, metric)
        grad_gap = max(_max_gap(grads[n], ref_grads[n]) for n in hooks)
        print(f"| {backend} | {_max_gap(logits, ref_logits):.1e} | {act_gap:.1e} | {iv_gap:.1e} | {grad_gap:.1e} |")


if __name__ == "__main__":
    main()
