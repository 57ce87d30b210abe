"""`zendeploy score` and `zendeploy proxies`: zero-shot scores of a structure."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import (
    JsonOpt, ResOpt, RunOpt, StructArg, ZooOpt, console, print_json, run_command, run_settings, structure_source,
)


ModuleOpt = Annotated[Optional[str], typer.Option(
    "--module", metavar="PKG.MOD:FACTORY",
    help="Score a PyTorch classifier instead of a structure: an importable 'package.module:factory' (or "
         "'path/file.py:factory'), called with --kwargs; or a torchvision model name (needs torchvision).")]
KwargsOpt = Annotated[Optional[str], typer.Option("--kwargs", metavar="JSON",
                                                  help="Keyword arguments for the --module factory, as JSON.")]
InChannelsOpt = Annotated[int, typer.Option("--in-channels", help="Input channels of a --module model.", min=1)]


def load_module(spec: str, kwargs_json: Optional[str]):
    """The nn.Module named by ``--module``: 'pkg.mod:factory', 'file.py:factory' or a torchvision model name."""
    import importlib
    import importlib.util
    import json
    from pathlib import Path

    from torch import nn

    from ..errors import ProxyError, first_line

    try:
        kwargs = json.loads(kwargs_json) if kwargs_json else {}
    except json.JSONDecodeError as exc:
        raise ProxyError(f"--kwargs is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(kwargs, dict):
        raise ProxyError("--kwargs must be a JSON object of keyword arguments, e.g. '{\"num_classes\": 10}'")
    if ":" not in spec:
        try:
            import torchvision.models as tvm
        except Exception:  # noqa: BLE001 - torchvision missing or broken: say what to install
            raise ProxyError(f"'{spec}' is not 'package.module:factory', and naming a torchvision model needs "
                             f"torchvision (pip install torchvision matching torch)") from None
        try:
            return tvm.get_model(spec, weights=None, **kwargs)
        except Exception as exc:  # noqa: BLE001 - unknown name or bad kwargs, in one line
            raise ProxyError(f"torchvision cannot build '{spec}' ({first_line(exc)})") from None
    where, _, attr = spec.rpartition(":")
    try:
        if where.endswith(".py") or "/" in where:
            path = Path(where)
            if not path.is_file():
                raise ProxyError(f"--module file '{where}' does not exist")
            mspec = importlib.util.spec_from_file_location(path.stem, path)
            if mspec is None or mspec.loader is None:
                raise ProxyError(f"--module file '{where}' cannot be imported as a Python module")
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ProxyError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's module failed to import, in one line
        raise ProxyError(f"cannot import '{where}' ({type(exc).__name__}: {first_line(exc)})") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise ProxyError(f"'{where}' has no '{attr}'")
    if isinstance(factory, nn.Module):
        return factory
    try:
        model = factory(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the factory's own error, in one line
        raise ProxyError(f"{spec}({', '.join(kwargs)}) failed ({type(exc).__name__}: {first_line(exc)})") from None
    if not isinstance(model, nn.Module):
        raise ProxyError(f"{spec} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def score_cmd(
    structure: StructArg = None,
    zoo: ZooOpt = None,
    run: RunOpt = None,
    module: ModuleOpt = None,
    kwargs: KwargsOpt = None,
    in_channels: InChannelsOpt = 3,
    res: ResOpt = None,
    proxy: Annotated[str, typer.Option(help="Proxy name (see `zendeploy proxies`).")] = "zen",
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Gaussian inputs per forward.", min=1)] = 16,
    repeats: Annotated[int, typer.Option(help="Freshly initialised networks to average over.", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same score.")] = 0,
    threads: Annotated[int, typer.Option(
        help="torch CPU threads. 1 (the default) is what the search scores with: a score depends on the thread "
             "count in its last digits, and on a busy host 2 threads are slower than 1 (tools/bench_score_threads.py).",
        min=1)] = 1,
    as_json: JsonOpt = False,
):
    """Zero-shot score of a structure (default: Zen-Score, official semantics)."""

    def body():
        import torch

        from ..builder import resolve
        from ..errors import ProxyError
        from ..proxies import compute_proxy, get_proxy
        from ..proxies.allocator import reuse_freed_memory

        get_proxy(proxy)
        torch.set_num_threads(threads)
        reuse_freed_memory()
        if module is not None:
            if structure or zoo or run:
                raise ProxyError("give either --module or a structure (string, --zoo or --run), not both")
            if res is None:
                raise ProxyError("--res is required for a --module model")
            from ..proxies import score_module

            result = score_module(load_module(module, kwargs), proxy, resolution=res, in_channels=in_channels,
                                  batch_size=batch_size, repeats=repeats, seed=seed)
            _print_result(result, proxy, res, batch_size, seed, threads, as_json, module=module)
            return
        ran = run_settings(run)
        r = resolve(structure_source(structure, zoo, run), resolution=res or ran.get("resolution"),
                    num_classes=ran.get("num_classes"))
        if r.resolution is None:
            raise ProxyError("--res is required for a structure string")
        result = compute_proxy(proxy, r.blocks, resolution=r.resolution, batch_size=batch_size, repeats=repeats,
                               seed=seed, num_classes=r.num_classes)
        _print_result(result, proxy, r.resolution, batch_size, seed, threads, as_json, structure=r.structure,
                      zoo=r.zoo_name)

    run_command(body)


def _print_result(result, proxy, res, batch_size, seed, threads, as_json, **what) -> None:
    if as_json:
        print_json(dict(result.to_dict(), **what))
    elif not result.valid:
        console.print(f"[yellow]{proxy} score is invalid:[/] {result.reason}", highlight=False)
    else:
        spread = f" ± {result.std:.4f} (std over {result.repeats} repeats)" if result.repeats > 1 else ""
        where = (f"[{res}x{res}, batch {batch_size}, seed {seed}, {threads} thread{'s' if threads > 1 else ''}, "
                 f"{result.seconds:.2f} s]")
        if result.components is not None:  # ranked within a set: a network alone has only its indicators
            parts = ", ".join(f"{k} {v:.6g}" for k, v in result.components.items())
            console.print(f"{proxy} indicators: {parts}   {where}", highlight=False)
            console.print(f"  ({proxy} ranks these within a set of candidates, as the search does)", highlight=False)
        else:
            console.print(f"{proxy} = {result.score:.4f}{spread}   {where}", highlight=False)
    if not result.valid:
        raise typer.Exit(code=2)


def proxies_cmd(
    module: ModuleOpt = None,
    kwargs: KwargsOpt = None,
    in_channels: InChannelsOpt = 3,
    res: ResOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", help="Gaussian inputs per forward.", min=2)] = 16,
    seed: Annotated[int, typer.Option(help="Seed of every proxy.")] = 0,
    as_json: JsonOpt = False,
):
    """List the zero-shot proxies; with --module, run every one of them on that model."""
    from ..proxies import PROXIES

    if module is not None:
        return run_command(lambda: _all_proxies(module, kwargs, in_channels, res, batch_size, seed, as_json))
    rows = [{"name": n, "description": p.description, "reference": p.reference} for n, p in PROXIES.items()]
    if as_json:
        print_json(rows)
        return
    t = Table(title="Zero-shot proxies (higher is better)")
    for col in ("name", "what it measures", "reference"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["description"], r["reference"])
    console.print(t)


def _all_proxies(module, kwargs, in_channels, res, batch_size, seed, as_json) -> None:
    import torch

    from ..errors import ProxyError
    from ..proxies import PROXIES, score_module
    from ..proxies.allocator import reuse_freed_memory

    if res is None:
        raise ProxyError("--res is required for a --module model")
    torch.set_num_threads(1)
    reuse_freed_memory()
    model = load_module(module, kwargs)
    results = [score_module(model, name, resolution=res, in_channels=in_channels, batch_size=batch_size, seed=seed)
               for name in PROXIES.names()]
    if as_json:
        print_json({"module": module, "resolution": res, "results": [r.to_dict() for r in results]})
        return
    t = Table(title=f"{module} at {res}x{res}, batch {batch_size}, seed {seed} (higher is better)")
    for col in ("proxy", "score", "seconds", "note"):
        t.add_column(col)
    for r in results:
        value = ("invalid" if not r.valid else f"{r.score:.4f}" if r.components is None
                 else "ranked: " + ", ".join(f"{k} {v:.4g}" for k, v in r.components.items()))
        t.add_row(r.proxy, value, f"{r.seconds:.2f}", r.reason or "")
    console.print(t)


def register(app: typer.Typer) -> None:
    app.command("score")(score_cmd)
    app.command("proxies")(proxies_cmd)
