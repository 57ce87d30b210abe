import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zendeploy.errors import StructureError
from zendeploy.space.registry import BLOCK_TYPES, list_blocks
from zendeploy.space.structure import (
    BlockSpec, feature_resolutions, format_structure, make_block, num_layers, parse_structure,
)
from zendeploy.zoo import get_zoo, list_zoo

OFFICIAL_EXAMPLE = (
    "SuperConvK3BNRELU(3,16,2,1)SuperResIDWE1K7(16,40,2,40,1)SuperResIDWE4K7(40,64,2,40,2)"
    "SuperConvK1BNRELU(64,2048,1,1)"
)


def test_parse_official_example():
    blocks = parse_structure(OFFICIAL_EXAMPLE)
    assert [b.name for b in blocks] == ["SuperConvK3BNRELU", "SuperResIDWE1K7", "SuperResIDWE4K7", "SuperConvK1BNRELU"]
    assert blocks[1] == BlockSpec("SuperResIDWE1K7", 16, 40, 2, 1, 40)
    assert blocks[0].bottleneck is None and blocks[0].kernel == 3
    assert blocks[2].block_type.expansion == 4
    assert format_structure(blocks) == OFFICIAL_EXAMPLE


@pytest.mark.parametrize("name", list_zoo())
def test_zoo_round_trip_exact(name):
    s = get_zoo(name).structure
    assert format_structure(parse_structure(s)) == s


def test_block_registry_has_all_official_types():
    names = set(list_blocks())
    for k in (1, 3, 5, 7):
        assert f"SuperConvK{k}BNRELU" in names
    for k in (3, 5, 7):
        assert f"SuperResK{k}K{k}" in names and f"SuperResK1K{k}K1" in names
        for e in (1, 2, 4, 6):
            assert f"SuperResIDWE{e}K{k}" in names
    assert list_blocks(include="SuperResIDWE6*") == ["SuperResIDWE6K3", "SuperResIDWE6K5", "SuperResIDWE6K7"]


def test_whitespace_tolerated_but_never_written():
    s = " SuperConvK3BNRELU( 3, 8 ,2,1 )\n SuperResK3K3(8,16,2,8,1)\n"
    assert format_structure(parse_structure(s)) == "SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(8,16,2,8,1)"


def test_hashable_specs_make_cache_keys():
    a = parse_structure(OFFICIAL_EXAMPLE)
    b = parse_structure(OFFICIAL_EXAMPLE)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(9,16,2,8,1)",
         "block 2 (SuperResK3K3) has in_channels 9 but block 1 (SuperConvK3BNRELU) outputs 8"),
        ("SuperConvK4BNRELU(3,8,2,1)", "block 1: unknown block type 'SuperConvK4BNRELU'; did you mean"),
        ("SuperResK1K5K1(3,8,2,1)", "SuperResK1K5K1 takes 5 arguments (in_channels,out_channels,stride,"
                                    "bottleneck_channels,sub_layers), got 4"),
        ("SuperConvK3BNRELU(3,8,2,1,1)", "takes 4 arguments"),
        ("SuperConvK3BNRELU(3,0,2,1)", "block 1 (SuperConvK3BNRELU): out_channels must be positive, got 0"),
        ("SuperConvK3BNRELU(3,8,2,-1)", "argument '-1' is not a non-negative integer"),
        ("SuperConvK3BNRELU(3,8,2,x)", "argument 'x' is not a non-negative integer"),
        ("SuperConvK3BNRELU(3,8,2,1", "missing ')'"),
        ("SuperConvK3BNRELU 3,8,2,1)", "expected '(' after block name"),
        ("SuperConvK3BNRELU(3,8,2,1))", "block 2 (character 27): expected a block name, found ')'"),
        ("SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(8,16,2,(8),1)", "nested '('"),
        ("SuperConvK3BNRELU(a|3,8,2,1)", "named blocks"),
        ("SuperConvK3BNRELU(3,999999,2,1)", "exceeds the supported maximum"),
        ("SuperConvK3BNRELU(3,,2,1)", "argument '<empty>'"),
    ],
)
def test_errors_are_clear_and_positioned(text, fragment):
    with pytest.raises(StructureError) as info:
        parse_structure(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_make_block_validates():
    assert str(make_block("SuperResK1K3K1", 8, 16, 2, 8, 1)) == "SuperResK1K3K1(8,16,2,8,1)"
    with pytest.raises(StructureError, match="takes 5 arguments"):
        make_block("SuperResK1K3K1", 8, 16, 2, 1)
    b = make_block("SuperConvK3BNRELU", 3, 8, 1, 1)
    with pytest.raises(StructureError, match="stride must be positive"):
        b.with_(stride=0)


def test_feature_resolutions_and_too_small_inputs():
    blocks = parse_structure(get_zoo("zennet_cifar10_model_size05M_res32").structure)
    res = feature_resolutions(blocks, 32)
    assert res[0] == 32 and min(res) >= 1
    deep = parse_structure("SuperConvK3BNRELU(3,8,2,1)SuperConvK3BNRELU(8,8,2,1)SuperConvK3BNRELU(8,8,2,1)")
    assert feature_resolutions(deep, 8) == [8, 4, 2]
    assert feature_resolutions(deep, 5) == [5, 3, 2]  # PyTorch conv arithmetic: ceil(r / stride)
    with pytest.raises(StructureError, match=r"block 3 \(SuperConvK3BNRELU, stride 2\) receives a 1x1 feature map"):
        feature_resolutions(deep, 4)
    with pytest.raises(StructureError, match="resolution must be a positive integer"):
        feature_resolutions(deep, 0)


def test_num_layers_is_sum_of_sub_layers():
    assert num_layers(parse_structure(get_zoo("zennet_imagenet1k_flops400M_SE_res224").structure)) == 14


# Property-based fuzzing: no input makes the parser raise anything but our clear error.
_names = st.sampled_from(BLOCK_TYPES.names() + ["SuperFoo", "ConvKX", "BN", "", "SuperConvK3BNRELU "])
_arg = st.one_of(st.integers(-5, 70000).map(str), st.sampled_from(["", "x", "1.5", "٣", " 3 ", "0x10", "+3"]))
_block = st.builds(lambda n, a, o, c: n + o + ",".join(a) + c, _names, st.lists(_arg, max_size=7),
                   st.sampled_from(["(", "", "(("]), st.sampled_from([")", "", "))", ");"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), st.lists(_block, min_size=1, max_size=5).map("".join)))
def test_fuzz_parser_only_raises_structure_error(text):
    try:
        blocks = parse_structure(text)
    except StructureError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert format_structure(blocks) == format_structure(parse_structure(format_structure(blocks)))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(BLOCK_TYPES.names()), st.integers(1, 512), st.integers(1, 2),
                          st.integers(1, 256), st.integers(1, 8)), min_size=1, max_size=6))
def test_fuzz_valid_structures_round_trip(specs):
    blocks, last = [], 3
    for name, out, stride, btn, sub in specs:
        args = (last, out, stride, btn, sub) if BLOCK_TYPES.get(name).has_bottleneck else (last, out, stride, sub)
        blocks.append(make_block(name, *args))
        last = out
    s = format_structure(blocks)
    assert parse_structure(s) == tuple(blocks)
    assert format_structure(parse_structure(s)) == s
