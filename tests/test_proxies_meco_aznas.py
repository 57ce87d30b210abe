"""MeCo and AZ-NAS against transcriptions of their reference code, on real torch; AZ-NAS's rank combination against
scipy's rankdata; both as ``--proxy`` of a real search (rank-combined: re-ranked, reproducible, resumable)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from zendeploy.proxies import compute_proxy, get_proxy, score_module
from zendeploy.proxies.az_nas import (
    COMPONENTS, RankCombiner, az_nas_indicators, combine_by_rank, kaiming_fanin_init_, layer_features,
)
from zendeploy.proxies.meco import meco_of
from zendeploy.proxies.tenas import default_init_
from zendeploy.search import Budgets, run_search


def _flat_net(classes: int = 10) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
        nn.Conv2d(24, 40, 1, bias=False), nn.BatchNorm2d(40), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(40, classes))


# ------------------------------------------------------------------------------------------------------ MeCo

def _meco_reference(net: nn.Module, x: torch.Tensor) -> float:
    """The authors' ``get_score`` (hooks on every module, sample 0, corrcoef, NaN/inf -> 0, min real eigenvalue of
    ``torch.linalg.eig``, summed over non-NaN terms), transcribed."""
    result_list = []

    def forward_hook(module, data_input, data_output):
        fea = data_output[0].detach()
        fea = fea.reshape(fea.shape[0], -1)
        corr = torch.corrcoef(fea)
        corr[torch.isnan(corr)] = 0
        corr[torch.isinf(corr)] = 0
        values = torch.linalg.eig(corr)[0]
        result_list.append(torch.min(torch.real(values)))

    handles = [m.register_forward_hook(forward_hook) for _, m in net.named_modules()]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    results = torch.tensor(result_list)
    return float(torch.sum(results[torch.logical_not(torch.isnan(results))]))


def test_meco_equals_the_reference_code_on_a_flat_network():
    for seed in (0, 1, 2):
        g = torch.Generator().manual_seed(seed)
        net = default_init_(_flat_net().train(), g)
        x = torch.randn((4, 3, 16, 16), generator=g)
        ours, ref = meco_of(net, x), _meco_reference(net, x)
        assert ours > 0.05  # the 16x16 and 8x8 maps have more positions than channels: a real minimum eigenvalue
        assert ours == pytest.approx(ref, abs=1e-4)


def test_meco_is_the_same_for_a_wrapped_model_and_through_every_path():
    g = torch.Generator().manual_seed(5)
    net = default_init_(_flat_net().train(), g)
    x = torch.randn((4, 3, 16, 16), generator=torch.Generator().manual_seed(6))
    wrapped = nn.Sequential(nn.Sequential(*list(net.children())[:6]), nn.Sequential(*list(net.children())[6:]))
    assert meco_of(wrapped, x) == pytest.approx(meco_of(net, x), rel=1e-9)  # leaves, not containers, count
    a = score_module(_flat_net(), "meco", resolution=16, batch_size=4, seed=2, repeats=2)
    assert a.valid and a.scores[0] != a.scores[1] and a.score > 0


# ---------------------------------------------------------------------------------------------------- AZ-NAS

def _az_reference(layer_feats: list[torch.Tensor], generator: torch.Generator) -> dict:
    """The reference ``compute_nas_score`` body (expressivity, progressivity, trainability), transcribed; its
    ``torch.bernoulli`` draws from ``generator`` so both see the same signs."""
    expressivity_scores = []
    for f in layer_feats:
        feat = f.detach().clone()
        b, c, h, w = feat.size()
        feat = feat.permute(0, 2, 3, 1).contiguous().view(b * h * w, c)
        feat = feat - feat.mean(dim=0, keepdim=True)
        sigma = torch.mm(feat.transpose(1, 0), feat) / (feat.size(0))
        s = torch.linalg.eigvalsh(sigma)
        prob_s = s / s.sum()
        expressivity_scores.append(((-prob_s) * torch.log(prob_s + 1e-8)).sum().item())
    expressivity_scores = np.array(expressivity_scores)
    scores = []
    for i in reversed(range(1, len(layer_feats))):
        f_out, f_in = layer_feats[i], layer_feats[i - 1]
        g_out = (torch.bernoulli(torch.ones_like(f_out) * 0.5, generator=generator) - 0.5) * 2
        g_in = torch.autograd.grad(outputs=f_out, inputs=f_in, grad_outputs=g_out, retain_graph=True)[0]
        if g_out.size() == g_in.size() and torch.all(g_in == g_out):
            scores.append(-np.inf)
            continue
        if g_out.size(2) != g_in.size(2) or g_out.size(3) != g_in.size(3):
            g_in = nn.PixelUnshuffle(int(g_in.size(2) / g_out.size(2)))(g_in)
        bo, co, ho, wo = g_out.size()
        bi, ci, hi, wi = g_in.size()
        g_out = g_out.permute(0, 2, 3, 1).contiguous().view(bo * ho * wo, co)
        g_in = g_in.permute(0, 2, 3, 1).contiguous().view(bi * hi * wi, ci)
        mat = torch.mm(g_in.transpose(1, 0), g_out) / (bo * ho * wo)
        if mat.size(0) < mat.size(1):
            mat = mat.transpose(0, 1)
        s = torch.linalg.svdvals(mat)
        scores.append(-s.max().item() - 1 / (s.max().item() + 1e-6) + 2)
    return {"expressivity": float(np.sum(expressivity_scores)),
            "progressivity": float(np.min(expressivity_scores[1:] - expressivity_scores[:-1])),
            "trainability": float(np.mean(scores))}


def test_az_nas_indicators_equal_the_reference_code():
    for seed in (0, 1):
        g = torch.Generator().manual_seed(seed)
        net = kaiming_fanin_init_(_flat_net().train(), g)
        x = torch.randn((8, 3, 16, 16), generator=g)
        state = g.get_state()
        ours = az_nas_indicators(net, x, g, macs=123)
        g2 = torch.Generator()
        g2.set_state(state)
        ref = _az_reference(layer_features(net, x), g2)
        assert ours["complexity"] == 123
        for k in ("expressivity", "progressivity", "trainability"):
            assert ours[k] == pytest.approx(ref[k], rel=1e-4, abs=1e-5), k
        assert ours["trainability"] < 0  # 2 - s - 1/s <= 0


def test_az_nas_small_maps_take_the_reduced_forms_with_the_same_values():
    """Fewer positions than channels (B*H*W < C): the entropy from the n x n Gram matrix and the largest singular
    value from the QR-reduced n x n core equal the C x C covariance and the full matrix's."""
    from zendeploy.proxies.az_nas import expressivity_entropy, trainability_term

    g = torch.Generator().manual_seed(0)
    f = torch.randn((2, 48, 2, 2), generator=g, dtype=torch.float64)  # n = 8 positions, 48 channels
    x = f.permute(0, 2, 3, 1).reshape(8, 48)
    x = x - x.mean(dim=0, keepdim=True)
    s = torch.linalg.eigvalsh(x.T @ x / 8).clamp_min(0)
    p = s / s.sum()
    assert expressivity_entropy(f) == pytest.approx(float(torch.sum(-p * torch.log(p + 1e-8))), rel=1e-9)
    f_in = torch.randn((2, 40, 4, 4), generator=g, requires_grad=True)
    w = torch.randn((56, 40, 3, 3), generator=g)
    f_out = torch.relu(nn.functional.conv2d(f_in, w, stride=2, padding=1))  # n = 2*2*2 = 8 < 160, 56
    state = g.get_state()
    ours = trainability_term(f_in, f_out, g)
    g.set_state(state)
    g_out = (torch.bernoulli(torch.full_like(f_out, 0.5), generator=g) - 0.5) * 2
    g_in = nn.functional.pixel_unshuffle(torch.autograd.grad(f_out, f_in, g_out)[0], 2)
    mat = g_in.permute(0, 2, 3, 1).reshape(8, -1).T @ g_out.permute(0, 2, 3, 1).reshape(8, -1) / 8
    sigma = float(torch.linalg.svdvals(mat).max())
    assert ours == pytest.approx(2 - sigma - 1 / (sigma + 1e-6), rel=1e-4)


