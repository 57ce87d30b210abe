"""The model zoo data: exact official structure strings, names, settings and the registry behaviour."""

from __future__ import annotations

import dataclasses

import pytest

from zendeploy.errors import RegistryError
from zendeploy.space.structure import format_structure, parse_structure, total_stride
from zendeploy.zoo import ZOO, ZooEntry, get_zoo, list_zoo

# The keys of idstcv/ZenNAS ZenNet/__init__.py zennet_model_zoo, in order, with (num_classes, use_SE, resolution).
OFFICIAL = {
    "zennet_cifar10_model_size05M_res32": (10, False, 32),
    "zennet_cifar10_model_size1M_res32": (10, False, 32),
    "zennet_cifar10_model_size2M_res32": (10, False, 32),
    "zennet_cifar100_model_size05M_res32": (100, False, 32),
    "zennet_cifar100_model_size1M_res32": (100, False, 32),
    "zennet_cifar100_model_size2M_res32": (100, False, 32),
    "zennet_imagenet1k_flops400M_SE_res224": (1000, True, 224),
    "zennet_imagenet1k_flops600M_SE_res224": (1000, True, 224),
    "zennet_imagenet1k_flops900M_SE_res224": (1000, True, 224),
    "zennet_imagenet1k_latency01ms_res224": (1000, False, 224),
    "zennet_imagenet1k_latency02ms_res224": (1000, False, 224),
    "zennet_imagenet1k_latency03ms_res224": (1000, False, 224),
    "zennet_imagenet1k_latency05ms_res224": (1000, False, 224),
    "zennet_imagenet1k_latency08ms_res224": (1000, False, 224),
    "zennet_imagenet1k_latency12ms_res224": (1000, False, 224),
}
TEST_ENTRIES = ("test_tiny_resnet", "test_tiny_mobilenet")
ALL = list_zoo()


def test_all_official_models_present_in_order():
    assert list_zoo(exclude="test_*") == list(OFFICIAL)
    assert sorted(list_zoo(include="test_*")) == sorted(TEST_ENTRIES)
    assert len(ZOO) == len(OFFICIAL) + len(TEST_ENTRIES)


def test_names_unique_and_match_records():
    assert len(ALL) == len(set(ALL))
    for name in ALL:
        assert get_zoo(name).name == name


@pytest.mark.parametrize("name", ALL)
def test_structure_parses_and_round_trips_exactly(name):
    s = get_zoo(name).structure
    assert s == s.strip() and "\n" not in s and " " not in s
    assert format_structure(parse_structure(s)) == s


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_settings_match_official_dict(name):
    e = get_zoo(name)
    assert (e.num_classes, e.se, e.resolution) == OFFICIAL[name]
    if e.dataset in ("cifar10", "cifar100"):
        assert e.resolution == 32
        assert e.num_classes == {"cifar10": 10, "cifar100": 100}[e.dataset]
        assert f"_{e.dataset}_" in name
    else:
        assert e.dataset == "imagenet1k"
        assert e.resolution == 224
        assert e.se == ("_SE_" in name)
    assert e.source.startswith("idstcv/ZenNAS ZenNet/") and e.source.endswith(".txt")


@pytest.mark.parametrize("name", list(OFFICIAL))
def test_reported_figures_present_and_positive(name):
    e = get_zoo(name)
    for v in (e.reported_top1, e.reported_params_m, e.reported_macs_m):
        assert isinstance(v, float) and v > 0
    assert 0 < e.reported_top1 < 100
    if e.dataset == "imagenet1k":
        assert set(e.reported_latency_ms) == {"v100_fp16_b64", "t4_trt_int8_b64", "pixel2_b1"}
    else:
        assert e.reported_latency_ms is None


def test_cifar10_and_cifar100_share_bodies():
    for size in ("05M", "1M", "2M"):
        a = get_zoo(f"zennet_cifar10_model_size{size}_res32")
        b = get_zoo(f"zennet_cifar100_model_size{size}_res32")
        assert a.structure == b.structure and a.source == b.source


def test_strides_and_known_structure_spot_checks():
    for name in OFFICIAL:
        blocks = parse_structure(get_zoo(name).structure)
        assert total_stride(blocks) == (8 if "cifar" in name else 32)
    assert get_zoo("zennet_imagenet1k_latency01ms_res224").structure.startswith(
        "SuperConvK3BNRELU(3,24,2,1)SuperResK3K3(24,32,2,64,1)SuperResK5K5(32,64,2,32,1)"
    )
    assert get_zoo("zennet_imagenet1k_latency05ms_res224").structure.endswith("SuperConvK1BNRELU(816,5304,1,1)")


def test_test_entries():
    assert get_zoo("test_tiny_resnet").structure == (
        "SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,2,8,1)SuperResK3K3(16,24,2,16,1)SuperResK1K5K1(24,32,2,16,1)"
        "SuperConvK1BNRELU(32,64,1,1)"
    )
    assert get_zoo("test_tiny_mobilenet").structure == (
        "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE2K3(8,16,2,8,1)SuperResIDWE4K5(16,24,2,16,1)"
        "SuperResIDWE6K7(24,32,1,16,1)SuperConvK1BNRELU(32,64,1,1)"
    )
    for name in TEST_ENTRIES:
        e = get_zoo(name)
        assert (e.dataset, e.resolution, e.num_classes, e.se) == ("test", 32, 10, False)
        assert e.source == "zendeploy test structure"
        assert e.reported_top1 is None and e.reported_latency_ms is None


def test_list_zoo_filters():
    assert list_zoo(include="*cifar10_*") == [
        "zennet_cifar10_model_size05M_res32",
        "zennet_cifar10_model_size1M_res32",
        "zennet_cifar10_model_size2M_res32",
    ]
    assert len(list_zoo(include="*cifar100_*")) == 3
    assert len(list_zoo(include="zennet_imagenet1k_*")) == 9
    assert len(list_zoo(include="*_SE_*")) == 3
    assert list_zoo(include="*latency*", exclude="*0?ms*") == ["zennet_imagenet1k_latency12ms_res224"]
    assert list_zoo(include="no_such_*") == []


def test_misspelt_name_suggests_closest():
    with pytest.raises(RegistryError) as info:
        get_zoo("zennet_imagenet1k_flops400M_res224")
    msg = str(info.value)
    assert "unknown zoo model 'zennet_imagenet1k_flops400M_res224'" in msg
    assert "did you mean 'zennet_imagenet1k_flops400M_SE_res224'" in msg


def test_records_are_frozen_plain_data():
    e = get_zoo("zennet_imagenet1k_flops400M_SE_res224")
    assert isinstance(e, ZooEntry)
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.structure = "x"  # type: ignore[misc]
    for name in ALL:
        for f in dataclasses.fields(ZooEntry):
            assert not callable(getattr(get_zoo(name), f.name))
