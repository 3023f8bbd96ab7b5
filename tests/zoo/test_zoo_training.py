"""Training is deterministic from the seed, the twin matches TransformerLens, the CLI works."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mi_assert.zoo import train_induction, train_ioi
from mi_assert.zoo.__main__ import main
from mi_assert.zoo.fast_model import TLTwin


def _same(a: TLTwin, b: TLTwin) -> bool:
    sa, sb = a.tl_state_dict(), b.tl_state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("trainer, config", [
    (train_induction, train_induction.InductionTrainConfig(steps=12)),
    (train_ioi, train_ioi.IOITrainConfig(steps=12)),
])
def test_same_seed_same_weights_other_seed_other_weights(trainer, config) -> None:
    first, losses_a = trainer.train_model(0, config)
    second, losses_b = trainer.train_model(0, config)
    other, _ = trainer.train_model(1, config)
    assert _same(first, second) and losses_a == losses_b
    assert not _same(first, other)
    assert not _same(first, trainer.build_model(0))  # the steps changed the weights


@pytest.mark.parametrize("cfg", [train_induction.MODEL_CONFIG, train_ioi.MODEL_CONFIG])
def test_twin_matches_hooked_transformer(cfg) -> None:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    torch.manual_seed(0)
    twin = TLTwin(cfg)
    with torch.no_grad():  # non-trivial LN and biases too
        for _, param in twin.named_tl_parameters():
            param.add_(0.1 * torch.randn_like(param))
    model = HookedTransformer(HookedTransformerConfig(**cfg))
    result = model.load_state_dict(twin.tl_state_dict(), strict=False)
    assert result.unexpected_keys == []
    assert all(k.endswith(("attn.mask", "attn.IGNORE")) for k in result.missing_keys)
    tokens = torch.randint(0, cfg["d_vocab"], (3, 15))
    with torch.no_grad():
        torch.testing.assert_close(model(tokens), twin(tokens), atol=1e-4, rtol=1e-4)


def test_train_writes_a_loadable_checkpoint_and_manifest(tmp_path: Path) -> None:
    import mi_assert
    from mi_assert.zoo import artifacts

    config = replace(train_induction.InductionTrainConfig(), steps=5, checkpoint_steps=(0, 3))
    folder = train_induction.train_to_folder(0, tmp_path, config)
    assert sorted(p.name for p in folder.glob("*.safetensors")) == [
        "model.safetensors", "step0.safetensors", "step3.safetensors"]
    record = train_induction.finalize(0, tmp_path)
    assert set(record["intermediate"]) == {"0", "3"}
    manifest = artifacts.read_manifest(tmp_path)
    assert manifest["models"]["attn-only-2l-induction"]["s0"]["files"] == record["files"]
    handle = mi_assert.load_model(str(folder), device="cpu")
    assert handle.n_layers == 2 and handle.bos_token_id == 0


def test_cli_list_and_errors(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("attn-only-2l-induction", "ioi-small", "planted-induction", "tiny-gpt2"):
        assert name in out
    with pytest.raises(SystemExit):
        main(["train", "planted-induction"])
    with pytest.raises(SystemExit, match="has seeds"):
        main(["train", "ioi-small", "--seed", "9"])


def test_cli_verify_reports_a_missing_manifest(tmp_path: Path, capsys) -> None:
    assert main(["verify", "--out", str(tmp_path)]) == 1
    assert "no manifest" in capsys.readouterr().out
