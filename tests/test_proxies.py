"""Zero-shot proxies: every proxy runs, determinism, Zen-Score fast == reference, hand-checked BN semantics,
invalid numerics, bad options, and the official semantics of the baseline proxies on tiny networks."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from zendeploy.builder import ZenNet, resolve
from zendeploy.errors import ProxyError, RegistryError, ZenDeployError
from zendeploy.proxies import PROXIES, compute_proxy, get_proxy, list_proxies, register_proxy
from zendeploy.proxies.base import repeat_generator
from zendeploy.proxies.gradnorm import build_plain_model, gaussian_init_
from zendeploy.proxies.naswot import activation_kernel
from zendeploy.proxies.tenas import default_init_, linear_region_count, ntk_condition_number, per_sample_weight_gradients
from zendeploy.proxies.zen import zen_score_fast, zen_score_reference

TINY = ("test_tiny_resnet", "test_tiny_mobilenet")
DATA_PROXIES = [n for n in list_proxies() if get_proxy(n).uses_data]

# Small structures covering every block family (conv, basic incl. mixed kernels, bottleneck, inverted) and strides.
FAMILIES = {
    "conv": "SuperConvK3BNRELU(3,8,1,1)SuperConvK5BNRELU(8,8,2,2)SuperConvK7BNRELU(8,16,1,1)SuperConvK1BNRELU(16,32,1,1)",
    "basic": "SuperConvK3BNRELU(3,8,2,1)SuperResK3K3(8,16,2,8,2)SuperResK5K5(16,16,1,8,1)SuperResK7K7(16,24,2,16,1)"
             "SuperResK3K5(24,24,1,8,1)",
    "bottleneck": "SuperConvK3BNRELU(3,8,1,1)SuperResK1K3K1(8,16,2,8,1)SuperResK1K5K1(16,16,1,8,2)"
                  "SuperResK1K7K1(16,24,2,8,1)",
    "inverted": "SuperConvK3BNRELU(3,8,2,1)SuperResIDWE1K3(8,16,2,8,1)SuperResIDWE2K5(16,16,1,8,1)"
                "SuperResIDWE4K7(16,24,2,16,1)SuperResIDWE6K3(24,24,1,8,1)",
}


# --------------------------------------------------------------------------------------------- every proxy runs


@pytest.mark.parametrize("batch_size", [4, 16])
@pytest.mark.parametrize("net", TINY)
@pytest.mark.parametrize("proxy", list_proxies())
def test_every_proxy_gives_a_finite_score_on_tiny_nets(proxy, net, batch_size):
    r = compute_proxy(proxy, net, resolution=32, batch_size=batch_size, seed=1)
    assert r.valid, r.reason
    assert math.isfinite(r.score) and r.scores == [r.score]
    assert (r.proxy, r.resolution, r.batch_size, r.repeats) == (proxy, 32, batch_size, 1)


@pytest.mark.parametrize("proxy", ["gradnorm", "synflow", "naswot", "tenas"])
def test_baseline_proxies_registered_with_reference_and_description(proxy):
    spec = get_proxy(proxy)
    assert spec.uses_data and spec.description and "Zen-NAS" in spec.reference
    doc = importlib.import_module(spec.fn.__module__).__doc__
    assert "ICCV 2021" in doc and "idstcv/ZenNAS" in doc and "ZeroShotProxy/compute_" in doc


@pytest.mark.parametrize("proxy", ["zen", "gradnorm", "synflow", "naswot", "tenas", "meco", "az-nas", "random"])
def test_proxies_draw_all_randomness_from_the_generator(proxy):
    torch.manual_seed(123)
    state = torch.get_rng_state()
    compute_proxy(proxy, "test_tiny_mobilenet", batch_size=4)
    assert torch.equal(torch.get_rng_state(), state), f"{proxy} used the global torch RNG"


# ------------------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("proxy", DATA_PROXIES)
def test_same_seed_same_score_different_seed_different_score(proxy):
    if get_proxy(proxy).combine:  # ranked within a set: one network's result is its indicators
        a, b, c = (compute_proxy(proxy, "test_tiny_resnet", batch_size=4, seed=s).components for s in (3, 3, 4))
        assert a == b and a != c
        return
    a = compute_proxy(proxy, "test_tiny_resnet", batch_size=4, repeats=2, seed=3)
    b = compute_proxy(proxy, "test_tiny_resnet", batch_size=4, repeats=2, seed=3)
    c = compute_proxy(proxy, "test_tiny_resnet", batch_size=4, repeats=2, seed=4)
    assert a.scores == b.scores and a.score == b.score
    assert a.scores[0] != a.scores[1]  # repeats are different networks
    assert c.scores[0] != a.scores[0] and c.score != a.score


def test_analytic_proxies_ignore_seed_and_batch():
    for proxy in ("flops", "params"):
        a = compute_proxy(proxy, "test_tiny_resnet", batch_size=4, seed=0)
        b = compute_proxy(proxy, "test_tiny_resnet", batch_size=16, seed=9)
        assert a.score == b.score


def test_synflow_ignores_batch_size():
    a = compute_proxy("synflow", "test_tiny_mobilenet", batch_size=4, seed=2)
    b = compute_proxy("synflow", "test_tiny_mobilenet", batch_size=16, seed=2)
    assert a.score == b.score  # one all-ones image whatever the batch size (official semantics)


# --------------------------------------------------------------------------------- Zen-Score: fast == reference


@pytest.mark.parametrize("structure", list(FAMILIES.values()) + list(TINY), ids=list(FAMILIES) + list(TINY))
def test_zen_fast_equals_reference(structure):
    blocks = resolve(structure).blocks
    for seed, res, batch in ((0, 32, 4), (1, 16, 8), (2, 24, 2)):
        fast = zen_score_fast(blocks, resolution=res, batch_size=batch, generator=repeat_generator(seed, 0))
        ref = zen_score_reference(blocks, resolution=res, batch_size=batch, generator=repeat_generator(seed, 0))
        assert fast == pytest.approx(ref, rel=1e-4), (seed, res, batch)


def test_zen_via_compute_proxy_is_the_fast_path_on_the_repeat_generators():
    r = compute_proxy("zen", "test_tiny_resnet", batch_size=4, repeats=3, seed=5)
    blocks = resolve("test_tiny_resnet").blocks
    expected = [zen_score_fast(blocks, resolution=32, batch_size=4, generator=repeat_generator(5, i))
                for i in range(3)]
    assert r.scores == expected
    assert r.score == pytest.approx(np.mean(expected)) and r.std == pytest.approx(np.std(expected))


def test_zen_ignores_se_and_always_builds_without_residual_links():
    # An SE zoo entry scores exactly like its structure string (no SE); the official search never uses SE for Zen.
    name = "zennet_imagenet1k_flops400M_SE_res224"
    assert resolve(name).se
    a = compute_proxy("zen", name, resolution=32, batch_size=4, seed=1)
    b = compute_proxy("zen", resolve(name).structure, resolution=32, batch_size=4, seed=1)
    assert a.scores == b.scores
    # The reference builds the plain network: same score as the official loop on a ZenNet(se=False, residual=False)
    # and a different one on the network with residual links and SE (which Zen-Score must not use).
    blocks = resolve("test_tiny_resnet").blocks

    def official_loop(se, residual):
        g = repeat_generator(0, 0)
        model = ZenNet(blocks, num_classes=10, se=se, residual=residual).train()
        x = torch.randn((4, 3, 32, 32), generator=g)
        e = torch.randn((4, 3, 32, 32), generator=g)
        with torch.no_grad():
            for m in model.body.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, generator=g)
            delta = (model.forward_pre_gap(x) - model.forward_pre_gap(x + 0.01 * e)).abs().sum((1, 2, 3)).mean()
        bn = sum(0.5 * math.log(float(m.running_var.mean())) for m in model.modules() if isinstance(m, nn.BatchNorm2d))
        return math.log(float(delta)) + bn

    ref = zen_score_reference(blocks, resolution=32, batch_size=4, generator=repeat_generator(0, 0), num_classes=10)
    assert ref == pytest.approx(official_loop(se=False, residual=False), rel=1e-6)
    assert abs(official_loop(se=True, residual=True) - ref) > 1e-2


# ------------------------------------------------------------------------ Zen-Score: the running_var semantics


def _numpy_zen_chain(x, e, weights, gamma=1e-2, eps=1e-3):
    """Zen-Score of a chain of single-channel 1x1 conv -> train-mode BN -> ReLU layers, by hand, in float64.

    Returns (score, BN term with running_var, BN term with the clean batch's (biased) variance instead)."""
    clean, mixed = x, x + gamma * e
    bn_running, bn_batch = 0.0, 0.0
    for w in weights:
        out = []
        running_var = 1.0
        for h in (clean, mixed):  # clean forward first, then the perturbed one, as the official code
            pre = w * h
            mean, var_biased, var_unbiased = pre.mean(), pre.var(ddof=0), pre.var(ddof=1)
            running_var = 0.9 * running_var + 0.1 * var_unbiased
            out.append(np.maximum((pre - mean) / np.sqrt(var_biased + eps), 0.0))
        v1 = (w * clean).var(ddof=1)
        v2 = (w * mixed).var(ddof=1)
        assert running_var == pytest.approx(0.81 + 0.09 * v1 + 0.1 * v2, rel=1e-12)
        bn_running += 0.5 * math.log(0.81 + 0.09 * v1 + 0.1 * v2)
        bn_batch += 0.5 * math.log((w * clean).var(ddof=0))
        clean, mixed = out
    delta = np.abs(clean - mixed).sum(axis=(1, 2, 3)).mean()
    return math.log(delta) + bn_running, bn_running, bn_batch


@pytest.mark.parametrize("layers", [1, 2])
def test_zen_bn_term_is_half_log_of_running_var_after_both_forwards(layers):
    structure = f"SuperConvK1BNRELU(1,1,1,{layers})"
    batch, res, seed = 3, 3, 7
    g = repeat_generator(seed, 0)  # the fast path draws x, then e, then the conv weights in forward order
    x = torch.randn((batch, 1, res, res), generator=g).double().numpy()
    e = torch.randn((batch, 1, res, res), generator=g).double().numpy()
    weights = [float(torch.randn((1, 1, 1, 1), generator=g)) for _ in range(layers)]
    expected, bn_running, bn_batch = _numpy_zen_chain(x, e, weights)

    ours = compute_proxy("zen", structure, resolution=res, batch_size=batch, seed=seed, num_classes=1).score
    assert ours == pytest.approx(expected, rel=1e-5, abs=1e-5)
    ref = zen_score_reference(resolve(structure).blocks, resolution=res, batch_size=batch,
                              generator=repeat_generator(seed, 0), num_classes=1)
    assert ref == pytest.approx(expected, rel=1e-5, abs=1e-5)
    # Using the batch variance instead of running_var (0.81 + 0.09 v1 + 0.1 v2, unbiased) is a different score.
    assert abs((expected - bn_running + bn_batch) - ours) > 1e-2


def test_zen_running_var_uses_unbiased_batch_variances():
    # With 4 values per channel the unbiased and biased variances differ by 4/3: only the unbiased one matches.
    x = torch.tensor([[[[1.0, -2.0], [0.5, 3.0]]]])
    running_mean, running_var = torch.zeros(1), torch.ones(1)
    F.batch_norm(x, running_mean, running_var, None, None, True, 0.1, 1e-3)
    v = x.flatten().numpy().astype(np.float64)
    assert float(running_var) == pytest.approx(0.9 + 0.1 * v.var(ddof=1), rel=1e-6)
    assert float(running_var) != pytest.approx(0.9 + 0.1 * v.var(ddof=0), rel=1e-3)


# -------------------------------------------------------------------------------------------- invalid numerics


@pytest.fixture
def temporary_proxy():
    added = []

    def add(name, fn):
        register_proxy(name, description="test", reference="test")(fn)
        added.append(name)

    yield add
    for name in added:
        PROXIES._items.pop(name, None)


def test_non_finite_score_is_invalid_with_a_reason(temporary_proxy):
    temporary_proxy("_test_inf", lambda blocks, **_: math.inf)
    r = compute_proxy("_test_inf", "test_tiny_resnet", repeats=3)
    assert not r.valid and math.isnan(r.score) and math.isnan(r.std)
    assert "non-finite" in r.reason and r.repeats == 1  # stops at the first bad repeat

    def raises(blocks, **_):
        raise FloatingPointError("overflow in layer 7")

    temporary_proxy("_test_fpe", raises)
    r = compute_proxy("_test_fpe", "test_tiny_resnet")
    assert not r.valid and r.reason == "overflow in layer 7"


def test_singular_ntk_is_invalid_not_a_huge_number():
    # 5 weights (conv 3, BN 1, classifier 1) and a batch of 8: the NTK has rank <= 5, its condition number is infinite.
    r = compute_proxy("tenas", "SuperConvK1BNRELU(3,1,1,1)", resolution=8, batch_size=8, num_classes=1)
    assert not r.valid and r.reason and math.isnan(r.score)


def test_singular_naswot_kernel_is_invalid():
    # One ReLU unit: only two activation patterns exist, so 4 samples repeat one and K is singular (log det = -inf).
    r = compute_proxy("naswot", "SuperConvK1BNRELU(3,1,1,1)", resolution=1, batch_size=4, num_classes=1)
    assert not r.valid and math.isnan(r.score)


# ---------------------------------------------------------------------------------------------------- bad options


def test_bad_options_raise_clear_zendeploy_errors():
    with pytest.raises(ProxyError, match="zen needs a batch size of at least 2, got 1"):
        compute_proxy("zen", "test_tiny_resnet", batch_size=1)
    for proxy in ("gradnorm", "naswot", "tenas"):
        with pytest.raises(ProxyError, match=f"{proxy} needs a batch size of at least 2"):
            compute_proxy(proxy, "test_tiny_resnet", batch_size=1)
    with pytest.raises(ProxyError, match="repeats must be positive, got 0"):
        compute_proxy("zen", "test_tiny_resnet", repeats=0)
    with pytest.raises(ProxyError, match="batch size must be positive"):
        compute_proxy("zen", "test_tiny_resnet", batch_size=0)
    with pytest.raises(RegistryError, match="unknown proxy 'zne'; did you mean 'zen'") as info:
        compute_proxy("zne", "test_tiny_resnet")
    assert isinstance(info.value, ZenDeployError) and "gradnorm" in str(info.value)
    with pytest.raises(RegistryError, match="did you mean 'synflow'"):
        get_proxy("synflw")
    with pytest.raises(ProxyError, match="resolution is required"):
        compute_proxy("zen", "SuperConvK3BNRELU(3,8,1,1)")


def test_synflow_refuses_a_1x1_last_feature_map_with_a_clear_error():
    with pytest.raises(ProxyError, match="synflow .* last feature map is 1x1"):
        compute_proxy("synflow", "zennet_imagenet1k_flops400M_SE_res224", resolution=32)


# ----------------------------------------------------------------- official semantics of the baselines, tiny nets


def _tiny_model(init, seed=0, num_classes=10, net="test_tiny_mobilenet"):
    blocks = resolve(net).blocks
    g = repeat_generator(seed, 0)
    return blocks, init(build_plain_model(blocks, num_classes), g), g


def test_plain_model_is_the_official_search_network():
    model = build_plain_model(resolve("test_tiny_resnet").blocks, 10)
    assert model.training and not model.se and not model.residual
    assert all(m.eps == 1e-3 and m.momentum == 0.1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    gaussian_init_(model, torch.Generator().manual_seed(0))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.running_var == 1) and torch.all(m.running_mean == 0) and torch.all(m.weight == 1)
    convs = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.Conv2d)])
    assert abs(float(convs.detach().std()) - 1.0) < 0.05  # N(0, 1), not the default init


