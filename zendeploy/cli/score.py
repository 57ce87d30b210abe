"""`zendeploy score` and `zendeploy proxies`: zero-shot scores of a structure."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .common import (
    JsonOpt, ResOpt, RunOpt, StructArg, ZooOpt, console, print_json, run_command, run_settings, structure_source,
)


def score_cmd(
    structure: StructArg = None,
    zoo: ZooOpt = None,
    run: RunOpt = None,
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

        get_proxy(proxy)
        torch.set_num_threads(threads)
        ran = run_settings(run)
        r = resolve(structure_source(structure, zoo, run), resolution=res or ran.get("resolution"),
                    num_classes=ran.get("num_classes"))
        if r.resolution is None:
            raise ProxyError("--res is required for a structure string")
        result = compute_proxy(proxy, r.blocks, resolution=r.resolution, batch_size=batch_size, repeats=repeats,
                               seed=seed, num_classes=r.num_classes)
        if as_json:
            print_json(dict(result.to_dict(), structure=r.structure, zoo=r.zoo_name))
        elif not result.valid:
            console.print(f"[yellow]{proxy} score is invalid:[/] {result.reason}")
        else:
            spread = f" ± {result.std:.4f} (std over {result.repeats} repeats)" if result.repeats > 1 else ""
            console.print(f"{proxy} = {result.score:.4f}{spread}   [{r.resolution}x{r.resolution}, batch "
                          f"{batch_size}, seed {seed}, {threads} thread{'s' if threads > 1 else ''}, "
                          f"{result.seconds:.2f} s]")
        if not result.valid:
            raise typer.Exit(code=2)

    run_command(body)


def proxies_cmd(as_json: JsonOpt = False):
    """List the zero-shot proxies."""
    from ..proxies import PROXIES

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


def register(app: typer.Typer) -> None:
    app.command("score")(score_cmd)
    app.command("proxies")(proxies_cmd)
