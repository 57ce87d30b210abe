"""Closing the loop: an end-to-end measurement function for a search's top-k, when the device runs on this host.

The search itself never times candidates (budgets come from the latency table); after it, the top-k networks are
converted and timed on the table's own backend with the table's statistic (the fastest run over shuffled passes,
``latency.profile.measure_networks``), so the report can say whether the chosen net meets the budget as
measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import first_line


def local_measure_fn(device: str | None, predictor, workdir: str | Path,
                     num_classes_hint: int | None = None) -> tuple[Callable | None, str | None]:
    """``(measure_fn, None)`` when ``device`` (default: the table's) has a backend on this host, else
    ``(None, reason)``. ``measure_fn(networks, resolution, se=False)`` returns one latency per network, in ms per
    image (the batch latency divided by the table's batch), and records each measurement beside the table
    (``<table>.measured.jsonl``) so ``zendeploy latency refit`` adds it to the calibration."""
    if predictor is None:
        return None, "no latency table was given"
    device = device or getattr(predictor, "device", None)
    if not device:
        return None, "the latency table names no device"
    try:
        from ..latency.backends import DEVICES, make_backend
        from ..latency.profile import measure_networks
    except ImportError:
        return None, "the latency backends (zendeploy.latency) are not installed"
    from ..errors import ZenDeployError

    if device not in DEVICES:
        return None, f"device '{device}' has no measurement backend"
    if not DEVICES.get(device).local:
        return None, f"device '{device}' is not attached to this host (measure the top-k on the device)"
    table = getattr(predictor, "table", None)
    threads = getattr(getattr(table, "provenance", None), "threads", None) or 1
    try:
        backend = make_backend(device, batch=getattr(predictor, "batch", 1) or 1, threads=threads,
                               precision=getattr(predictor, "precision", "fp32") or "fp32")
    except ZenDeployError as exc:
        return None, f"backend for '{device}' unavailable: {first_line(exc)}"
    classes = getattr(getattr(table, "space", None), "num_classes", None) or num_classes_hint or 1000

    def measure(networks, resolution, *, se=False):  # ms per image, like the budget
        per_batch = measure_networks(backend, networks, resolution, num_classes=classes, workdir=Path(workdir))
        path = getattr(predictor, "path", None)
        if path and table is not None:  # every measured network joins the table's calibration set (latency refit)
            from ..latency.sidecar import append_networks

            from ..latency.schema import backend_fingerprint

            append_networks(path, table, networks, per_batch, resolution=resolution, num_classes=classes,
                            source="search top-k", fingerprint=backend_fingerprint(backend))
        return [v / backend.batch for v in per_batch]

    setattr(measure, "name", f"{device}/{getattr(backend, 'backend', type(backend).__name__)}")
    return measure, None


MANIFEST_NAME = "measure_manifest.json"


def write_remote_manifest(predictor, networks, out_dir: str | Path, *, resolution: int) -> Path:
    """For a device this host cannot time (``t4``, ``pixel``): the top-k converted the way the table's units were
    (the device's converter, the table's batch and classes) and listed in a manifest for the device-side runners in
    ``profilers/`` (``python -m profilers.tensorrt`` / ``profilers.litert.adb``). ``zendeploy search-measured --run
    DIR --timings FILE`` reads the device's results back and makes the closed loop's decision."""
    import json

    from ..io import atomic_write_text
    from ..latency.conversion import convert_job, converter_for, network_job
    from ..space.structure import format_structure

    table = predictor.table
    prov = table.provenance
    converter = converter_for(prov.device, prov.precision)
    work = Path(out_dir) / "measure"
    work.mkdir(parents=True, exist_ok=True)
    entries = []
    for blocks in networks:
        s = format_structure(blocks)
        job = network_job(f"net|{s}", blocks, resolution, prov.batch, table.space.num_classes, converter.suffix)
        if not (work / job.file_name).exists():
            convert_job(converter, job, work)
        entries.append({"key": job.key, "path": job.file_name, "structure": s})
    path = work / MANIFEST_NAME
    atomic_write_text(path, json.dumps(entries, indent=1) + "\n")
    return path


def timings_measure_fn(timings: str | Path, batch: int):
    """A ``measure_fn`` that answers from a device runner's results JSONL (one record per manifest key, with
    ``latency_ms`` per batch): ms per image, in the order asked. A network the file lacks is a one-line error."""
    from ..errors import LatencyTableError
    from ..space.structure import format_structure

    try:
        from profilers.common import read_jsonl

        records = {r.get("key"): r for r in read_jsonl(timings)}
    except OSError as exc:
        raise LatencyTableError(f"cannot read device timings '{timings}': {exc.strerror or exc}") from None

    def measure(networks, resolution, *, se=False):
        out = []
        for blocks in networks:
            rec = records.get(f"net|{format_structure(blocks)}")
            if rec is None or not isinstance(rec.get("latency_ms"), (int, float)) or not rec["latency_ms"] > 0:
                raise LatencyTableError(f"device timings '{timings}' have no latency for "
                                        f"{format_structure(blocks)[:60]}...; run the manifest on the device first")
            out.append(float(rec["latency_ms"]) / batch)
        return out

    setattr(measure, "name", f"device timings {Path(timings).name}")
    return measure