def test_gradnorm_matches_the_official_formula():
    blocks, model, g = _tiny_model(gaussian_init_, seed=4)
    x = torch.randn((6, 3, 32, 32), generator=g)
    y = torch.randint(0, 10, (6,), generator=g)
    logits = model(x)
    loss = -(F.one_hot(y, 10).float() * F.log_softmax(logits, dim=1)).sum(dim=1).mean()  # official cross_entropy
    loss.backward()
    expected = math.sqrt(sum(float(torch.norm(p.grad)) ** 2 for p in model.parameters() if p.grad is not None))
    ours = get_proxy("gradnorm").fn(blocks, resolution=32, batch_size=6, generator=repeat_generator(4, 0),
                                    num_classes=10)
    assert ours == pytest.approx(expected, rel=1e-5)


def test_synflow_matches_the_official_formula():
    blocks, model, _ = _tiny_model(gaussian_init_, seed=2)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    model.double()
    model(torch.ones((1, 3, 32, 32), dtype=torch.float64)).sum().backward()
    expected = 0.0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            s = (m.weight * m.weight.grad).abs()
            expected += float(s.sum(dim=[1, 2, 3] if s.dim() == 4 else [1]).mean())
    ours = get_proxy("synflow").fn(blocks, resolution=32, batch_size=4, generator=repeat_generator(2, 0),
                                   num_classes=10)
    assert ours == pytest.approx(expected, rel=1e-12)


