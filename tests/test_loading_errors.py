"""load_model: unknown keyword arguments, and hub names that cannot be reached."""

from __future__ import annotations

import types

import pytest

from mi_assert import loading
from mi_assert.errors import MiAssertInputError, ModelUnavailableError

HUB_NAME = "nobody/no-such-model-xyz"


# ----- keyword arguments -------------------------------------------------------------------------
@pytest.mark.parametrize("spec, kwargs, expected", [
    ("planted-induction", {"foo": 1}, r"'foo' for zoo model 'planted-induction' \(planted\)\. "
                                      r"Extra keywords allowed: d_vocab, n_ctx, offset, strength, noise"),
    ("planted-induction", {"nois": 0.1}, "Did you mean 'noise'?"),
    ("attn-only-2l-induction", {"foo": 1}, r"\(trained\)\. Extra keywords allowed: none"),
    ("ioi-small", {"dtyp": "fp16"}, "Did you mean 'dtype'?.*load_model's own: backend, device, dtype"),
    ("tiny-gpt2", {"flash": True}, "allowed: device_map, n_devices, max_memory, revision"),
    ("gpt2", {"revison": "main"}, "for a Hugging Face model. Did you mean 'revision'?"),
])
def test_unknown_keyword_arguments_name_the_allowed_ones(monkeypatch, spec, kwargs, expected):
    from mi_assert.backends import hf_loading

    # refused before any loading, and before asking the hub
    monkeypatch.setattr(loading, "refuse_unreachable_hub", _must_not_load, raising=False)
    monkeypatch.setattr(hf_loading, "load_hf", _must_not_load)
    with pytest.raises(MiAssertInputError, match=expected):
        loading.load_model(spec, device="cpu", **kwargs)


def _must_not_load(*args, **kwargs):
    raise AssertionError("a loader ran")


def test_a_planted_builder_option_still_reaches_the_builder():
    handle = loading.load_model("planted-induction@s0", device="cpu", noise=0.0)
    assert handle.load_kwargs["noise"] == 0.0


def test_a_model_object_is_not_a_name():
    with pytest.raises(MiAssertInputError, match=r"name or path \(a str or Path\); got int.*as_handle"):
        loading.load_model(123)


# ----- unreachable hub ---------------------------------------------------------------------------
@pytest.fixture
def online_by_default(monkeypatch):
    """No offline flag set, whatever the machine's environment says."""
    import huggingface_hub.constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def test_unreachable_hub_fails_at_once_without_the_slow_loader(monkeypatch, online_by_default):
    import socket

    from mi_assert.backends import hf_loading

    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    connects: list[tuple[str, int]] = []

    def no_network(address, timeout=None):
        connects.append(address)
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(hf_loading, "load_hf", _must_not_load)  # the slow path (hub retries)
    with pytest.raises(ModelUnavailableError) as err:
        loading.load_model(HUB_NAME, device="cpu")
    message = str(err.value)
    assert connects == [loading.hub_address()]  # one quick probe of the hub host
    assert f"model {HUB_NAME!r} could not be loaded" in message
    assert "not in the local Hugging Face cache and the hub is unreachable" in message
    assert "set HF_HUB_OFFLINE=1 to make this check instant" in message
    assert "Zoo models work offline: attn-only-2l-induction" in message


def test_declared_offline_skips_the_probe(monkeypatch, online_by_default):
    from mi_assert.backends import hf_loading

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(loading, "hub_reachable", _must_not_load)
    monkeypatch.setattr(hf_loading, "load_hf", _must_not_load)
    with pytest.raises(ModelUnavailableError, match=r"hub is unreachable \(HF_HUB_OFFLINE is set\)"):
        loading.load_model(HUB_NAME, device="cpu", backend="nnsight")


def test_a_cached_model_still_loads_when_the_hub_is_unreachable(monkeypatch, online_by_default):
    from mi_assert.backends import hf_loading

    loaded = types.SimpleNamespace(backend="nnsight")
    monkeypatch.setattr(loading, "hub_reachable", lambda timeout=1.5: False)
    monkeypatch.setattr(loading, "in_hub_cache", lambda name, backend, revision=None: True)
    monkeypatch.setattr(hf_loading, "load_hf", lambda *args: loaded)
    assert loading.load_model(HUB_NAME, device="cpu", backend="nnsight") is loaded


def test_a_reachable_hub_goes_to_the_hub_client(monkeypatch, online_by_default):
    from mi_assert.backends import hf_loading

    calls: list[str] = []
    monkeypatch.setattr(loading, "hub_reachable", lambda timeout=1.5: True)
    monkeypatch.setattr(hf_loading, "load_hf", lambda name, *args: calls.append(name) or types.SimpleNamespace(backend="nnsight"))
    loading.load_model(HUB_NAME, device="cpu", backend="nnsight")
    assert calls == [HUB_NAME]


def test_probe_reads_a_failed_connect_as_unreachable(monkeypatch):
    import socket

    for name in loading._PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def refuse(address, timeout):
        assert address == loading.hub_address() and timeout == 0.2
        raise OSError("no route to host")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert loading.hub_reachable(timeout=0.2) is False
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout: types.SimpleNamespace(close=lambda: None))
    assert loading.hub_reachable(timeout=0.2) is True


def test_probe_trusts_a_proxy(monkeypatch):
    import socket

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setattr(socket, "create_connection", _must_not_load)
    assert loading.hub_reachable() is True
