"""Predict a network's latency from a table: units -> measured entry or interpolation -> sum -> calibration.

Every unit of the network is looked up by its key. A measured unit uses its measured latency (error bar: its spread
across passes). A unit that was not measured is *interpolated*: the family model (``latency/model.py``) predicts it,
and the model's residuals at the nearest measured units of the same signature (kind, kernels, stride, resolution, SE,
shortcut) correct that prediction, weighted by inverse distance in log-channel space. Its error bar is the model's
cross-validated relative error. A unit outside the channel or resolution range the family was measured over is an
*extrapolation*: allowed (and counted in the result) unless ``strict=True``, with its error bar doubled. A family the
table never measured is an error, never a silent 0.

Every prediction says whether the network lies inside the table's coverage (``latency/coverage.py``): its units'
kernels, strides, SE, resolutions and channels, and its MACs against the networks the calibration was fitted on;
``outside`` lists the reasons, and ``strict=True`` refuses such a network. Predictions are physical: never below the
fastest unit the table measured (a calibration with a negative intercept cannot predict 0 ms for a small network).

Units: ``latency_ms``, ``sigma_ms``, ``low_ms`` and ``high_ms`` are **ms per image** (the batch latency divided by the
table's batch); ``batch_latency_ms`` and ``raw_sum_ms`` are per batch, as the table measured them.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import LatencyTableError
from ..space.structure import BlockSpec
from ..space.units import Unit, network_units
from .calibrate import apply_calibration, weight_megabytes
from .model import fields_unit, model_predict, relative_sigma, unit_key
from .schema import LatencyTable
from .tables import load_table

Z_95 = 1.96


@dataclass
class UnitPrediction:
    key: str
    latency_ms: float
    sigma_ms: float
    origin: str  # measured | interpolated | extrapolated


@dataclass
class LatencyPrediction:
    latency_ms: float  # ms per image: calibrated when the table has a calibration, else the raw sum; / batch
    sigma_ms: float  # per image
    low_ms: float  # per image: latency_ms -/+ 1.96 sigma (95 % interval under normal errors)
    high_ms: float
    batch_latency_ms: float  # the same prediction per batch of ``batch`` images
    raw_sum_ms: float  # sum of the units' latencies, per batch
    boundary_melems: float  # activation elements (millions, per batch) entering and leaving the units
    weights_mb: float  # megabytes of weights the network reads per inference (the calibration's weights term)
    calibrated: bool
    n_units: int
    measured_units: int
    interpolated_units: int
    extrapolated_units: int
    measured_share: float  # share of the raw sum that comes from measured entries
    device: str
    backend: str
    batch: int
    precision: str
    outside: list[str] = field(default_factory=list)  # why the network lies outside the table's coverage
    floored: bool = False  # the calibrated value fell below the fastest measured unit and was raised to it
    units: list[UnitPrediction] = field(default_factory=list, repr=False)

    @property
    def inside(self) -> bool:
        return not self.outside

    @property
    def unit(self) -> str:
        return f"ms per image at batch {self.batch} on {self.device}"

    def to_dict(self, with_units: bool = False) -> dict:
        d = asdict(self)
        if not with_units:
            d.pop("units")
        return d


def _out_res(placed) -> int:
    return 1 if placed.unit.kind == "head" else -(-placed.resolution // placed.unit.stride)


def _signature(u: Unit, res: int) -> tuple:
    return (u.kind, u.kernel, u.kernel2 or u.kernel, u.stride, res, u.se, u.shortcut)


def _log_channels(u: Unit) -> np.ndarray:
    return np.log2([u.in_channels, u.mid_channels, u.out_channels])


class LatencyPredictor:
    """Predictions from one latency table. Cheap: microseconds per unit, cached per unit key."""

    path: str | None = None  # set by ``load_predictor``
    sha256: str | None = None
    anchor_sha256: str | None = None  # set by ``anchor.anchored_predictor``: the anchor measured for a search

    def __init__(self, table: LatencyTable, *, neighbours: int = 3):
        self.table = table
        p = table.provenance
        self.device, self.backend, self.batch, self.precision = p.device, p.backend, p.batch, p.precision
        self.neighbours = neighbours
        self._models = {m.family: m for m in table.unit_models}
        self._index()

    def _index(self) -> None:
        table = self.table
        self._entries = table.entry_map()
        self._by_signature: dict[tuple, list[tuple[np.ndarray, float]]] = {}
        self._ranges: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        per_family: dict[str, list[np.ndarray]] = {}
        for e in table.entries:
            u, r = fields_unit(e.unit)
            model = self._models.get(u.kind)
            if model is not None:
                ratio = e.latency_ms / model_predict(model, u, r)
                self._by_signature.setdefault(_signature(u, r), []).append((_log_channels(u), math.log(ratio)))
            per_family.setdefault(u.kind, []).append(np.array([u.in_channels, u.mid_channels, u.out_channels, r]))
        for fam, rows in per_family.items():
            a = np.stack(rows)
            self._ranges[fam] = (a.min(axis=0), a.max(axis=0))
        self._cache: dict[str, UnitPrediction] = {}
        self.floor_ms = min(e.latency_ms for e in table.entries)  # no network runs faster than the fastest unit
        from .coverage import compute_coverage

        self.coverage = compute_coverage(table) if table.coverage is None else table.coverage

    def add_entries(self, entries) -> None:
        """Entries measured after the table was written (``latency/ondemand.py``): used from now on, measured units
        exactly and their neighbours through the residual correction; the unit coverage grows with them (the
        range of calibrated networks does not)."""
        from .coverage import compute_coverage

        known = self.table.entry_map()
        new = [e for e in entries if e.key not in known]
        if not new:
            return
        self.table = self.table.model_copy(update={"entries": list(self.table.entries) + new})
        cov = compute_coverage(self.table.model_copy(update={"calibration": None}))
        old = self.coverage
        cov.networks, cov.network_macs, cov.network_latency_ms = old.networks, old.network_macs, old.network_latency_ms
        self.table.coverage = cov
        self._index()

    @property
    def resolution(self) -> int:
        return self.table.space.resolution

    def predict_unit(self, unit: Unit, resolution: int, *, strict: bool = False) -> UnitPrediction:
        key = unit_key(unit, resolution)
        hit = self._cache.get(key)
        if hit is not None:
            if strict and hit.origin == "extrapolated":
                raise LatencyTableError(f"unit {key} lies outside the range the table measured (strict mode)")
            return hit
        entry = self._entries.get(key)
        if entry is not None:
            spread = entry.std_ms if len(entry.pass_medians_ms) < 2 else float(np.std(entry.pass_medians_ms))
            pred = UnitPrediction(key, entry.latency_ms, max(spread, 0.01 * entry.latency_ms), "measured")
        else:
            model = self._models.get(unit.kind)
            if model is None and unit.kind in self._ranges:  # one entry of the family: too few for a model
                pred = self._scaled_nearest(unit, resolution, key)
                self._cache[key] = pred
                return pred
            if model is None:
                raise LatencyTableError(
                    f"table {self.device}/{self.backend} has no measurements for '{unit.kind}' units (needed for "
                    f"{key}); profile a table for a search space that contains them")
            base = model_predict(model, unit, resolution)
            neighbours = self._by_signature.get(_signature(unit, resolution), [])
            if neighbours:
                here = _log_channels(unit)
                dist = np.array([np.linalg.norm(here - c) for c, _ in neighbours])
                order = np.argsort(dist)[: self.neighbours]
                w = 1.0 / (dist[order] + 0.25)
                log_ratio = float(np.sum(w * np.array([neighbours[i][1] for i in order])) / np.sum(w))
                base *= math.exp(log_ratio)
            sigma_rel = relative_sigma(model.cv_rel_error)
            lo, hi = self._ranges[unit.kind]
            v = np.array([unit.in_channels, unit.mid_channels, unit.out_channels, resolution])
            origin = "interpolated"
            if np.any(v < lo) or np.any(v > hi):
                origin = "extrapolated"
                sigma_rel *= 2
                if strict:
                    raise LatencyTableError(f"unit {key} lies outside the range the table measured "
                                            f"(channels/resolution {v.tolist()} vs {lo.tolist()}..{hi.tolist()})")
            pred = UnitPrediction(key, base, base * sigma_rel, origin)
        self._cache[key] = pred
        return pred

    def _scaled_nearest(self, unit: Unit, resolution: int, key: str) -> UnitPrediction:
        """A family measured too sparsely for a model: its nearest entry scaled by the work features' sum (an
        extrapolation with a 50 % error bar; the coverage check names the gap)."""
        from .model import FEATURES, unit_features

        def work(u: Unit, r: int) -> float:
            f = unit_features(u, r)
            return sum(f.get(name, 0.0) for name in FEATURES[u.kind])

        same = [e for e in self.table.entries if e.unit.kind == unit.kind]
        here = _log_channels(unit)
        e = min(same, key=lambda e: float(np.linalg.norm(here - _log_channels(fields_unit(e.unit)[0]))))
        u0, r0 = fields_unit(e.unit)
        value = e.latency_ms * work(unit, resolution) / max(work(u0, r0), 1e-12)
        return UnitPrediction(key, value, 0.5 * value, "extrapolated")

    def predict(self, blocks: Sequence[BlockSpec], resolution: int | None = None, *, se: bool = False,
                num_classes: int | None = None, strict: bool = False, macs: int | None = None) -> LatencyPrediction:
        """The latency of ``blocks`` (``macs``: the network's MACs when the caller has them, for the coverage)."""
        from ..cost import network_cost
        from .coverage import check_network

        res = resolution or self.resolution
        classes = num_classes or self.table.space.num_classes
        placed = network_units(blocks, res, se=se, residual=True, num_classes=classes)
        cost = network_cost(blocks, res, num_classes=classes, se=se)
        if macs is None and self.coverage.network_macs is not None:
            macs = cost.macs
        outside = check_network(self.coverage, [(p.unit, p.resolution) for p in placed], macs)
        if strict and outside:
            raise LatencyTableError(f"outside the table's coverage (strict): {'; '.join(outside)}")
        units = [self.predict_unit(p.unit, p.resolution) for p in placed]
        raw = sum(u.latency_ms for u in units)
        measured = sum(u.latency_ms for u in units if u.origin == "measured")
        cal = self.table.effective_calibration()  # the anchor's, when the table was re-anchored to this host
        boundary = self.batch * sum(p.unit.in_channels * p.resolution ** 2
                                    + p.unit.out_channels * _out_res(p) ** 2 for p in placed) / 1e6
        weights = weight_megabytes(cost.params, self.precision)  # read once per inference (per batch)
        y = apply_calibration(cal, raw, len(units), boundary, weights)
        floored = y < self.floor_ms
        y = max(y, self.floor_ms)
        scale = (y / raw) if raw > 0 else 1.0
        var_units = sum((u.sigma_ms * scale) ** 2 for u in units)
        var_cal = (cal.rel_std * y) ** 2 if cal is not None else 0.0
        sigma = math.sqrt(var_units + var_cal)
        if not (math.isfinite(y) and math.isfinite(sigma)):  # a validated table cannot get here; never pass NaN on
            raise LatencyTableError(f"table {self.device}/{self.backend} predicted a non-finite latency ({y!r})")
        per = float(self.batch)
        return LatencyPrediction(
            latency_ms=y / per, sigma_ms=sigma / per, low_ms=max(y - Z_95 * sigma, self.floor_ms) / per,
            high_ms=(y + Z_95 * sigma) / per, batch_latency_ms=y,
            raw_sum_ms=raw, boundary_melems=boundary, weights_mb=weights, calibrated=cal is not None,
            n_units=len(units),
            measured_units=sum(u.origin == "measured" for u in units),
            interpolated_units=sum(u.origin == "interpolated" for u in units),
            extrapolated_units=sum(u.origin == "extrapolated" for u in units),
            measured_share=measured / raw if raw > 0 else 0.0,
            device=self.device, backend=self.backend, batch=self.batch, precision=self.precision, outside=outside,
            floored=floored, units=units,
        )


@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> LatencyPredictor:
    from profilers.common import file_sha256

    predictor = LatencyPredictor(load_table(path))
    predictor.path = path  # the table a search used, and its content hash, go into the search's fingerprint
    predictor.sha256 = file_sha256(path)
    return predictor


def load_predictor(path: str | os.PathLike) -> LatencyPredictor:
    """A predictor for the table at ``path`` (validated on load; cached while the file is unchanged)."""
    p = Path(path)
    if not p.is_file():
        raise LatencyTableError(f"latency table '{p}' does not exist")
    predictor = _load_cached(str(p.resolve()), p.stat().st_mtime)
    predictor.path = str(p)  # as the user gave it (messages, reports); the cache is keyed by the resolved path
    return predictor