def test_naswot_kernel_matches_the_official_hook():
    _, model, g = _tiny_model(gaussian_init_, seed=1)
    x = torch.randn((5, 3, 32, 32), generator=g)
    expected = np.zeros((5, 5))

    def hook(_m, inp, _out):
        c = (inp[0].reshape(5, -1) > 0).float()
        expected[:] += (c @ c.t()).numpy() + ((1.0 - c) @ (1.0 - c.t())).numpy()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        model.forward_pre_gap(x.clone())
    for h in handles:
        h.remove()
    # (our ReLUs are in place: the official hook reads the input *after* the ReLU, whose sign pattern is the same)
    ours = activation_kernel(model, x)
    np.testing.assert_array_equal(ours.numpy(), expected)
    assert np.all(np.diag(expected) == np.diag(expected)[0])  # K_ii = number of ReLU units
    assert compute_proxy("naswot", "test_tiny_mobilenet", batch_size=5, seed=1).score == pytest.approx(
        np.linalg.slogdet(expected)[1], rel=1e-9)


def test_tenas_ntk_matches_the_official_loop():
    blocks, model, g = _tiny_model(default_init_, seed=3)
    x = torch.randn((4, 3, 32, 32), generator=g)
    logit = model(x)
    rows = []
    for i in range(4):  # official get_ntk_n: backward(ones) per sample, collect '*weight*' grads, zero_grad
        logit[i:i + 1].backward(torch.ones_like(logit[i:i + 1]), retain_graph=True)
        rows.append(torch.cat([w.grad.reshape(-1) for n, w in model.named_parameters() if "weight" in n]))
        model.zero_grad()
    ntk = torch.stack(rows).double() @ torch.stack(rows).double().T
    eig = torch.linalg.eigvalsh(ntk)
    ours = compute_proxy("tenas", "test_tiny_mobilenet", batch_size=4, seed=3).score
    assert ours == pytest.approx(-float(eig[-1] / eig[0]), rel=1e-4)
    _, model2, g2 = _tiny_model(default_init_, seed=3)
    assert ntk_condition_number(per_sample_weight_gradients(model2, torch.randn((4, 3, 32, 32), generator=g2))) \
        == pytest.approx(-ours, rel=1e-6)


