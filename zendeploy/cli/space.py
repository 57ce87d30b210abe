"""`zendeploy zoo`, `zendeploy blocks`, `zendeploy info`: what a structure is and costs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from .common import (
    JsonOpt, ResOpt, RunOpt, StructArg, ZooOpt, console, print_json, run_command, run_settings, structure_source,
)


def _millions(x: int | float | None) -> str:
    """1234 -> '1.23K', 7466024 -> '7.47M' (human-readable counts)."""
    if x is None:
        return "-"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(x) >= scale:
            return f"{x / scale:.2f}{suffix}"
    return str(int(x))


def zoo_cmd(
    include: Annotated[Optional[str], typer.Option(help="fnmatch pattern, e.g. '*cifar10_*'.")] = None,
    exclude: Annotated[Optional[str], typer.Option(help="fnmatch pattern to leave out.")] = None,
    as_json: JsonOpt = False,
):
    """List the ZenNet zoo: the official released structures (and tiny test nets)."""

    def body():
        from ..cost import network_cost
        from ..space.structure import parse_structure
        from ..zoo import get_zoo, list_zoo

        rows = []
        for name in list_zoo(include, exclude):
            e = get_zoo(name)
            c = network_cost(parse_structure(e.structure), e.resolution, num_classes=e.num_classes, se=e.se)
            rows.append({"name": name, "dataset": e.dataset, "resolution": e.resolution, "num_classes": e.num_classes,
                         "se": e.se, "params": c.params, "macs": c.macs, "layers": c.layers,
                         "reported_top1": e.reported_top1, "structure": e.structure})
        if as_json:
            print_json(rows)
            return
        t = Table(title="ZenNet zoo (params and MACs computed by zendeploy; top-1 as reported by the authors)")
        for col in ("name", "dataset", "res", "SE", "params", "MACs", "layers", "top-1 %"):
            t.add_column(col, justify="left" if col == "name" else "right")
        for r in rows:
            t.add_row(r["name"], r["dataset"], str(r["resolution"]), "yes" if r["se"] else "no",
                      _millions(r["params"]), _millions(r["macs"]), str(r["layers"]),
                      "-" if r["reported_top1"] is None else f"{r['reported_top1']:.1f}")
        console.print(t)

    run_command(body)


def blocks_cmd(as_json: JsonOpt = False):
    """List the super-block types a structure string may use."""
    from ..space.registry import BLOCK_TYPES

    rows = [{"name": n, "family": b.family, "kernel": b.kernel, "kernel2": b.second_kernel, "expansion": b.expansion,
             "args": list(b.arg_names)} for n, b in BLOCK_TYPES.items()]
    if as_json:
        print_json(rows)
        return
    t = Table(title="Super-block types (official ZenNAS names)")
    for col in ("name", "family", "kernel", "expansion", "arguments"):
        t.add_column(col)
    for r in rows:
        k = str(r["kernel"]) if r["kernel"] == r["kernel2"] else f"{r['kernel']},{r['kernel2']}"
        t.add_row(r["name"], r["family"], k, str(r["expansion"]), ",".join(r["args"]))
    console.print(t)


def info_cmd(
    structure: StructArg = None,
    zoo: ZooOpt = None,
    run: RunOpt = None,
    res: ResOpt = None,
    num_classes: Annotated[Optional[int], typer.Option(help="Classifier size (default: zoo entry's, else 1000).",
                                                       min=1)] = None,
    se: Annotated[Optional[bool], typer.Option("--se/--no-se", help="SE modules (default: zoo entry's, else off).",
                                               show_default=False)] = None,
    as_json: JsonOpt = False,
):
    """Parameters, MACs, depth and a per-block table of a structure."""

    def body():
        from ..builder import resolve
        from ..cost import network_cost
        from ..errors import StructureError

        ran = run_settings(run)
        r = resolve(structure_source(structure, zoo, run), num_classes=num_classes or ran.get("num_classes"),
                    se=se if se is not None else ran.get("se"), resolution=res or ran.get("resolution"))
        if r.resolution is None:
            raise StructureError("--res is required for a structure string")
        c = network_cost(r.blocks, r.resolution, num_classes=r.num_classes, se=r.se)
        if as_json:
            d = c.to_dict()
            d["zoo"] = r.zoo_name
            d["blocks"] = [dict(b, structure=b.pop("block")) for b in d["blocks"]]
            print_json(d)
            return
        t = Table(title=f"{r.zoo_name or 'structure'} at {r.resolution}x{r.resolution}, {r.num_classes} classes, "
                        f"SE {'on' if r.se else 'off'}")
        for col in ("#", "block", "in res", "out res", "units", "convs", "params", "MACs"):
            if col == "block":
                t.add_column(col, overflow="fold", min_width=14)
            else:
                t.add_column(col, justify="right", no_wrap=True)
        for b in c.blocks:
            t.add_row(str(b.index + 1), b.block, str(b.input_resolution), str(b.output_resolution), str(b.units),
                      str(b.conv_layers), _millions(b.params), _millions(b.macs))
        t.add_row("", "GAP + Linear", "", "1", "", "", _millions(c.head_params), _millions(c.head_macs))
        console.print(t)
        console.print(f"params {c.params:,} ({_millions(c.params)})   MACs {c.macs:,} ({_millions(c.macs)}; "
                      f"what ZenNAS calls FLOPs)   layers {c.layers} (sum of sub_layers)   conv layers {c.conv_layers}")

    run_command(body)


def register(app: typer.Typer) -> None:
    app.command("zoo")(zoo_cmd)
    app.command("blocks")(blocks_cmd)
    app.command("info")(info_cmd)
