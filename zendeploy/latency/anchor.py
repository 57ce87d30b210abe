"""Re-anchor a table to its host's speed now: measure a few of its calibration networks again and let the
whole-network calibration follow them.

Why: a table's units keep their relative costs; the machine's speed does not. A shared CPU runs slower or faster for
hours, and a cloud VM of one name lands on other processors (the shipped tables of 2026-12-03 were measured on an
Intel Xeon VM; the VM of 2026-12-06 was an AMD EPYC, where the MobileNet 32 table's 48 calibration networks ran
13-15 % faster than the table said). ``anchor_table`` measures K of the table's calibration networks (K = 12 by
default, spread evenly over their MACs, the smallest and the largest included) with the table's statistic, and
``fit_anchor`` lets three calibrations compete on them by leave-one-out error: the table as built, the as-built
calibration scaled by the host's speed, or a refit of ``y = a + b * sum + c * n_units [+ d * boundary]``. On that
EPYC host the Xeon MobileNet 32 table went from 15.6-17.9 % held-out MAPE to 5.0-6.2 % (refit chosen), and a table
built on the host the same hour kept its 6.8 % (as built chosen; a forced refit would have cost a point or two).

The anchor is part of the table (``LatencyTable.anchor``: when, on which CPU, the measurements, each method's
error, the chosen calibration); the as-built calibration stays in ``calibration``, so ``clear_anchor`` restores it.
Only a table of this host's setup can be anchored (backend and version, threads, precision, batch, layout,
exporter): a calibration fitted here cannot fix units measured with another runtime. Another CPU model of the same
setup is allowed, as a *transfer* recorded in ``Anchor.transferred_from``.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Literal, Sequence

from ..errors import LatencyTableError
from ..progress import Progress
from ..space.structure import parse_structure
from .schema import Anchor, Calibration, LatencyTable, backend_fingerprint, fingerprint_of

log = logging.getLogger(__name__)

AnchorMethod = Literal["as built", "scale", "refit"]
# A re-anchor is for a host whose speed moved (another processor of the same name ran tables at 0.60-0.68x); within
# one host's noise it only adds the 12 networks' noise. The same network measured an hour apart on one host varied
# 0.97-1.12x (the ONNX Runtime ResNet 224 anchor networks against their build), and "scale" winning by 0.5-5 % of the
# as-built error took two same-host validations from 3.9 % to 6.5 % and from 4.1 % to 4.7 % held-out MAPE.
ANCHOR_MIN_GAIN = 0.10
DEFAULT_ANCHOR_NETWORKS = 12  # on the MobileNet 32 transfer, 12 did as well as all 48 (5.0-6.2 % against 5.4-6.0 %)


def anchor_structures(table: LatencyTable, networks: int = DEFAULT_ANCHOR_NETWORKS) -> list[str]:
    """``networks`` of the table's calibration networks, spread evenly over their MACs (the smallest and the largest
    included), as structure strings."""
    from ..cost import network_cost
    from .calibrate import MIN_CALIBRATION_NETWORKS

    cal = table.calibration
    if cal is None or not cal.structures:
        raise LatencyTableError("the table has no calibration networks to measure again (profile it with a "
                                "calibration first)")
    if networks < MIN_CALIBRATION_NETWORKS:
        raise LatencyTableError(f"an anchor needs at least {MIN_CALIBRATION_NETWORKS} networks (got {networks})")
    res, classes = table.space.resolution, table.space.num_classes
    by_macs = sorted(cal.structures, key=lambda s: network_cost(parse_structure(s), res, num_classes=classes).macs)
    k = min(networks, len(by_macs))
    if k == 1:
        return by_macs[:1]
    picks = sorted({round(i * (len(by_macs) - 1) / (k - 1)) for i in range(k)})
    return [by_macs[i] for i in picks]


def check_anchorable(table: LatencyTable, backend) -> str | None:
    """Refuse, in one line, to anchor a table on a backend set up otherwise than the table's (backend and its
    version, threads, precision, batch, layout, exporter). Another CPU model is allowed, as a *transfer*: returns
    the table's CPU when it is not this host's (None when it is)."""
    want, here = fingerprint_of(table.provenance.model_dump()), backend_fingerprint(backend)
    diffs = [k for k in want if want[k] != here[k] and k != "device_name"]
    if diffs:
        k = diffs[0]
        raise LatencyTableError(f"cannot anchor the table on this host: {k} differs (table: {want[k]!r}, here: "
                                f"{here[k]!r}); a calibration fitted here cannot fix units measured otherwise, "
                                f"profile a table on this host instead")
    return want["device_name"] if want["device_name"] != here["device_name"] else None


def _scaled(cal: Calibration, s: float, structures: Sequence[str], measured_ms: Sequence[float],
            loo: Sequence[float], raw: Sequence[float]) -> Calibration:
    """The as-built calibration with every coefficient times ``s`` (the whole prediction scaled), with its
    leave-one-out errors on the anchors."""
    import numpy as np

    rel = np.asarray(loo)
    return cal.model_copy(update={
        "a_ms": cal.a_ms * s, "b": cal.b * s, "c_ms": cal.c_ms * s, "d_ms_per_melem": cal.d_ms_per_melem * s,
        "e_ms_per_mb": cal.e_ms_per_mb * s,
        "fitted_on": len(structures), "rel_std": float(np.sqrt(np.mean(rel ** 2))),
        "mape_raw": float(np.mean([abs(r / m - 1) for r, m in zip(raw, measured_ms)]) * 100),
        "mape_calibrated": float(np.mean(np.abs(rel)) * 100), "error": "leave-one-out",
        "structures": list(structures), "measured_ms": [float(v) for v in measured_ms]})


def fit_anchor(table: LatencyTable, structures: Sequence[str], measured_ms: Sequence[float], *,
               date: str | None = None, host: dict | None = None) -> LatencyTable:
    """``table`` with an anchor fitted on ``structures`` measured now (``measured_ms`` per batch). Three
    calibrations compete, each scored by its leave-one-out error on these networks: the table as built (nothing
    fitted), the as-built calibration scaled by the median of measured / predicted (one parameter: the host's
    speed), and the calibration refitted on them (four parameters: also a changed per-call overhead, as on another
    CPU). A method with more parameters is chosen only when it lowers the error of the best simpler one by
    ``ANCHOR_MIN_GAIN`` of it. Nothing is timed.

    Why not always refit: 12 networks carry the per-network error of the unit predictions (6-12 % on this host's
    ResNet tables), and four parameters fitted on them can move predictions by more than the host did. Measured:
    on a table built the same day the refit turned 5.8 % held-out MAPE into 7.9 % and the scale into 6.6 %, while
    on the MobileNet 32 table three days and one processor later the refit gave 5.0-6.2 % and the scale 7.5 %."""
    import numpy as np

    from .predict import LatencyPredictor
    from .profile import calibrate

    if len(structures) != len(measured_ms):
        raise LatencyTableError(f"{len(structures)} anchor networks but {len(measured_ms)} measurements")
    built = table.calibration
    if built is None:
        raise LatencyTableError("the table has no calibration to anchor (profile it with a calibration first)")
    as_built = table.model_copy(update={"anchor": None})
    nets = [parse_structure(s) for s in structures]
    m = np.asarray(measured_ms, dtype=float)
    predictor = LatencyPredictor(as_built)
    preds = [predictor.predict(b, table.space.resolution) for b in nets]
    p = np.array([x.batch_latency_ms for x in preds])
    raw = [x.raw_sum_ms for x in preds]
    ratio = m / p
    s = float(np.median(ratio))
    loo_scale = [float(np.median(np.delete(ratio, i))) * p[i] / m[i] - 1 for i in range(len(m))]
    refit = calibrate(as_built, nets, measured_ms)
    fits = {"as built": (float(np.mean(np.abs(p / m - 1)) * 100), _scaled(built, 1.0, structures, measured_ms,
                                                                          list(p / m - 1), raw)),
            "scale": (float(np.mean(np.abs(loo_scale)) * 100),
                      _scaled(built, s, structures, measured_ms, loo_scale, raw)),
            "refit": (refit.mape_calibrated, refit)}
    method = choose_method({k: v[0] for k, v in fits.items()})
    host = dict(host or {})
    units_cpu = table.provenance.device_name
    transfer = units_cpu if host.get("cpu_model") and host["cpu_model"] != units_cpu else None
    anchor = Anchor(date=date or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), host=host,
                    transferred_from=transfer, structures=list(structures), measured_ms=[float(v) for v in m],
                    speed_ratio=s, method=method, loo_mape_pct={k: round(v[0], 3) for k, v in fits.items()},
                    calibration=fits[method][1])
    return table.model_copy(update={"anchor": anchor})


def choose_method(loo_mape_pct: dict[str, float]) -> AnchorMethod:
    """The anchor's method from each one's leave-one-out error: as built unless scaling lowers that error by
    ``ANCHOR_MIN_GAIN`` of it, then a refit only if it lowers the better of those two by as much."""
    method: AnchorMethod = "as built"
    candidates: tuple[AnchorMethod, ...] = ("scale", "refit")  # in order of parameters: each must earn its place
    for candidate in candidates:
        if loo_mape_pct[candidate] < loo_mape_pct[method] * (1 - ANCHOR_MIN_GAIN):
            method = candidate
    return method


def clear_anchor(table: LatencyTable) -> LatencyTable:
    """``table`` as built: the anchor removed, predictions from the as-built calibration again."""
    return table.model_copy(update={"anchor": None})


def host_state() -> dict:
    """What the host was doing when the anchor was measured: load average and the CPU's model."""
    import os

    from profilers.common import environment_fingerprint

    fp = environment_fingerprint()
    state = {"hostname": fp.get("hostname"), "cpu_model": fp.get("cpu_model")}
    try:
        state["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    return state


def check_anchorable_here(table: LatencyTable, backend) -> str | None:
    """:func:`check_anchorable`, and a warning when the anchor will be a transfer from another CPU."""
    other_cpu = check_anchorable(table, backend)
    if other_cpu:
        log.warning("the table's units were measured on %s, not this host's CPU: the anchor fits its calibration to "
                    "this host (a transfer); profile a table here for unit-level accuracy", other_cpu)
    return other_cpu


def measure_anchor(table: LatencyTable, backend, *, networks: int = DEFAULT_ANCHOR_NETWORKS, workdir: Path,
                   progress: Progress | None = None, passes: int | None = None) -> tuple[list[str], list[float]]:
    """Measure ``networks`` anchor networks of ``table`` end to end on ``backend`` (the table's statistic: the
    fastest run over shuffled passes); returns (structures, ms per batch)."""
    from .profile import DEFAULT_PASSES, measure_networks

    check_anchorable_here(table, backend)
    structures = anchor_structures(table, networks)
    measured = measure_networks(backend, [parse_structure(s) for s in structures], table.space.resolution,
                                num_classes=table.space.num_classes, passes=passes or DEFAULT_PASSES,
                                workdir=workdir, progress=progress)
    return structures, measured


def anchor_table(table: LatencyTable, backend, *, networks: int = DEFAULT_ANCHOR_NETWORKS, workdir: Path,
                 progress: Progress | None = None, passes: int | None = None) -> LatencyTable:
    """Measure ``networks`` anchor networks now and return the table anchored on them."""
    structures, measured = measure_anchor(table, backend, networks=networks, workdir=workdir, progress=progress,
                                          passes=passes)
    anchored = fit_anchor(table, structures, measured, host=host_state())
    a = anchored.anchor
    assert a is not None
    log.info("re-anchored the table on %d networks: this host runs at %.2fx the as-built predictions; %s (error "
             "%.1f %% leave-one-out)", len(structures), a.speed_ratio, a.method, a.calibration.mape_calibrated)
    return anchored


ANCHOR_FILE = "anchor.json"


def anchored_predictor(predictor, backend, *, networks: int, run_dir: Path, progress: Progress | None = None):
    """A predictor of ``predictor``'s table re-anchored on ``networks`` networks measured now, for a search in
    ``run_dir``: the measurements are kept in ``run_dir/anchor.json`` (written atomically) and reused when the same
    table is searched there again (``--resume``, or a rerun), so a resumed search predicts exactly as before. The
    new predictor carries the table's path and hash, and ``anchor_sha256``, the hash of those measurements (part of
    the search's fingerprint)."""
    import hashlib
    import json

    from ..io import atomic_write_text
    from .predict import LatencyPredictor

    path = Path(run_dir) / ANCHOR_FILE
    table = predictor.table
    record: dict | None = None
    if path.exists():
        try:
            record = json.loads(path.read_text())
            ok = (isinstance(record, dict) and isinstance(record.get("structures"), list)
                  and isinstance(record.get("measured_ms"), list)
                  and len(record["structures"]) == len(record["measured_ms"]) > 0)
        except (OSError, ValueError):
            ok = False
        if not ok:
            raise LatencyTableError(f"anchor file '{path}' is corrupt; delete it to measure the anchor again")
        assert record is not None
        if record.get("table_sha256") != getattr(predictor, "sha256", None) or record.get("networks") != networks:
            record = None  # another table or anchor size: measured again
        else:
            log.info("reusing the anchor measured on %s (%s)", record.get("date"), path)
    if record is None:
        structures, measured = measure_anchor(table, backend, networks=networks, workdir=Path(run_dir) / "anchor",
                                              progress=progress)
        record = {"table_sha256": getattr(predictor, "sha256", None), "networks": networks,
                  "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "host": host_state(),
                  "structures": structures, "measured_ms": measured}
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    anchored = fit_anchor(table, record["structures"], record["measured_ms"], date=record.get("date"),
                          host=record.get("host"))
    new = LatencyPredictor(anchored)
    new.path, new.sha256 = predictor.path, predictor.sha256
    new.anchor_sha256 = hashlib.sha256(json.dumps([record["structures"], record["measured_ms"]]).encode()).hexdigest()
    a = anchored.anchor
    log.info("latency table re-anchored on %d networks measured on this host: %.2fx the as-built predictions",
             len(record["structures"]), a.speed_ratio if a else float("nan"))
    return new


__all__ = ["ANCHOR_FILE", "DEFAULT_ANCHOR_NETWORKS", "anchor_structures", "anchor_table", "anchored_predictor",
           "check_anchorable", "clear_anchor", "fit_anchor", "host_state", "measure_anchor"]