def test_tenas_uses_pytorch_default_init_and_linear_regions_count_patterns():
    _, model, g = _tiny_model(default_init_, seed=0)
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    bound = 1.0 / math.sqrt(conv.weight[0].numel())  # kaiming_uniform(a=sqrt(5)) == U(-1/sqrt(fan_in), ...)
    assert float(conv.weight.abs().max()) <= bound
    x = torch.randn((6, 3, 32, 32), generator=g)
    assert linear_region_count(model, x) == 6.0  # Gaussian inputs: all patterns distinct
    assert linear_region_count(model, torch.cat([x[:3], x[:3]])) == 3.0


# ------------------------------------------------------------- tools/bench_proxies.py: the official code's column


def test_bench_proxies_times_the_official_code_as_the_search_calls_it(tmp_path):
    import subprocess
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    tools = Path(__file__).resolve().parents[1] / "tools"
    sys.path.insert(0, str(tools))
    try:
        bench_proxies = importlib.import_module("bench_proxies")
    finally:
        sys.path.remove(str(tools))
    builds = []

    def plain_net(num_classes, plainnet_struct, no_reslink, use_se):  # ZenNet/masternet.py's PlainNet signature
        builds.append((plainnet_struct, no_reslink, use_se))
        return ZenNet(resolve(plainnet_struct).blocks, num_classes=num_classes, se=use_se, residual=not no_reslink)

    def compute_nas_score(gpu, model, mixup_gamma, resolution, batch_size, repeat):  # the official signature
        assert gpu is None and repeat == 1 and mixup_gamma == 1e-2
        x = torch.randn(batch_size, 3, resolution, resolution)
        with torch.no_grad():
            d = (model.forward_pre_gap(x) - model.forward_pre_gap(x + mixup_gamma * torch.randn_like(x))).abs()
        return {"avg_nas_score": float(torch.log(d.sum((1, 2, 3)).mean()))}

    official = (SimpleNamespace(PlainNet=plain_net), SimpleNamespace(compute_nas_score=compute_nas_score))
    entry = SimpleNamespace(structure=resolve("test_tiny_resnet").structure, num_classes=10)
    score = bench_proxies.official_scorer(official, entry, 16, 2, seed=0)
    assert score(1) == score(1) != score(2)  # the global seed is set per repeat: reproducible, a fresh draw per i
    assert builds[0] == (entry.structure, True, False)  # a fresh plain network per candidate, no SE
    blocks = resolve("test_tiny_resnet").blocks
    fast, ref, off, diff = bench_proxies.bench_zen(blocks, 10, 16, 2, 2, 0, official_fn=score)
    assert fast > 0 and ref > 0 and off > 0 and diff < 1e-3
    assert len(builds) == 3 + 3  # the official code ran in the warm-up and both timed rounds
    assert bench_proxies.bench_zen(blocks, 10, 16, 2, 1, 0)[2] is None  # no checkout, no official column

    not_checkout = subprocess.run([sys.executable, str(tools / "bench_proxies.py"), "--zennas-dir", str(tmp_path),
                                   "--no-others"], capture_output=True, text=True)
    assert not_checkout.returncode == 2
    assert not_checkout.stderr.strip().splitlines() == [
        f"error: --zennas-dir {tmp_path} is not a ZenNAS checkout: missing PlainNet/__init__.py, ZenNet/masternet.py, "
        "ZeroShotProxy/compute_zen_score.py, global_utils.py"]


