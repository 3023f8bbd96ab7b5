"""Fixtures for backend tests: a tiny Hugging Face GPT-2 with a tokenizer, loaded on every backend."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

BACKENDS = ("transformer_lens", "bridge", "nnsight")
#: fp32 parity tolerance (max abs difference) between backends, for logits and activations
ATOL = 1e-4


def word_tokenizer():
    """100 whitespace-separated words: ``<bos>`` (0), ``<pad>`` (1), ``w0``..``w97``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<bos>", "<pad>"] + [f"w{i}" for i in range(98)]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="w0"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<bos>",
                                   pad_token="<pad>", unk_token="w0")


def make_tiny_gpt2(path: Path, seed: int = 0) -> Path:
    """A 2-layer GPT-2 (d_model 64, 4 heads, 64 positions) + a WordLevel tokenizer, saved to ``path``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = word_tokenizer()
    torch.manual_seed(seed)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=len(tokenizer),
                        bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():  # larger than the 0.02 init so heads and MLPs do visible work
        for p in model.parameters():
            p.mul_(5.0 if p.ndim == 2 else 1.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


#: Llama-family decoders mapped by the LLAMA architecture table
LLAMA_FAMILY = ("llama", "mistral", "qwen2")


def make_tiny_llama(path: Path, seed: int = 0, family: str = "llama") -> Path:
    """A 2-layer Llama-family decoder (d_model 64, 4 query heads sharing 2 key/value heads,
    RMSNorm weights and Qwen2's q/k/v biases randomised) + the same WordLevel tokenizer as
    :func:`make_tiny_gpt2`, saved to ``path``."""
    import transformers

    config_cls, model_cls = {
        "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
        "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
        "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
    }[family]
    tokenizer = word_tokenizer()
    torch.manual_seed(seed)
    config = config_cls(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=64, bos_token_id=0, eos_token_id=0,
                        pad_token_id=1, tie_word_embeddings=False)
    return _randomise_and_save(model_cls(config), tokenizer, path, bias_scale=0.5)


def make_tiny_neox(path: Path, parallel: bool = True, seed: int = 0) -> Path:
    """A 2-layer GPT-NeoX (Pythia layout: d_model 64, 4 heads, rotary on a quarter of each head,
    parallel attention/MLP unless ``parallel=False``; LayerNorm parameters randomised) + the
    WordLevel tokenizer, saved to ``path``."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    tokenizer = word_tokenizer()
    torch.manual_seed(seed)
    config = GPTNeoXConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=64,
                           rotary_pct=0.25, use_parallel_residual=parallel, bos_token_id=0,
                           eos_token_id=0, tie_word_embeddings=False)
    return _randomise_and_save(GPTNeoXForCausalLM(config), tokenizer, path, bias_scale=0.2)


def _randomise_and_save(model, tokenizer, path: Path, bias_scale: float) -> Path:
    """Norm weights 1 ± 0.2, biases random, matrices ×5 (the 0.02 init would leave heads and
    MLPs doing little visible work), then ``save_pretrained`` model and tokenizer."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(bias_scale * torch.randn_like(p))
            else:
                p.mul_(5.0)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load_on_every_backend(source: str) -> dict:
    """{backend: handle} for one checkpoint."""
    from mi_assert import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {b: load_model(source, backend=b, device="cpu") for b in BACKENDS}


#: every Hugging Face decoder layout beside GPT-2 that the backends map
DECODER_LAYOUTS = (*LLAMA_FAMILY, "neox", "neox-sequential")


@pytest.fixture(scope="session")
def decoder_loader(tmp_path_factory: pytest.TempPathFactory):
    """``layout -> {backend: handle}``, each tiny checkpoint built and loaded once per session."""
    loaded: dict[str, dict] = {}

    def load(layout: str) -> dict:
        if layout not in loaded:
            folder = tmp_path_factory.mktemp(f"tiny-{layout}")
            if layout.startswith("neox"):
                path = make_tiny_neox(folder, parallel=layout == "neox")
            else:
                path = make_tiny_llama(folder, family=layout)
            loaded[layout] = load_on_every_backend(str(path))
        return loaded[layout]

    return load


@pytest.fixture(params=DECODER_LAYOUTS)
def decoder_handles(request: pytest.FixtureRequest, decoder_loader) -> dict:
    """{backend: handle} for each tiny decoder layout in turn."""
    return decoder_loader(request.param)


@pytest.fixture(params=LLAMA_FAMILY)
def llama_handles(request: pytest.FixtureRequest, decoder_loader) -> dict:
    """{backend: handle} for one tiny Llama-family checkpoint (each family in turn)."""
    return decoder_loader(request.param)


@pytest.fixture(params=["neox", "neox-sequential"])
def neox_handles(request: pytest.FixtureRequest, decoder_loader) -> dict:
    """{backend: handle} for one tiny GPT-NeoX (parallel, as Pythia, and sequential)."""
    return decoder_loader(request.param)


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session", params=["tmp", "zoo"])
def gpt2_handles(request: pytest.FixtureRequest, tiny_gpt2_dir: Path) -> dict:
    """{backend: handle} for one tiny GPT-2 checkpoint (the test's own, and the zoo's when built)."""
    from mi_assert import load_model

    if request.param == "zoo":
        source = "tiny-gpt2"  # committed with the zoo: a missing folder fails loudly
    else:
        source = str(tiny_gpt2_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {b: load_model(source, backend=b, device="cpu") for b in BACKENDS}
