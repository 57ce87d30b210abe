"""Validate a latency table: measure held-out networks end to end and compare with the table's predictions.

The held-out set is what a user searches, not what the table's sampler draws: every official ZenNet of the table's
space at its resolution, plus networks from a generator no table sampler uses (mutation walks of the search's own
moves from the ZenNets and the initial structure) spread evenly over the table's MACs range
(``sampling.sample_validation_networks``).

Reports, raw (sum of units) and calibrated side by side: MAPE, share within +-5 % and +-10 %, Kendall tau, the
budget-violation rate at the median measured latency (of the networks predicted under that budget, the share that
measure over it) and pooled over budgets spread across the range; the share of networks whose measurement lies in
the prediction's 95 % interval; the same per third of the MACs range; each official ZenNet's error. Saves a
predicted-vs-measured scatter plot.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..space.structure import format_structure, parse_structure
from ..zoo import get_zoo
from .backends import backend_for
from .calibrate import AccuracyReport, accuracy
from .predict import LatencyPredictor
from ..progress import Progress
from .profile import measure_networks
from .sampling import VALIDATION_SEED, sample_networks
from ..io import atomic_write_text
from .schema import LatencyTable
from .tables import load_table

log = logging.getLogger(__name__)


def _macs(v: float) -> str:
    return f"{v / 1e9:.3g}G" if v >= 1e9 else f"{v / 1e6:.3g}M"


@dataclass
class ValidationReport:
    table: str
    device: str
    backend: str
    samples: int
    raw: AccuracyReport
    calibrated: AccuracyReport | None
    structures: list[str] = field(default_factory=list)
    measured_ms: list[float] = field(default_factory=list)
    predicted_raw_ms: list[float] = field(default_factory=list)
    predicted_ms: list[float] = field(default_factory=list)
    measured_share: list[float] = field(default_factory=list)
    plot: str | None = None
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)  # the zoo name of an official ZenNet, "" for the others
    macs: list[int] = field(default_factory=list)
    low_ms: list[float] = field(default_factory=list)  # the 95 % interval of each prediction, per batch
    high_ms: list[float] = field(default_factory=list)
    interval_coverage_pct: float | None = None  # share of networks measured inside their 95 % interval
    violations_spread_pct: float | None = None  # pooled over budgets at the 10th..90th percentile of measured
    thirds: list[dict] = field(default_factory=list)  # accuracy per third of the MACs range (log scale)
    violations_by_margin: dict = field(default_factory=dict)  # --latency-margin Z -> pooled violation rate, %
    sampler: str = ""
    # validate --anchor K: K calibration networks measured in the same passes, the table re-anchored on them
    # (``latency/anchor.py``); ``calibrated`` and everything derived from it are then the anchored predictions,
    # and ``as_built`` the calibrated accuracy of the table as it was written
    as_built: AccuracyReport | None = None
    anchor: dict = field(default_factory=dict)  # networks, speed_ratio, method, loo_mape_pct, structures,
    #                                             measured_ms (per batch)
    official_outside: list[str] = field(default_factory=list)  # official ZenNets beyond the table's MACs range

    def to_dict(self) -> dict:
        return asdict(self)


def space_of(table: LatencyTable):
    """Rebuild the search space a table was profiled for (built-in name or the definition stored in the table)."""
    from ..space.spaces import load_space, space_from_dict

    if table.space.definition:
        return space_from_dict(table.space.definition)
    return load_space(table.space.name)


def _budget_spread_violations(predicted, measured) -> float:
    """Of the networks predicted under a budget, the share measured over it, pooled over 9 budgets at the 10th to
    90th percentile of the measured latencies (budgets spread across the range, as users set them)."""
    import numpy as np

    p, m = np.asarray(predicted), np.asarray(measured)
    under = over = 0
    for q in range(10, 100, 10):
        b = float(np.percentile(m, q))
        under += int(np.sum(p <= b))
        over += int(np.sum((p <= b) & (m > b)))
    return 100.0 * over / max(under, 1)


def _summarise(report: "ValidationReport", table: LatencyTable) -> None:
    """Fill the derived figures of ``report`` from its per-network lists (interval coverage, spread violations,
    thirds)."""
    import math

    import numpy as np

    m = report.measured_ms
    if report.low_ms:
        inside = [lo <= y <= hi for lo, y, hi in zip(report.low_ms, m, report.high_ms)]
        report.interval_coverage_pct = 100.0 * sum(inside) / len(inside)
    report.violations_spread_pct = _budget_spread_violations(report.predicted_ms, m)
    if report.low_ms:  # what --latency-margin Z buys: budgets checked as prediction + Z sigma
        sigma = [(hi - lo) / (2 * 1.96) for lo, hi in zip(report.low_ms, report.high_ms)]
        report.violations_by_margin = {
            str(z): round(_budget_spread_violations([p + z * s for p, s in zip(report.predicted_ms, sigma)], m), 2)
            for z in (0, 0.5, 1, 1.5, 2)}
    if report.macs and len(report.macs) >= 6:
        lo = math.log(table.space.min_macs or min(report.macs))
        hi = math.log(table.space.max_macs or max(report.macs))
        report.thirds = []
        for k in range(3):
            a, b = lo + (hi - lo) * k / 3, lo + (hi - lo) * (k + 1) / 3
            idx = [i for i, x in enumerate(report.macs) if (a <= math.log(x) < b) or (k == 2 and math.log(x) >= b)
                   or (k == 0 and math.log(x) < a)]
            if len(idx) >= 2:
                acc = accuracy([report.predicted_ms[i] for i in idx], [m[i] for i in idx])
                cov = (100.0 * float(np.mean([report.low_ms[i] <= m[i] <= report.high_ms[i] for i in idx]))
                       if report.low_ms else None)
                report.thirds.append({"macs_range": [int(math.exp(a)), int(math.exp(b))], "n": len(idx),
                                      "measured_ms_range": [min(m[i] for i in idx), max(m[i] for i in idx)],
                                      **{k2: acc.to_dict()[k2] for k2 in ("mape_pct", "within_5_pct", "within_10_pct",
                                                                        "kendall_tau", "mean_error_pct")},
                                      "interval_coverage_pct": cov})


def split_by_range(zennets: list, low: float, high: float, resolution: int, num_classes: int) -> tuple[list, list[str]]:
    """The official ZenNets (``sampling.official_networks``) inside a table's profiled MACs range, and the names of
    those outside it (validating them would time networks the table does not claim to cover: at 224x224 the
    largest ResNet-space ZenNet is 22G MACs)."""
    from ..cost import network_cost

    inside: list = []
    outside: list = []
    for z in zennets:
        _, blocks, se, _ = z
        macs = network_cost(blocks, resolution, num_classes=num_classes, se=se).macs
        (inside if low <= macs <= high else outside).append(z)
    if outside:
        log.info("official ZenNets outside the table's %s-%s MACs, not validated: %s", _macs(low), _macs(high),
                 ", ".join(z[0] for z in outside))
    return inside, [z[0] for z in outside]


def validate_table(table_path: str | Path, *, samples: int = 50, passes: int = 5, seed: int = VALIDATION_SEED,
                   threads: int | None = None, plot_path: str | Path | None = None, workdir: Path | None = None,
                   progress: Progress | None = None, official: bool = True, anchor: int = 0) -> ValidationReport:
    """Measure the held-out networks and compare. ``anchor`` > 0: that many of the table's calibration networks are
    measured in the same shuffled passes and the table is re-anchored on them before predicting (what a search
    with ``--anchor`` does), so the report shows the table as a search on this host uses it; the as-built figures
    stay beside it."""
    import time

    from .anchor import anchor_structures, check_anchorable_here, clear_anchor, fit_anchor, host_state

    from ..cost import network_cost
    from .sampling import official_networks, sample_validation_networks

    t0 = time.perf_counter()
    table = load_table(table_path)
    prov = table.provenance
    backend = backend_for(table, threads=threads)
    space = space_of(table)
    res, classes = table.space.resolution, table.space.num_classes
    dataset = table.space.dataset or space.dataset_for(res)
    excluded = table.calibration.structures if table.calibration else []
    zennets = official_networks(space, res) if official else []
    low, high = table.space.min_macs, table.space.max_macs  # the range the table was profiled over
    outside: list[str] = []
    if low is not None and high is not None:  # a ZenNet the table does not cover is refused by coverage, not timed
        zennets, outside = split_by_range(zennets, low, high, res, classes)
        nets = sample_validation_networks(space, dataset, samples, resolution=res, seed=seed, min_macs=low,
                                          max_macs=high, num_classes=classes, exclude=excluded)
        sampler = "sample_validation_networks (mutation walks from the ZenNets and the initial structure)"
    else:  # a table without a recorded range
        nets = sample_networks(space, dataset, samples, resolution=res, seed=seed, num_classes=classes,
                               exclude=excluded)
        sampler = "sample_networks (random walks from the initial structure)"
    names = [n for n, _, _, _ in zennets] + [""] * len(nets)
    ses = [se for _, _, se, _ in zennets] + [space.se] * len(nets)
    nets = [b for _, b, _, _ in zennets] + nets
    anchors: list[str] = []
    if anchor:
        check_anchorable_here(table, backend)  # refuses another backend setup; warns on another CPU (a transfer)
        anchors = anchor_structures(table, anchor)
    work = Path(workdir or Path(table_path).with_name(Path(table_path).name + ".validate"))
    measured = measure_networks(backend, nets + [parse_structure(a) for a in anchors], res, num_classes=classes,
                                passes=passes, workdir=work, progress=progress, se=ses + [False] * len(anchors))
    measured, anchor_ms = measured[:len(nets)], measured[len(nets):]
    as_built = None
    if anchors:
        built = LatencyPredictor(clear_anchor(table))
        as_built = accuracy([built.predict(b, res, se=se).batch_latency_ms for b, se in zip(nets, ses)], measured)
        table = fit_anchor(table, anchors, anchor_ms, host=host_state())
    predictor = LatencyPredictor(table)
    preds = [predictor.predict(b, res, se=se) for b, se in zip(nets, ses)]
    per = float(prov.batch)
    raw = [p.raw_sum_ms for p in preds]
    cal = [p.batch_latency_ms for p in preds]  # measured per batch
    report = ValidationReport(
        table=str(table_path), device=prov.device, backend=prov.backend, samples=len(nets),
        raw=accuracy(raw, measured), calibrated=accuracy(cal, measured) if table.calibration else None,
        structures=[format_structure(b) for b in nets], measured_ms=measured, predicted_raw_ms=raw,
        predicted_ms=cal, measured_share=[p.measured_share for p in preds], seconds=time.perf_counter() - t0,
        names=names, macs=[network_cost(b, res, num_classes=classes, se=se).macs for b, se in zip(nets, ses)],
        low_ms=[p.low_ms * per for p in preds], high_ms=[p.high_ms * per for p in preds], sampler=sampler,
        as_built=as_built, anchor=_anchor_record(table) if anchors else {}, official_outside=outside,
    )
    _summarise(report, table)
    if plot_path:
        report.plot = str(plot_validation(report, plot_path))
    return report


def _anchor_record(table: LatencyTable) -> dict:
    a = table.anchor
    if a is None:
        return {}
    return {"networks": len(a.structures), "speed_ratio": a.speed_ratio, "date": a.date, "method": a.method,
            "loo_mape_pct": dict(a.loo_mape_pct), "structures": list(a.structures), "measured_ms": list(a.measured_ms)}


def revalidate(report: ValidationReport, table_path: str | Path, *,
               plot_path: str | Path | None = None) -> ValidationReport:
    """``report``'s measured networks predicted again from the table at ``table_path`` (after a refit): the same
    measurements, nothing timed. A report of ``validate --anchor`` re-anchors the table on its own anchor
    measurements first."""
    from .anchor import clear_anchor, fit_anchor

    table = load_table(table_path)
    as_built = None
    if report.anchor.get("structures"):
        built = LatencyPredictor(clear_anchor(table))
        ses0 = [get_zoo(n).se if n else space_of(table).se for n in report.names]
        as_built = accuracy([built.predict(parse_structure(s), table.space.resolution, se=se).batch_latency_ms
                             for s, se in zip(report.structures, ses0)], report.measured_ms)
        table = fit_anchor(table, report.anchor["structures"], report.anchor["measured_ms"],
                           date=report.anchor.get("date"))
    predictor = LatencyPredictor(table)
    space = space_of(table)
    ses = [get_zoo(n).se if n else space.se for n in report.names] or [space.se] * len(report.structures)
    preds = [predictor.predict(parse_structure(s), table.space.resolution, se=se)
             for s, se in zip(report.structures, ses)]
    raw = [p.raw_sum_ms for p in preds]
    cal = [p.batch_latency_ms for p in preds]  # measured per batch
    new = ValidationReport(
        table=str(table_path), device=report.device, backend=report.backend, samples=report.samples,
        raw=accuracy(raw, report.measured_ms),
        calibrated=accuracy(cal, report.measured_ms) if table.calibration else None,
        structures=list(report.structures), measured_ms=list(report.measured_ms), predicted_raw_ms=raw,
        predicted_ms=cal, measured_share=[p.measured_share for p in preds], seconds=report.seconds,
        names=list(report.names), macs=list(report.macs), sampler=report.sampler,
        low_ms=[p.low_ms * table.provenance.batch for p in preds] if report.names else [],
        high_ms=[p.high_ms * table.provenance.batch for p in preds] if report.names else [],
        as_built=as_built, anchor=_anchor_record(table) if as_built is not None else {},
        official_outside=list(report.official_outside),
    )
    _summarise(new, table)
    if plot_path:
        new.plot = str(plot_validation(new, plot_path))
    return new


def load_report(path: str | Path) -> ValidationReport:
    """Read a ``.validation.json`` written by :func:`save_report` (a clear error when it is not one)."""
    from ..errors import LatencyTableError

    p = Path(path)
    try:
        data = json.loads(p.read_text())
        data["raw"] = AccuracyReport(**data["raw"])
        data["calibrated"] = AccuracyReport(**data["calibrated"]) if data.get("calibrated") else None
        data["as_built"] = AccuracyReport(**data["as_built"]) if data.get("as_built") else None
        return ValidationReport(**data)
    except FileNotFoundError:
        raise LatencyTableError(f"validation report '{p}' does not exist") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LatencyTableError(f"'{p}' is not a validation report written by zendeploy "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def plot_validation(report: ValidationReport, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    m = report.measured_ms
    ax.scatter(m, report.predicted_raw_ms, s=14, alpha=0.5, label=f"sum of units (MAPE {report.raw.mape_pct:.1f}%)")
    if report.calibrated:
        how = (f"re-anchored on {report.anchor['networks']} networks: {report.anchor.get('method')}"
               if report.anchor.get("networks")
               else "calibrated")
        ax.scatter(m, report.predicted_ms, s=18, alpha=0.8, label=f"{how} (MAPE {report.calibrated.mape_pct:.1f}%)")
    zoo = [i for i, n in enumerate(report.names) if n]
    if zoo:
        ax.scatter([m[i] for i in zoo], [report.predicted_ms[i] for i in zoo], s=60, facecolors="none",
                   edgecolors="red", label="official ZenNets (calibrated)")
    lo, hi = min(m + report.predicted_raw_ms) * 0.8, max(m + report.predicted_raw_ms) * 1.25
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey", alpha=0.15, label="+-10%")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    ax.set_title(f"{report.device} / {report.backend}: {report.samples} held-out networks", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def save_report(report: ValidationReport, path: str | Path) -> Path:
    return atomic_write_text(path, json.dumps(report.to_dict(), indent=1) + "\n")
