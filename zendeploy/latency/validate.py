"""Validate a latency table: measure held-out networks end to end and compare with the table's predictions.

Reports, raw (sum of units) and calibrated side by side: MAPE, share within +-5 % and +-10 %, Kendall tau, and the
budget-violation rate at the median measured latency (of the networks predicted under that budget, the share that
measure over it). Saves a predicted-vs-measured scatter plot.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..space.structure import format_structure, parse_structure
from .backends import make_backend
from .calibrate import AccuracyReport, accuracy
from .predict import LatencyPredictor
from .profile import measure_networks
from .sampling import VALIDATION_SEED, sample_networks
from .schema import LatencyTable, atomic_write_text, load_table


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

    def to_dict(self) -> dict:
        return asdict(self)


def space_of(table: LatencyTable):
    """Rebuild the search space a table was profiled for (built-in name or the definition stored in the table)."""
    from ..search.spaces import load_space, space_from_dict

    if table.space.definition:
        return space_from_dict(table.space.definition)
    return load_space(table.space.name)


def validate_table(table_path: str | Path, *, samples: int = 30, passes: int = 5, seed: int = VALIDATION_SEED,
                   threads: int | None = None, plot_path: str | Path | None = None, workdir: Path | None = None,
                   progress: Callable | None = None) -> ValidationReport:
    import time

    t0 = time.perf_counter()
    table = load_table(table_path)
    prov = table.provenance
    backend = make_backend(prov.device, batch=prov.batch, threads=threads or prov.threads or 1,
                           precision=prov.precision)
    space = space_of(table)
    dataset = table.space.dataset or space.dataset_for(table.space.resolution)
    excluded = table.calibration.structures if table.calibration else []
    nets = sample_networks(space, dataset, samples, resolution=table.space.resolution, seed=seed,
                           max_macs=table.space.max_macs, num_classes=table.space.num_classes, exclude=excluded)
    work = Path(workdir or Path(table_path).with_name(Path(table_path).name + ".validate"))
    measured = measure_networks(backend, nets, table.space.resolution, num_classes=table.space.num_classes,
                                passes=passes, workdir=work, progress=progress)
    predictor = LatencyPredictor(table)
    preds = [predictor.predict(b, table.space.resolution) for b in nets]
    raw = [p.raw_sum_ms for p in preds]
    cal = [p.batch_latency_ms for p in preds]  # measured per batch
    report = ValidationReport(
        table=str(table_path), device=prov.device, backend=prov.backend, samples=len(nets),
        raw=accuracy(raw, measured), calibrated=accuracy(cal, measured) if table.calibration else None,
        structures=[format_structure(b) for b in nets], measured_ms=measured, predicted_raw_ms=raw,
        predicted_ms=cal, measured_share=[p.measured_share for p in preds], seconds=time.perf_counter() - t0,
    )
    if plot_path:
        report.plot = str(plot_validation(report, plot_path))
    return report


def revalidate(report: ValidationReport, table_path: str | Path, *,
               plot_path: str | Path | None = None) -> ValidationReport:
    """``report``'s measured networks predicted again from the table at ``table_path`` (after a refit): the same
    measurements, nothing timed."""
    table = load_table(table_path)
    predictor = LatencyPredictor(table)
    preds = [predictor.predict(parse_structure(s), table.space.resolution) for s in report.structures]
    raw = [p.raw_sum_ms for p in preds]
    cal = [p.batch_latency_ms for p in preds]  # measured per batch
    new = ValidationReport(
        table=str(table_path), device=report.device, backend=report.backend, samples=report.samples,
        raw=accuracy(raw, report.measured_ms),
        calibrated=accuracy(cal, report.measured_ms) if table.calibration else None,
        structures=list(report.structures), measured_ms=list(report.measured_ms), predicted_raw_ms=raw,
        predicted_ms=cal, measured_share=[p.measured_share for p in preds], seconds=report.seconds,
    )
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
    ax.scatter(m, report.predicted_raw_ms, s=18, alpha=0.6, label=f"sum of units (MAPE {report.raw.mape_pct:.1f}%)")
    if report.calibrated:
        ax.scatter(m, report.predicted_ms, s=18, alpha=0.8,
                   label=f"calibrated (MAPE {report.calibrated.mape_pct:.1f}%)")
    lo, hi = min(m + report.predicted_raw_ms) * 0.9, max(m + report.predicted_raw_ms) * 1.1
    ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
    ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="grey", alpha=0.15, label="+-10%")
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
