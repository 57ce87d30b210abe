"""What every command shares: the structure source options, the console, error handling, JSON output."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import StructureError, ZenDeployError, first_line

class _PeopleConsole(Console):
    """A console whose tables never cut what a user must read or copy (names, structures, paths): on a narrow
    terminal or a pipe (80 columns) cells wrap onto more lines instead of ending in an ellipsis."""

    def print(self, *objects, **kwargs):  # noqa: A003 - rich's name
        from rich.table import Table

        for o in objects:
            if isinstance(o, Table):
                for column in o.columns:
                    column.overflow, column.no_wrap = "fold", False
        super().print(*objects, **kwargs)


console = _PeopleConsole()
err_console = _PeopleConsole(stderr=True)

StructArg = Annotated[
    Optional[str],
    typer.Argument(help="Structure string in the official ZenNAS format, e.g. 'SuperConvK3BNRELU(3,8,2,1)...'.",
                   show_default=False),
]
ZooOpt = Annotated[Optional[str], typer.Option("--zoo", help="A ZenNet from the zoo (see `zendeploy zoo`).")]
RunOpt = Annotated[Optional[Path], typer.Option("--run", help="A search run folder: uses its best_structure.txt.")]
ResOpt = Annotated[Optional[int], typer.Option("--res", help="Input resolution (default: the zoo entry's).", min=1)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
RAY_HELP = ("Run on Ray (pip install \"zendeploy\\[ray]\"): --ray alone joins RAY_ADDRESS or a cluster started here "
            "with `ray start`, else starts a local instance; --ray local always starts one; --ray HOST:PORT or "
            "ray://HOST:10001 joins that cluster.")
RAY_AUTO = "auto"  # what a bare --ray means (see ``expand_bare_options``)


def expand_bare_options(argv: list[str], options: tuple[str, ...] = ("--ray",), value: str = RAY_AUTO) -> list[str]:
    """``--ray`` takes an optional address: a bare ``--ray`` (last, or followed by another option) gets ``auto``."""
    out = []
    for i, arg in enumerate(argv):
        out.append(arg)
        if arg in options and (i + 1 == len(argv) or argv[i + 1].startswith("-")):
            out.append(value)
    return out


def describe_workers(workers: dict, requeued: int = 0, long: bool = False) -> str:
    """Per-worker throughput for a progress bar or a summary: evaluations per busy second of each worker."""
    if not workers:
        return ""
    from ..distributed.runtime import rate_span

    lost = f", {requeued} re-queued" if requeued else ""
    span = rate_span([w["evaluations"] / w["seconds"] for w in workers.values() if w["seconds"] > 0])
    if not span:
        return f"{len(workers)} worker(s){lost}"
    if long:
        each = ", ".join(f"{name} {w['evaluations']} ({w['evaluations'] / w['seconds']:.1f}/s)"
                         for name, w in sorted(workers.items()) if w["seconds"] > 0)
        return f"{len(workers)} worker(s): {each}{lost}"
    return f"{len(workers)} worker(s) {span} eval/s each{lost}"


def structure_source(structure: str | None, zoo: str | None, run: Path | None = None) -> str:
    """Exactly one of STRUCT, --zoo NAME, --run DIR; returns a structure string or zoo name for ``builder.resolve``."""
    given = [x for x in (structure, zoo, run) if x is not None]
    if len(given) != 1:
        raise StructureError("give exactly one of: a structure string, --zoo NAME, --run DIR")
    if zoo is not None:
        from ..zoo import get_zoo

        get_zoo(zoo)
        return zoo
    if run is not None:
        path = Path(run) / "best_structure.txt"
        if not path.is_file():
            raise StructureError(f"run folder '{run}' has no best_structure.txt")
        return path.read_text().strip()
    assert structure is not None  # exactly one was given
    return structure.strip()


def run_settings(run: Path | None) -> dict:
    """What a search run used (its ``report.json``): resolution, num_classes and se, so ``--run DIR`` gives the
    figures the search worked with. Empty without ``--run`` or without a report (a folder holding only
    best_structure.txt); an unreadable report is a one-line error."""
    if run is None:
        return {}
    path = Path(run) / "report.json"
    try:
        settings = json.loads(path.read_text())["settings"]
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StructureError(f"'{path}' is not a search report ({type(exc).__name__})") from None
    return {k: settings.get(k) for k in ("resolution", "num_classes", "se") if settings.get(k) is not None}


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")


def _json_default(o):
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# OS errors that come from the machine, not from a bug: a full disk or quota, a read-only or forbidden place, a
# file too large, an I/O error. Anywhere in a command they end as one line naming the file.
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO,
                      errno.EMFILE, errno.ENFILE}


def _one_line(message: str) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def run_command(fn: Callable[[], Any]) -> Any:
    """Run a command body: a ZenDeployError, or an OS error from the machine (disk full, permissions), becomes one
    line on stderr and exit code 1 (traceback with ZENDEPLOY_DEBUG=1)."""
    try:
        return fn()
    except ZenDeployError as exc:
        if os.environ.get("ZENDEPLOY_DEBUG"):
            raise
        _one_line(first_line(exc))
        raise typer.Exit(code=1) from None
    except OSError as exc:
        if os.environ.get("ZENDEPLOY_DEBUG") or exc.errno not in ENVIRONMENT_ERRNOS:
            raise
        where = f" '{exc.filename}'" if exc.filename else ""
        _one_line(f"cannot write or read{where}: {exc.strerror or os.strerror(exc.errno)} (zendeploy writes its files "
                  f"atomically: none is left half-written)")
        raise typer.Exit(code=1) from None


def device_choices_help(prefix: str = "Target") -> str:
    """The devices from the device table (``zendeploy.latency.devices``), not a hand-written list."""
    from ..latency.devices import DEVICES

    items = [f"{name} ({DEVICES.get(name).backend}{'' if DEVICES.get(name).local else ', remote'})"
             for name in DEVICES.names()]
    return f"{prefix}: {', '.join(items)}."


def space_choices_help() -> str:
    """The built-in search spaces from their registry, and the file form."""
    from ..space.spaces import list_spaces

    return f"Search space: {' | '.join(list_spaces())} | a YAML/JSON space file."
