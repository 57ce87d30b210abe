"""zendeploy.weights: state_dict files in, strict checks, safe loading, round trips."""

from __future__ import annotations

import pickle
import sys

import pytest
import torch

from zendeploy import build_model
from zendeploy.errors import MissingExtraError, ZenDeployError
from zendeploy.weights import WeightsError, load_weights, read_state_dict, save_weights


@pytest.fixture()
def net():
    torch.manual_seed(1)
    model = build_model("test_tiny_resnet")
    with torch.no_grad():  # non-default BN statistics, so a load that skipped buffers would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    return model.eval()


def _same(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


@pytest.mark.parametrize("suffix", [".safetensors", ".pth", ".pt"])
def test_round_trip(net, tmp_path, suffix):
    path = save_weights(net, tmp_path / f"w{suffix}")
    assert path.is_file() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    fresh = build_model("test_tiny_resnet").eval()
    load_weights(fresh, path)
    _same(net, fresh)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(net(x), fresh(x))


def test_safetensors_header_has_structure(net, tmp_path):
    from safetensors import safe_open

    path = save_weights(net, tmp_path / "w.safetensors", metadata={"note": "x"})
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["structure"] == net.structure and meta["note"] == "x"


@pytest.mark.parametrize("wrap", ["state_dict", "model", "model_state_dict", "ddp"])
def test_checkpoint_layouts(net, tmp_path, wrap):
    state = net.state_dict()
    obj = {f"module.{k}": v for k, v in state.items()} if wrap == "ddp" else {wrap: state, "epoch": 3}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    fresh = build_model("test_tiny_resnet")
    load_weights(fresh, path)
    _same(net, fresh)


def test_missing_num_batches_tracked_is_tolerated(net, tmp_path):
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "w.pth")
    load_weights(build_model("test_tiny_resnet"), tmp_path / "w.pth")


def test_shape_mismatch_names_the_keys(tmp_path):
    from zendeploy.zoo import get_zoo

    save_weights(build_model(get_zoo("test_tiny_resnet").structure, num_classes=7), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError) as err:
        load_weights(build_model("test_tiny_resnet"), tmp_path / "w.safetensors")
    msg = str(err.value)
    assert "shape mismatch" in msg and "head.fc.weight: file (7, 64) vs model (10, 64)" in msg
    assert "\n" not in msg


def test_missing_and_unexpected_keys_listed(net, tmp_path):
    state = dict(net.state_dict())
    dropped = sorted(k for k in state if not k.endswith("num_batches_tracked"))[:5]
    for k in dropped:
        del state[k]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(WeightsError) as err:
        load_weights(build_model("test_tiny_resnet"), tmp_path / "w.pth")
    msg = str(err.value)
    assert "missing keys" in msg and dropped[0] in msg and "(+2)" in msg  # 5 missing: 3 shown, "+2" more
    assert "1 unexpected keys (extra.weight)" in msg
    assert "\n" not in msg


def test_other_structure_is_refused(tmp_path):
    save_weights(build_model("test_tiny_mobilenet"), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="does not match the model"):
        load_weights(build_model("test_tiny_resnet"), tmp_path / "w.safetensors")


class Gadget:  # a class only a full unpickler could rebuild
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_objects_are_not_unpickled(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"state_dict": {"w": torch.zeros(1)}, "gadget": Gadget()}, f)
    with pytest.raises(WeightsError, match="will not unpickle arbitrary objects"):
        read_state_dict(path)
    assert "must never run" not in capsys.readouterr().out


def test_whole_module_checkpoint_is_refused(net, tmp_path):
    torch.save(net, tmp_path / "model.pth")  # a pickled nn.Module, not a state_dict
    expected = r"holds Python objects \(zendeploy\.builder\.ZenNet\).*will not unpickle arbitrary"
    with pytest.raises(WeightsError, match=expected):
        load_weights(build_model("test_tiny_resnet"), tmp_path / "model.pth")


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_corrupt_files(tmp_path, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(b"\x00not a weights file at all" * 10)
    with pytest.raises(WeightsError, match="cannot read") as err:
        read_state_dict(path)
    assert "\n" not in str(err.value)


def test_truncated_safetensors(net, tmp_path):
    path = save_weights(net, tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(WeightsError, match="cannot read safetensors"):
        read_state_dict(path)


def test_not_a_state_dict(tmp_path):
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(WeightsError, match="not a state_dict"):
        read_state_dict(tmp_path / "list.pth")
    torch.save({"epoch": 3, "lr": 0.1}, tmp_path / "meta.pth")
    with pytest.raises(WeightsError, match="not a state_dict"):
        read_state_dict(tmp_path / "meta.pth")


def test_bad_paths(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pth")
    with pytest.raises(WeightsError, match="unknown suffix"):
        read_state_dict(tmp_path / "weights.onnx")
    assert issubclass(WeightsError, ZenDeployError)


def test_missing_safetensors_extra(net, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(MissingExtraError) as err:
        save_weights(net, tmp_path / "w.safetensors")
    assert 'pip install "zendeploy[weights]"' in str(err.value)
    torch.save(net.state_dict(), tmp_path / "w.pth")  # .pth needs no extra
    load_weights(build_model("test_tiny_resnet"), tmp_path / "w.pth")
