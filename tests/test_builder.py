import pytest
import torch
from torch import nn

from zendeploy.builder import build_model, resolve
from zendeploy.errors import RegistryError, StructureError
from zendeploy.space.blocks import ResidualUnit, SqueezeExcite
from zendeploy.space.registry import BLOCK_TYPES
from zendeploy.space.structure import make_block
from zendeploy.space.units import block_units, smart_round


@pytest.mark.parametrize("name", BLOCK_TYPES.names())
@pytest.mark.parametrize("stride", [1, 2])
def test_every_block_type_and_stride_builds_with_right_shapes(name, stride):
    btype = BLOCK_TYPES.get(name)
    args = (16, 24, stride, 8, 2) if btype.has_bottleneck else (16, 24, stride, 2)
    stem = make_block("SuperConvK3BNRELU", 3, 16, 1, 1)
    model = build_model([stem, make_block(name, *args)], num_classes=5).eval()
    x = torch.randn(2, 3, 9, 9)
    with torch.no_grad():
        feats = model.forward_pre_gap(x)
        logits = model(x)
    side = 9 if stride == 1 else 5  # ceil(9 / 2)
    assert feats.shape == (2, 24, side, side)
    assert logits.shape == (2, 5)


def test_official_unit_semantics():
    idw = make_block("SuperResIDWE6K5", 16, 40, 2, 24, 2)
    units = block_units(idw, se=True, residual=True)
    assert len(units) == 4  # two inverted units per sub-layer
    first, second, third, fourth = units
    assert (first.in_channels, first.mid_channels, first.out_channels, first.stride) == (16, smart_round(24 * 6, 8), 24, 2)
    assert first.shortcut == "proj" and second.shortcut == "proj"  # 24 -> 40 changes shape
    assert (second.in_channels, second.mid_channels, second.out_channels) == (24, 240, 40)
    assert third.shortcut == "proj" and fourth.shortcut == "proj"  # 40 -> 24 -> 40
    assert all(u.se for u in units)
    # First unit of a SuperRes block projects even when shapes match (official ResBlockProj); later units don't.
    k1 = block_units(make_block("SuperResK1K3K1", 32, 32, 1, 8, 2))
    assert [u.shortcut for u in k1] == ["proj", "identity", "identity", "identity"]
    conv = block_units(make_block("SuperConvK3BNRELU", 3, 8, 2, 3), se=True)
    assert [(u.in_channels, u.stride, u.se, u.shortcut) for u in conv] == [(3, 2, False, "none"), (8, 1, False, "none"),
                                                                           (8, 1, False, "none")]
    assert [u.shortcut for u in block_units(make_block("SuperResK1K3K1", 32, 32, 1, 8, 2), residual=False)] == ["none"] * 4


def test_residual_and_se_options_change_modules():
    s = "SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,2,8,1)"
    plain = build_model(s, residual=False)
    full = build_model(s, se=True)
    assert not any(m.shortcut is not None or m.add_identity for m in plain.modules() if isinstance(m, ResidualUnit))
    assert sum(isinstance(m, SqueezeExcite) for m in full.modules()) == 2
    assert all(m.eps == 1e-3 and m.momentum == 0.1 for m in full.modules() if isinstance(m, nn.BatchNorm2d))
    proj = next(m for m in full.modules() if isinstance(m, ResidualUnit)).shortcut
    assert proj[0].bias is not None  # official projection conv has a bias


def test_zoo_entry_settings_and_contradictions():
    model = build_model("zennet_imagenet1k_flops400M_SE_res224")
    assert model.se and model.num_classes == 1000
    assert build_model("test_tiny_resnet").num_classes == 10
    with pytest.raises(StructureError, match="has se=True; it cannot be built with se=False"):
        build_model("zennet_imagenet1k_flops400M_SE_res224", se=False)
    with pytest.raises(StructureError, match="num_classes=10; it cannot be built with num_classes=100"):
        build_model("zennet_cifar10_model_size05M_res32", num_classes=100)
    r = resolve("zennet_cifar10_model_size05M_res32")
    assert r.resolution == 32 and r.zoo_name == "zennet_cifar10_model_size05M_res32"


def test_unknown_inputs_are_refused_with_hints():
    with pytest.raises(RegistryError, match="did you mean 'test_tiny_resnet'"):
        build_model("test_tiny_resnt")
    with pytest.raises(StructureError, match="looks like a file path"):
        build_model("runs/x/best_structure.txt")
    with pytest.raises(StructureError, match="num_classes must be positive"):
        build_model("SuperConvK3BNRELU(3,8,1,1)", num_classes=0)


def test_model_builds_on_meta_free_default_and_trains_one_step():
    model = build_model("test_tiny_mobilenet")
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