def test_az_nas_on_a_structure_sees_its_residual_network():
    r = compute_proxy("az-nas", "zennet_cifar10_model_size05M_res32", batch_size=4)
    assert r.valid and r.score == 0.0 and set(r.components) == set(COMPONENTS)
    assert all(math.isfinite(v) for v in r.components.values())
    assert r.components["complexity"] == pytest.approx(136e6, rel=0.01)  # MACs of the deployed net
    assert get_proxy("az-nas").combine == "rank"


def test_rank_combination_equals_rankdata():
    rng = np.random.default_rng(0)
    sets = [{k: float(rng.integers(0, 6)) for k in COMPONENTS} for _ in range(40)]  # ties on purpose
    sets[3]["trainability"] = -math.inf
    ours = combine_by_rank(sets)
    ref = sum(np.log(scipy.stats.rankdata([s[k] for s in sets]) / len(sets)) for k in COMPONENTS)
    assert ours == pytest.approx(list(ref), rel=1e-12)
    c = RankCombiner()
    assert c.score(sets[0]) == 0.0  # nothing to rank against


# ------------------------------------------------------------------------------------------- in the search

KW = dict(resolution=32, population=6, iterations=18, batch_size=4, seed=1, num_classes=10)
BUDGET = Budgets.parse(params="150K", layers=12)


