"""Zero-shot proxies on any torch module (zendeploy.proxies.score_module), against the structure path."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from fixtures.foreign_models import Exploding, NoPooling, PlainChain, TinyResNetSE
from zendeploy.builder import ZenNet
from zendeploy.cli.app import app
from zendeploy.errors import ProxyError
from zendeploy.proxies import compute_proxy, list_proxies, score_module
from zendeploy.space.structure import parse_structure

STRUCTURE = "SuperConvK3BNRELU(3,8,1,1)SuperResK3K3(8,16,2,8,1)SuperResK1K5K1(16,32,2,16,1)SuperConvK1BNRELU(32,64,1,1)"
KW = dict(resolution=16, batch_size=4, seed=3, repeats=2)


@pytest.mark.parametrize("proxy", list_proxies())
def test_every_proxy_on_our_module_equals_the_structure_path(proxy):
    blocks = parse_structure(STRUCTURE)
    # flops, params and AZ-NAS see the deployed network (with its shortcuts); the others the plain one Zen-NAS scores
    residual = proxy in ("flops", "params", "az-nas")
    model = ZenNet(blocks, num_classes=10, se=False, residual=residual)
    via_structure = compute_proxy(proxy, STRUCTURE, num_classes=10, **KW)
    via_module = score_module(model, proxy, **KW)
    assert via_module.valid and via_structure.valid
    assert via_module.score == pytest.approx(via_structure.score, rel=1e-5, abs=1e-9)
    if via_structure.components is not None:  # a rank-combined proxy: its indicators
        assert via_module.components == pytest.approx(via_structure.components, rel=1e-5)
    assert via_module.repeats == 2 and via_module.resolution == 16


def test_a_hand_written_module_scores_as_its_structure():
    # Zen-Score of the hand-written plain chain == the structure path's fast functional Zen-Score, same draws
    structure = "SuperConvK3BNRELU(3,8,1,1)SuperConvK3BNRELU(8,16,2,1)SuperConvK1BNRELU(16,32,1,1)"
    for proxy in ("zen", "gradnorm", "naswot"):
        a = compute_proxy(proxy, structure, resolution=16, batch_size=4, seed=1, num_classes=10)
        b = score_module(PlainChain(10), proxy, resolution=16, batch_size=4, seed=1)
        assert b.score == pytest.approx(a.score, rel=1e-5), proxy


def test_pre_gap_map_is_found_past_squeeze_excitation_and_dropout_is_off():
    model = TinyResNetSE()
    found = score_module(model, "zen", resolution=16, batch_size=4, seed=0, repeats=2)
    given = score_module(model, "zen", resolution=16, batch_size=4, seed=0, repeats=2,
                         feature_fn=lambda m, x: m.body(x))
    assert found.valid and found.scores == given.scores  # the last global pooling's input, not the SE's
    again = score_module(model, "gradnorm", resolution=16, batch_size=4, seed=0)
    assert again.score == score_module(model, "gradnorm", resolution=16, batch_size=4, seed=0).score  # no dropout


def test_the_callers_model_is_untouched():
    model = TinyResNetSE().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for proxy in list_proxies():
        score_module(model, proxy, resolution=16, batch_size=4)
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_models_give_one_line_or_an_invalid_result():
    res = score_module(NoPooling(), "zen", resolution=8, batch_size=4)
    assert not res.valid and "feature_fn" in res.reason and "\n" not in res.reason
    assert score_module(NoPooling(), "gradnorm", resolution=8, batch_size=4).valid  # needs no pre-GAP map
    with pytest.raises(ProxyError, match="fails on a 3-channel 16x16 input"):
        score_module(NoPooling(), "zen", resolution=16)  # its classifier expects 8x8
    with pytest.raises(ProxyError, match="fails on a 1-channel"):
        score_module(PlainChain(), "zen", resolution=16, in_channels=1)
    blown = score_module(Exploding(), "zen", resolution=16, batch_size=4)
    assert not blown.valid and math.isnan(blown.score)
    with pytest.raises(ProxyError, match="torch.nn.Module"):
        score_module("resnet18", "zen", resolution=32)


def test_cli_scores_a_module_like_a_structure(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["score", "--module", "tests/fixtures/foreign_models.py:tiny_resnet_se",
                              "--kwargs", '{"num_classes": 5}', "--res", "16", "--batch-size", "4", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["valid"] and out["module"].endswith(":tiny_resnet_se")
    expected = score_module(TinyResNetSE(5), "zen", resolution=16, batch_size=4)
    assert out["score"] == pytest.approx(expected.score)
    res = runner.invoke(app, ["proxies", "--module", "tests/fixtures/foreign_models.py:plain_chain", "--res", "16",
                              "--batch-size", "4", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["proxy"] for r in json.loads(res.output)["results"]] == list_proxies()
    for args, message in ((["--module", "nosuchpkg.mod:f", "--res", "16"], "cannot import 'nosuchpkg.mod'"),
                          (["--module", "tests/fixtures/foreign_models.py:nope", "--res", "16"], "has no 'nope'"),
                          (["--module", "tests/fixtures/foreign_models.py:plain_chain"], "--res is required"),
                          (["--module", "tests/fixtures/foreign_models.py:plain_chain", "--res", "16", "--kwargs",
                            "{bad"], "--kwargs is not valid JSON")):
        res = runner.invoke(app, ["score", *args])
        assert res.exit_code == 1 and message in res.output, res.output
        assert "Traceback" not in res.output


def test_cli_torchvision_name_needs_torchvision():
    res = CliRunner().invoke(app, ["score", "--module", "resnet18", "--res", "32", "--batch-size", "4", "--json"])
    try:
        import torchvision.models  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed (or a build that does not match torch): the one line says so
        assert res.exit_code == 1 and "needs torchvision" in res.output, res.output
        return
    assert res.exit_code == 0 and json.loads(res.output)["valid"], res.output
