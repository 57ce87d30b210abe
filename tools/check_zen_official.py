#!/usr/bin/env python
"""Compare our Zen-Score with the OFFICIAL implementation (idstcv/ZenNAS), which zendeploy does not ship.

    python tools/check_zen_official.py --zennas-dir /path/to/ZenNAS [--repeats 8] [--batch-size 16]
        [--nets 'zennet_imagenet1k_*'] [--skip 'zennet_imagenet1k_latency12ms_res224@224'] [--threads 2] [--json]

For every zoo net, at its own resolution and at 32 (one row when they coincide):

- official: ``ZenNet/masternet.py`` ``PlainNet(num_classes=..., plainnet_struct=..., no_reslink=True, use_se=False)``
  (its constructor sets every BN eps to 1e-3) scored by ``ZeroShotProxy/compute_zen_score.compute_nas_score`` with
  ``repeat=1`` on a FRESHLY BUILT model per repeat, as ``evolution_search.py`` calls it (the standalone script's
  ``repeat`` loop re-initialises the weights but never resets BN ``running_var``, so its later repeats drift upward).
  The global torch seed is set before each build, so the official column is reproducible too;
- ours: ``compute_proxy('zen', ..., repeats=N)`` (mean and population std over N fresh networks, as ``np.std``);
- diff = ours - official (means), ``within 1 std``: |diff| <= the official seed-to-seed std, and
  z = diff / sqrt(std_off^2 / N + std_ours^2 / N) (|z| < 2: indistinguishable at this N);
- same draws |diff| (f32, f64): ONE repeat of both implementations on identical random numbers (our generator's x, e
  and conv weights copied into the official model, the global seed set so the official ``torch.randn`` inputs equal
  ours, the official re-initialisation skipped for that call only), once in float32 and once in float64 end to end
  (the official module then sees ``torch.float32`` as float64; its code is otherwise unchanged). The float64 column
  isolates semantic differences from noise: it is ~1e-10 or less when both compute the same function. The float32
  column is round-off, which deep plain networks at N(0, 1) initialisation amplify (our own fast path and reference
  loop differ by as much on the zoo nets).

``--zennas-dir`` must point to a checkout (or a partial copy) of https://github.com/idstcv/ZenNAS containing
``PlainNet/``, ``ZenNet/masternet.py``, ``ZeroShotProxy/compute_zen_score.py`` and ``global_utils.py``. Its
``ModelLoader`` package (imported at module level by ``compute_zen_score.py``, used only by its ``__main__``) is
replaced by a stub when it cannot be imported.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json
import math
import os
import sys
import time
import types

REQUIRED = ("PlainNet/__init__.py", "ZenNet/masternet.py", "ZeroShotProxy/compute_zen_score.py", "global_utils.py")


def fail(message: str) -> "NoReturn":  # noqa: F821
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_official(zennas_dir: str):
    """(masternet module, compute_zen_score module) from a ZenNAS checkout, or a one-line error."""
    if not zennas_dir:
        fail("--zennas-dir PATH is required: a checkout of https://github.com/idstcv/ZenNAS "
             "(not shipped with zendeploy)")
    root = os.path.abspath(os.path.expanduser(zennas_dir))
    if not os.path.isdir(root):
        fail(f"--zennas-dir {zennas_dir}: no such directory (expected a checkout of https://github.com/idstcv/ZenNAS)")
    missing = [p for p in REQUIRED if not os.path.isfile(os.path.join(root, p))]
    if missing:
        fail(f"--zennas-dir {zennas_dir} is not a ZenNAS checkout: missing {', '.join(missing)}")
    sys.path.insert(0, root)
    try:
        import ModelLoader  # noqa: F401
    except Exception:  # the real one imports torchvision/geffnet models; compute_nas_score never uses it
        stub = types.ModuleType("ModelLoader")
        stub.get_model = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("ModelLoader is stubbed"))
        sys.modules["ModelLoader"] = stub
    try:
        masternet = _load_by_path("zennas_masternet", os.path.join(root, "ZenNet", "masternet.py"))
        zen = _load_by_path("zennas_compute_zen_score", os.path.join(root, "ZeroShotProxy", "compute_zen_score.py"))
    except Exception as exc:  # noqa: BLE001 - any import failure of foreign code is reported in one line
        fail(f"cannot import the official ZenNAS code from {zennas_dir}: {type(exc).__name__}: {exc}")
    for module, attr in ((masternet, "PlainNet"), (zen, "compute_nas_score"), (zen, "network_weight_gaussian_init")):
        if not hasattr(module, attr):
            fail(f"--zennas-dir {zennas_dir}: {module.__file__} has no {attr} (unexpected ZenNAS version)")
    return masternet, zen


def _load_by_path(name: str, path: str):
    # By path: importing the ZenNet package would run ZenNet/__init__.py (model zoo, downloads), which we do not need.
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def official_build(masternet, entry):
    return masternet.PlainNet(num_classes=entry.num_classes, plainnet_struct=entry.structure, no_reslink=True,
                              use_se=False)


def official_zen_score(masternet, zen, structure: str, num_classes: int, resolution: int, batch_size: int) -> float:
    """One official Zen-Score as ``evolution_search.py`` computes it per candidate: a freshly built plain network
    (running_var starts at 1) and ``compute_nas_score(repeat=1)``, drawing from torch's global generator."""
    model = masternet.PlainNet(num_classes=num_classes, plainnet_struct=structure, no_reslink=True, use_se=False)
    info = zen.compute_nas_score(gpu=None, model=model, mixup_gamma=1e-2, resolution=resolution,
                                 batch_size=batch_size, repeat=1)
    return float(info["avg_nas_score"])