@pytest.mark.fault
def test_az_nas_search_reranks_reproduces_and_resumes(tmp_path):
    a = run_search("resnet", BUDGET, proxy="az-nas", out_dir=tmp_path / "a", **KW)
    b = run_search("resnet", BUDGET, proxy="az-nas", **KW)
    assert [(c.structure, c.score) for c in a.population] == [(c.structure, c.score) for c in b.population]
    # every candidate's final score is its rank combination over all candidates scored
    ckpt = json.loads((tmp_path / "a" / "checkpoint.json").read_text())
    scored = {s: e for s, e in ckpt["scores"].items() if e["valid"]}
    combined = dict(zip(scored, combine_by_rank([e["components"] for e in scored.values()])))
    assert all(c.score == pytest.approx(combined[c.structure]) for c in a.population)
    assert a.best.score == max(combined[s] for s in {c.structure for c in a.population})
    # interrupted at its 9th step (the checkpoint then holds the state before it), then resumed: the same population
    steps = []

    def interrupt(p):
        steps.append(p.iteration)
        if len(steps) == 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search("resnet", BUDGET, proxy="az-nas", out_dir=tmp_path / "c", progress=interrupt,
                   checkpoint_every=0.0, **KW)
    c = run_search("resnet", BUDGET, proxy="az-nas", out_dir=tmp_path / "c", resume=True, **KW)
    assert c.resumed
    assert [(x.structure, x.score) for x in c.population] == [(x.structure, x.score) for x in a.population]


def test_meco_drives_a_search_from_the_cli(tmp_path):
    from typer.testing import CliRunner

    from zendeploy.cli.app import app

    out = tmp_path / "meco"
    res = CliRunner().invoke(app, ["search", "--space", "resnet", "--params", "150K", "--max-layers", "12", "--res", "32",
                                   "--num-classes", "10", "--population", "6", "--iterations", "10", "--batch-size",
                                   "4", "--proxy", "meco", "-o", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["proxy"] == "meco" and report["best"]["score"] > 0
    res = CliRunner().invoke(app, ["score", "--zoo", "zennet_cifar10_model_size05M_res32", "--proxy", "az-nas",
                                   "--batch-size", "4"])
    assert res.exit_code == 0 and "az-nas indicators: expressivity" in res.output