# ----------------------------------------------------------------------- allocator settings for scoring processes


def test_reuse_freed_memory_applies_once_can_be_refused_and_leaves_scores_alone(monkeypatch):
    import platform
    import subprocess
    import sys

    from zendeploy.proxies import allocator

    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.setenv("ZENDEPLOY_MALLOC", "system")
    assert allocator.reuse_freed_memory() is False
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.delenv("ZENDEPLOY_MALLOC")
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert allocator.reuse_freed_memory() is glibc  # mallopt accepted both settings (or not glibc: untouched)
    assert allocator.reuse_freed_memory() is glibc  # once per process

    code = ("from zendeploy.proxies.allocator import reuse_freed_memory; from zendeploy.proxies import compute_proxy; "
            "on = reuse_freed_memory(); r = compute_proxy('zen', 'test_tiny_resnet', batch_size=4, repeats=2, seed=3); "
            "print(on, repr(r.scores))")
    outs = {}
    for mode in ("", "system"):
        env = {**__import__("os").environ, "ZENDEPLOY_MALLOC": mode}
        outs[mode] = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                    check=True).stdout.split(" ", 1)
    assert outs[""][0] == str(glibc) and outs["system"][0] == "False"
    assert outs[""][1] == outs["system"][1]  # the same scores, bit for bit