def official_scores(masternet, zen, entry, resolution: int, batch_size: int, repeats: int, seed: int) -> list[float]:
    import torch

    scores = []
    for i in range(repeats):
        torch.manual_seed(10_000_019 * (seed + 1) + i)  # reproducible, and not our generators' seeds
        scores.append(official_zen_score(masternet, zen, entry.structure, entry.num_classes, resolution, batch_size))
    return scores


class _TorchWithFloat64:
    """``torch`` as seen by the official module, except that ``torch.float32`` means float64.

    The official ``compute_nas_score`` hard-codes ``dtype = torch.float32`` for its inputs; swapping the module's
    ``torch`` for this view runs the same official code end to end in float64 (with a float64 model). Nothing else
    changes.
    """

    float32 = None  # set in __init__

    def __init__(self, torch_module):
        self._torch = torch_module
        self.float32 = torch_module.float64

    def __getattr__(self, name):
        return getattr(self._torch, name)


def same_draws_pair(masternet, zen, entry, resolution: int, batch_size: int, seed: int,
                    float64: bool) -> tuple[float, float]:
    """(ours, official) on identical random numbers: one repeat each, in float32 or float64 end to end."""
    import torch
    from torch import nn

    from zendeploy.builder import resolve
    from zendeploy.proxies.base import repeat_generator
    from zendeploy.proxies.zen import zen_score_fast

    blocks = resolve(entry.name).blocks
    gen_seed = int(seed) * 1_000_003  # repeat_generator(seed, 0)
    dtype = torch.float64 if float64 else torch.float32
    previous_default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # our fast path then draws and computes in this dtype
    try:
        ours = zen_score_fast(blocks, resolution=resolution, batch_size=batch_size,
                              generator=repeat_generator(seed, 0), num_classes=entry.num_classes)
        model = official_build(masternet, entry).to(dtype)
        g = repeat_generator(seed, 0)
        shape = (batch_size, blocks[0].in_channels, resolution, resolution)
        torch.randn(shape, generator=g)  # x and e: the official function draws them from the global generator
        torch.randn(shape, generator=g)
        with torch.no_grad():
            for m in model.modules():  # module order == forward order (checked by check_same_architecture)
                if isinstance(m, nn.Conv2d):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g))
        torch.manual_seed(gen_seed)  # official torch.randn(input), torch.randn(input2) == our x, e
        original_init, original_torch = zen.network_weight_gaussian_init, zen.torch
        zen.network_weight_gaussian_init = lambda net: net  # keep the copied weights for this one call
        if float64:
            zen.torch = _TorchWithFloat64(torch)
        try:
            info = zen.compute_nas_score(gpu=None, model=model, mixup_gamma=1e-2, resolution=resolution,
                                         batch_size=batch_size, repeat=1)
        finally:
            zen.network_weight_gaussian_init, zen.torch = original_init, original_torch
    finally:
        torch.set_default_dtype(previous_default)
    return ours, float(info["avg_nas_score"])


def mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def check_same_architecture(masternet, entry) -> None:
    from torch import nn

    from zendeploy.builder import ZenNet, resolve

    def signature(model):
        return [(type(m).__name__, getattr(m, "in_channels", getattr(m, "num_features", None)),
                 getattr(m, "out_channels", None), getattr(m, "kernel_size", None), getattr(m, "stride", None),
                 getattr(m, "groups", None), getattr(m, "eps", None))
                for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]

    ours = ZenNet(resolve(entry.name).blocks, num_classes=entry.num_classes, se=False, residual=False)
    if signature(ours) != signature(official_build(masternet, entry)):
        raise SystemExit(f"error: {entry.name}: the official network's conv/BN layers differ from ours")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zennas-dir", default=None, help="checkout of https://github.com/idstcv/ZenNAS")
    parser.add_argument("--repeats", type=int, default=8, help="fresh networks per implementation (default 8)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--nets", nargs="*", default=None, help="fnmatch patterns of zoo names (default: all)")
    parser.add_argument("--skip", nargs="*", default=[], help="NAME@RES patterns to skip, e.g. '*latency12ms*@224'")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        fail("--repeats must be at least 2 (the comparison needs a seed-to-seed std)")

    masternet, zen = load_official(args.zennas_dir)

    import torch
    from rich.console import Console
    from rich.table import Table

    from zendeploy.proxies import compute_proxy
    from zendeploy.zoo import get_zoo, list_zoo

    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=None if sys.stdout.isatty() else 200)
    names = [n for n in list_zoo() if not args.nets or any(fnmatch.fnmatch(n, p) for p in args.nets)]
    if not names:
        fail(f"--nets {' '.join(args.nets)} matches no zoo entry")
    jobs, skipped = [], []
    for name in names:
        entry = get_zoo(name)
        for res in dict.fromkeys((entry.resolution, 32)):
            if any(fnmatch.fnmatch(f"{name}@{res}", p) for p in args.skip):
                skipped.append(f"{name}@{res}")
            else:
                jobs.append((entry, res))

    console.print(f"Zen-Score, official (ZenNAS compute_nas_score, repeat=1 per freshly built model) vs ours "
                  f"(compute_proxy('zen')); B={args.batch_size}, N={args.repeats} repeats each, "
                  f"{torch.get_num_threads()} torch thread(s)")
    rows = []
    table = Table(title="Zen-Score: official vs zendeploy")
    for col in ("net", "res", "official mean", "official std", "ours mean", "ours std", "diff", "within 1 std", "z",
                "same draws |diff| f32", "same draws |diff| f64", "s official", "s ours"):
        table.add_column(col, justify="left" if col == "net" else "right")
    checked = set()
    for entry, res in jobs:
        if entry.name not in checked:
            check_same_architecture(masternet, entry)
            checked.add(entry.name)
        t0 = time.perf_counter()
        off = official_scores(masternet, zen, entry, res, args.batch_size, args.repeats, args.seed)
        t_off = time.perf_counter() - t0
        ours = compute_proxy("zen", entry.name, resolution=res, batch_size=args.batch_size, repeats=args.repeats,
                             seed=args.seed)
        if not ours.valid:
            fail(f"{entry.name}@{res}: our score is invalid: {ours.reason}")
        ours32, off32 = same_draws_pair(masternet, zen, entry, res, args.batch_size, args.seed, float64=False)
        ours64, off64 = same_draws_pair(masternet, zen, entry, res, args.batch_size, args.seed, float64=True)
        m_off, s_off = mean_std(off)
        diff = ours.score - m_off
        se = math.sqrt((s_off ** 2 + ours.std ** 2) / args.repeats)
        z = diff / se if se > 0 else math.inf
        row = dict(net=entry.name, res=res, official_mean=m_off, official_std=s_off, official_scores=off,
                   ours_mean=ours.score, ours_std=ours.std, ours_scores=ours.scores, diff=diff,
                   within_std=abs(diff) <= s_off, z=z,
                   same_draws_f32=[ours32, off32], same_draws_f32_abs_diff=abs(ours32 - off32),
                   same_draws_f64=[ours64, off64], same_draws_f64_abs_diff=abs(ours64 - off64),
                   seconds_official=t_off, seconds_ours=ours.seconds)
        rows.append(row)
        table.add_row(entry.name, str(res), f"{m_off:.3f}", f"{s_off:.3f}", f"{ours.score:.3f}", f"{ours.std:.3f}",
                      f"{diff:+.3f}", "yes" if row["within_std"] else "[red]NO[/]", f"{z:+.2f}",
                      f"{row['same_draws_f32_abs_diff']:.1e}", f"{row['same_draws_f64_abs_diff']:.1e}",
                      f"{t_off:.1f}", f"{ours.seconds:.1f}")
        console.print(f"  done {entry.name}@{res}: official {m_off:.3f} ± {s_off:.3f}, ours {ours.score:.3f} ± "
                      f"{ours.std:.3f}, same draws |diff| f32 {row['same_draws_f32_abs_diff']:.1e} "
                      f"f64 {row['same_draws_f64_abs_diff']:.1e}")
    console.print(table)
    if skipped:
        console.print(f"skipped (--skip): {', '.join(skipped)}")
    n_out = sum(not r["within_std"] for r in rows)
    worst32 = max((r["same_draws_f32_abs_diff"] for r in rows), default=0.0)
    worst64 = max((r["same_draws_f64_abs_diff"] for r in rows), default=0.0)
    console.print(f"{len(rows) - n_out}/{len(rows)} rows with |diff| within the official seed-to-seed std; largest "
                  f"same-draws |diff|: {worst32:.1e} in float32 (round-off, amplified by deep plain nets), "
                  f"{worst64:.1e} in float64")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(batch_size=args.batch_size, repeats=args.repeats, seed=args.seed,
                           threads=torch.get_num_threads(), skipped=skipped, rows=rows), fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
