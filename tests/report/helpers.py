"""Helpers for the report tests: planted-model checkpoint folders and a tiny induction claim."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

#: a tiny assertion for pytester runs, written only with the foundation (stats + record), so
#: the report tests do not depend on the assertion families being finished
CLAIMS_MODULE = '''
import numpy as np
import torch

from mi_assert.prompts import repeated_tokens
from mi_assert.stats.claims import ClaimSpec
from mi_assert.stats.composite import all_of
from mi_assert.verdict import raise_if_failed

REPEAT = 12


def induction_scores(handle, layer, seed):
    toks = repeated_tokens(16, REPEAT, handle.d_vocab, seed=seed, bos_token_id=0)
    hook = f"blocks.{layer}.attn.hook_pattern"
    _, cache = handle.run_with_cache(toks, [hook])
    pat = cache[hook].float()
    q = torch.arange(REPEAT + 1, 2 * REPEAT + 1)
    return pat[:, :, q, q - REPEAT + 1].mean(-1), pat  # [batch, head], [batch, head, q, k]


def induction_spec(handle, layer, head, seeds=(0, 1), threshold=0.3, per_head=None):
    def samples(seed):
        scores, pat = induction_scores(handle, layer, seed)
        if per_head is not None:
            per_head[seed] = (scores, pat)
        return scores[:, head].numpy()

    return ClaimSpec(f"L{layer}H{head} is an induction head", "induction_score", samples,
                     threshold=threshold, seeds=list(seeds), model_info=handle.describe(),
                     settings={"repeat_len": REPEAT, "n_prompts": 16})


def assert_induction(handle, layer, head, seeds=(0, 1), threshold=0.3):
    per_head = {}
    ev = induction_spec(handle, layer, head, seeds, threshold, per_head).evaluate()
    scores, pat = per_head[seeds[0]]
    grid = np.zeros((handle.n_layers, handle.n_heads))
    for lay in range(handle.n_layers):
        grid[lay] = induction_scores(handle, lay, seeds[0])[0].mean(0).numpy()
    ev = ev.with_context(figures={
        "induction score per head": {"kind": "heatmap", "data": grid, "xlabel": "head",
                                     "ylabel": "layer", "title": "mean induction score"},
        "attention pattern": {"kind": "pattern", "data": pat[:2, head], "xlabel": "key pos",
                              "ylabel": "query pos", "title": f"L{layer}H{head} on repeated tokens"},
        "scores per prompt": {"kind": "hist", "data": [scores[:, head].tolist()],
                              "threshold": threshold, "xlabel": "induction score"},
    })
    return raise_if_failed(ev)


def assert_induction_and_quiet(handle, layer, head, quiet_layer, quiet_head, seeds=(0,),
                               threshold=0.3, quiet_below=0.2):
    """A composite claim: L{layer}H{head} is an induction head AND another head is not."""
    quiet = induction_spec(handle, quiet_layer, quiet_head, seeds, quiet_below)
    quiet = ClaimSpec(f"L{quiet_layer}H{quiet_head} is not an induction head", "induction_score",
                      quiet.samples, threshold=quiet_below, alternative="less", seeds=list(seeds),
                      model_info=handle.describe())
    ev = all_of([induction_spec(handle, layer, head, seeds, threshold), quiet],
                claim=f"only L{layer}H{head} induces", model_info=handle.describe())
    return raise_if_failed(ev)
'''


def save_planted_checkpoint(folder: Path, zero_heads: Iterable[tuple[int, int]] = (),
                            q_scale: float = 1.0, seed: int = 0) -> Path:
    """planted-induction@s{seed} as an mi-assert TL checkpoint folder; optionally with heads'
    weights zeroed (their attention becomes uniform) or the induction head's W_Q scaled."""
    from safetensors.torch import save_file

    from mi_assert import load_model

    handle = load_model(f"planted-induction@s{seed}", device="cpu")
    model = handle.model
    layer, head = handle.meta["ground_truth"].heads("induction")[0]
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    state[f"blocks.{layer}.attn.W_Q"][head] *= q_scale
    for lay, hd in zero_heads:
        for name in ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V"):
            state[f"blocks.{lay}.attn.{name}"][hd] = 0.0
    cfg = {}
    for key, value in model.cfg.to_dict().items():
        try:
            json.dumps(value)
        except TypeError:
            continue
        cfg[key] = value
    cfg["mi_assert"] = {"bos_token_id": 0}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg))
    save_file(state, str(folder / "model.safetensors"))
    return folder


def induction_head(seed: int = 0) -> tuple[int, int]:
    from mi_assert.zoo import ground_truth

    return ground_truth(f"planted-induction@s{seed}").heads("induction")[0]


def page_figures(page: str) -> dict[str, dict]:
    """The figure data a report page carries for its script (figure id → drawable spec)."""
    start = page.index('<script type="application/json" id="mi-data">')
    body = page[page.index(">", start) + 1:page.index("</script>", start)]
    return json.loads(body.replace("<\\/", "</"))["figs"]


def assert_self_contained(page: str) -> None:
    """No address outside the file: nothing to fetch, so the page opens offline."""
    assert "http://" not in page and "https://" not in page
    assert "<script src" not in page and "<link" not in page and "<img src=\"http" not in page
