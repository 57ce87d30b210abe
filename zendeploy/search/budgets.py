"""Budgets (layers, parameters, MACs, predicted latency), checked before a candidate is scored.

Order and comparison follow the official loop: layers, then model size, then FLOPs, then latency; a candidate is
rejected when ``budget < value`` (a value equal to the budget passes). Costs come from :mod:`zendeploy.cost` (exact
analytic MACs / parameters, counted as the deployed network: residual links, the classifier head, SE when the space
says so). Latency comes from a latency-table predictor (microseconds per check), never from timing candidates:
``prediction.latency_ms + margin * prediction.sigma_ms <= budget``, in milliseconds per image at the table's batch size.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional, Protocol, Sequence, runtime_checkable

from ..cost import format_count, network_cost
from ..errors import BudgetError, StructureError
from ..space.mutation import rechain
from ..space.registry import BLOCK_TYPES, CONV
from ..space.spaces import SearchSpace
from ..space.structure import BlockSpec, num_layers


@runtime_checkable
class LatencyPrediction(Protocol):
    latency_ms: float
    sigma_ms: float
    low_ms: float
    high_ms: float

    def to_dict(self) -> dict: ...


@runtime_checkable
class PredictsLatency(Protocol):
    """What the search needs of ``zendeploy.latency.load_predictor(table)``: ``predict`` in ms per image."""

    device: str

    def predict(self, blocks: Sequence[BlockSpec], resolution: int, *, se: bool = False) -> LatencyPrediction: ...


_COUNT = re.compile(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGbBtT]?)\s*")
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "b": 1e9, "t": 1e12}


def parse_count(value: Any, what: str = "count") -> int:
    """'400M' -> 400_000_000, '5M', '1.2G' (or '1.2B'), '500K', '2e6', 3000000."""
    if isinstance(value, bool):
        raise BudgetError(f"{what} budget must be a number like 400M, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        m = _COUNT.fullmatch(str(value))
        if not m:
            raise BudgetError(f"{what} budget '{value}' is not a count like 400M, 5M, 1.2G, 500K or 2e6")
        number = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not math.isfinite(number) or number <= 0:
        raise BudgetError(f"{what} budget must be positive, got {value!r}")
    return int(round(number))


@dataclass(frozen=True)
class Budgets:
    """Resource budgets; None means unconstrained. ``macs`` is what ZenNAS calls FLOPs (multiply-accumulates)."""

    macs: Optional[int] = None
    params: Optional[int] = None
    layers: Optional[int] = None
    latency_ms: Optional[float] = None  # ms per image at the latency table's batch size
    latency_margin: float = 0.0  # enforce prediction + margin * sigma <= latency_ms

    def __post_init__(self):
        for name in ("macs", "params", "layers"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise BudgetError(f"{name} budget must be a positive integer, got {v!r}")
        if self.latency_ms is not None and not (isinstance(self.latency_ms, (int, float))
                                                and math.isfinite(self.latency_ms) and self.latency_ms > 0):
            raise BudgetError(f"latency budget must be a positive number of milliseconds, got {self.latency_ms!r}")
        if not (isinstance(self.latency_margin, (int, float)) and math.isfinite(self.latency_margin)
                and self.latency_margin >= 0):
            raise BudgetError(f"latency margin must be a non-negative number of sigmas, got {self.latency_margin!r}")

    @classmethod
    def parse(cls, *, flops=None, macs=None, params=None, layers=None, latency_ms=None, latency_margin=0.0):
        """Budgets from user text: ``flops``/``macs`` and ``params`` as counts ('400M'), latency in ms."""
        if flops is not None and macs is not None:
            raise BudgetError("give the MACs budget once (--flops and --macs are the same budget)")
        m = flops if flops is not None else macs
        lat = None
        if latency_ms is not None:
            try:
                lat = float(latency_ms)
            except (TypeError, ValueError):
                raise BudgetError(f"latency budget '{latency_ms}' is not a number of milliseconds") from None
        if layers is not None and (isinstance(layers, bool) or int(layers) != layers or layers < 1):
            raise BudgetError(f"layers budget must be a positive integer, got {layers!r}")
        return cls(
            macs=parse_count(m, "MACs (FLOPs)") if m is not None else None,
            params=parse_count(params, "params") if params is not None else None,
            layers=int(layers) if layers is not None else None,
            latency_ms=lat,
            latency_margin=float(latency_margin or 0.0),
        )

    @property
    def constrains_size(self) -> bool:
        return any(v is not None for v in (self.macs, self.params, self.latency_ms))

    def describe(self, *, latency_batch: int | None = None, device: str | None = None) -> dict:
        """The budgets with their units, for reports."""
        d: dict[str, Any] = {}
        if self.macs is not None:
            d["macs"] = {"value": self.macs, "unit": "multiply-accumulates (ZenNAS 'FLOPs')", "text":
                         format_count(self.macs)}
        if self.params is not None:
            d["params"] = {"value": self.params, "unit": "parameters", "text": format_count(self.params)}
        if self.layers is not None:
            d["layers"] = {"value": self.layers, "unit": "sum of sub_layers (official ZenNAS layers)"}
        if self.latency_ms is not None:
            batch = f" at batch {latency_batch}" if latency_batch else ""
            dev = f" on {device}" if device else ""
            d["latency"] = {"value": self.latency_ms, "unit": f"ms per image{batch}{dev} (predicted from the table)",
                            "margin_sigmas": self.latency_margin,
                            "rule": "prediction + margin * sigma <= budget"}
        return d

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Check:
    """The verdict on one candidate. ``kind`` names the first budget it broke (None when ok)."""

    ok: bool
    kind: Optional[str] = None  # 'layers' | 'params' | 'macs' | 'latency' | 'invalid'
    reason: Optional[str] = None
    layers: int = 0
    params: Optional[int] = None
    macs: Optional[int] = None
    latency: Optional[dict] = None  # prediction.to_dict() (+ 'latency_ms', 'sigma_ms' always present)
    extra: dict = field(default_factory=dict)


def predict_kwargs(predictor, *, se: bool, num_classes: int) -> dict:
    """Keyword arguments for ``predictor.predict``: ``se`` always, ``num_classes`` when the predictor takes it (the
    classifier head is part of the latency)."""
    if predictor is None:
        return {}
    kwargs: dict[str, Any] = {"se": se}
    try:
        params = inspect.signature(predictor.predict).parameters
    except (TypeError, ValueError):
        return kwargs
    if "num_classes" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs["num_classes"] = num_classes
    return kwargs


def predictor_batch(predictor) -> int | None:
    """The batch size a predictor's table was measured at (``batch`` or ``batch_size``), if it says."""
    if predictor is None:
        return None
    for name in ("batch", "batch_size"):
        value = getattr(predictor, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


# What a candidate record keeps of a prediction (the report of the chosen network keeps everything).
LATENCY_KEYS = ("latency_ms", "sigma_ms", "low_ms", "high_ms", "batch_latency_ms", "calibrated", "n_units",
                "measured_units", "interpolated_units", "extrapolated_units", "measured_share", "outside", "source")


def check_table(predictor, *, space_name: str, resolution: int, num_classes: int, budgets: "Budgets") -> None:
    """Refuse, before any work, a latency table that cannot back this search: one of another space, resolution or
    class count, or a latency budget outside the range of networks the table was calibrated on."""
    table = getattr(predictor, "table", None)
    if table is None:  # a predictor of another kind (a user's): nothing to check it against
        return
    t = table.space
    path = getattr(predictor, "path", None) or "the latency table"
    for what, have, want in (("space", t.name, space_name), ("resolution", t.resolution, resolution),
                             ("class count", t.num_classes, num_classes)):
        if have != want:
            raise BudgetError(f"{path} was profiled for {what} {have}, this search uses {want}; profile a table for "
                              f"it (zendeploy profile --device {table.provenance.device} --space {space_name} --res "
                              f"{resolution}{' --num-classes ' + str(num_classes) if what == 'class count' else ''})")
    cov = getattr(predictor, "coverage", None) or table.coverage
    if budgets.latency_ms is None or cov is None or cov.network_latency_ms is None:
        return
    batch = float(table.provenance.batch)
    lo, hi = cov.network_latency_ms[0] / batch, cov.network_latency_ms[1] / batch
    extend = (f"zendeploy profile --device {table.provenance.device} --space {space_name} --res {resolution} "
              f"--batch {table.provenance.batch}")
    if budgets.latency_ms < lo:
        raise BudgetError(f"latency budget {budgets.latency_ms:g} ms per image is below the fastest network {path} "
                          f"was calibrated on ({lo:.4g} ms; covered {lo:.4g}-{hi:.4g} ms per image); extend it to "
                          f"smaller networks with {extend} --min-macs ...")
    if budgets.latency_ms > hi:
        raise BudgetError(f"latency budget {budgets.latency_ms:g} ms per image is beyond the slowest network {path} "
                          f"was calibrated on ({hi:.4g} ms; covered {lo:.4g}-{hi:.4g} ms per image); extend it with "
                          f"{extend} --max-macs ...")


class BudgetChecker:
    """Checks candidates against budgets at one resolution (costs with the space's SE flag and ``num_classes``)."""

    def __init__(self, budgets: Budgets, resolution: int, *, num_classes: int = 1000, se: bool = False,
                 predictor: PredictsLatency | None = None):
        if budgets.latency_ms is not None and predictor is None:
            raise BudgetError("a latency budget needs a latency table (predictor); latency is never timed during "
                              "the search")
        self.budgets = budgets
        self.resolution = resolution
        self.num_classes = num_classes
        self.se = se
        self.predictor = predictor
        self._predict_kwargs = predict_kwargs(predictor, se=se, num_classes=num_classes)
        try:
            self._takes_macs = predictor is not None and "macs" in inspect.signature(predictor.predict).parameters
        except (TypeError, ValueError):
            self._takes_macs = False
        # on_outside(blocks, reasons) -> bool: a candidate with a latency budget whose prediction lies outside the
        # table's coverage is rejected ('coverage') unless this extends the table so that it lies inside (True: e.g.
        # ``zendeploy.latency.ondemand.OnDemandUnits`` timed its missing units on this host).
        self.on_outside: Callable[..., bool] | None = None

    def latency_of(self, blocks: Sequence[BlockSpec], *, full: bool = False, macs: int | None = None) -> dict:
        """The prediction as a dict: the interval and the unit counts (``full``: everything ``to_dict`` gives)."""
        kwargs = dict(self._predict_kwargs)
        if macs is not None and self._takes_macs:
            kwargs["macs"] = macs
        assert self.predictor is not None  # latency_of is only asked with a table
        p = self.predictor.predict(tuple(blocks), self.resolution, **kwargs)
        d = dict(p.to_dict()) if hasattr(p, "to_dict") else {}
        if not full:
            d = {k: v for k, v in d.items() if k in LATENCY_KEYS}
        d["latency_ms"] = float(p.latency_ms)
        d["sigma_ms"] = float(p.sigma_ms)
        for k in ("low_ms", "high_ms"):
            if hasattr(p, k):
                d[k] = float(getattr(p, k))
        return d

    def _latency_or_gap(self, blocks: Sequence[BlockSpec], macs: int) -> dict:
        """The prediction, or (a unit family the table never measured) a record naming the gap, never a number."""
        from ..errors import LatencyTableError

        try:
            return self.latency_of(blocks, macs=macs)
        except LatencyTableError as exc:
            return {"outside": [str(exc).split(";")[0]]}

    def check(self, blocks: Sequence[BlockSpec]) -> Check:
        b = self.budgets
        layers = num_layers(blocks)
        if b.layers is not None and b.layers < layers:
            return Check(False, "layers", f"layers {layers} > {b.layers}", layers)
        try:
            cost = network_cost(blocks, self.resolution, num_classes=self.num_classes, se=self.se)
        except StructureError as exc:
            return Check(False, "invalid", str(exc), layers)
        if b.params is not None and b.params < cost.params:
            return Check(False, "params", f"params {format_count(cost.params)} > {format_count(b.params)}", layers,
                         cost.params, cost.macs)
        if b.macs is not None and b.macs < cost.macs:
            return Check(False, "macs", f"MACs {format_count(cost.macs)} > {format_count(b.macs)}", layers,
                         cost.params, cost.macs)
        latency = None
        if self.predictor is not None:
            latency = self._latency_or_gap(blocks, cost.macs)
            if latency.get("outside") and b.latency_ms is not None:
                if self.on_outside is not None and self.on_outside(blocks, latency["outside"]):
                    latency = self._latency_or_gap(blocks, cost.macs)  # the table now holds the missing units
                if latency.get("outside"):
                    return Check(False, "coverage", "outside the table's coverage: " + "; ".join(latency["outside"]),
                                 layers, cost.params, cost.macs, latency)
            if b.latency_ms is not None:
                bound = latency["latency_ms"] + b.latency_margin * latency["sigma_ms"]
                if b.latency_ms < bound:
                    margin = f" + {b.latency_margin:g} sigma" if b.latency_margin else ""
                    return Check(False, "latency", f"latency {bound:.4g} ms (prediction{margin}) > "
                                 f"{b.latency_ms:g} ms", layers, cost.params, cost.macs, latency)
        return Check(True, None, None, layers, cost.params, cost.macs, latency)


def smallest_structures(space: SearchSpace, blocks: Sequence[BlockSpec], resolution: int, *,
                        num_classes: int, se: bool) -> list[tuple[BlockSpec, ...]]:
    """Lower-bound structures reachable by mutation: every changeable width at the space's minimum, sub_layers 1.

    Strides and the number of blocks never change, and frozen 1x1 convs keep their width. Returns the MACs-cheapest
    and the params-cheapest choice of block type per block, and one structure per block type (for latency).
    """
    lo = space.min_channels

    def build(pick) -> tuple[BlockSpec, ...]:
        out = []
        for i, b in enumerate(blocks):
            if BLOCK_TYPES.get(b.name).family == CONV:
                width = b.out_channels if (space.freeze_1x1_conv and b.kernel == 1) else lo
                out.append(BlockSpec(b.name, b.in_channels, width, b.stride, 1, None))
            else:
                out.append(BlockSpec(pick(i), b.in_channels, lo, b.stride, 1, lo))
        return tuple(rechain(out))

    types = space.block_types
    per_type = [build(lambda i, t=t: t) for t in types]
    # MACs / params are separable per block once every width is at the minimum: choose the cheapest type per block.
    costs = [network_cost(s, resolution, num_classes=num_classes, se=se) for s in per_type]
    res_blocks = [i for i, b in enumerate(blocks) if BLOCK_TYPES.get(b.name).family != CONV]

    def cheapest(metric: str):
        choice = {i: min(range(len(types)), key=lambda t: getattr(costs[t].blocks[i], metric)) for i in res_blocks}
        return build(lambda i: types[choice[i]])

    return [cheapest("macs"), cheapest("params")] + per_type


def check_feasible(space: SearchSpace, blocks: Sequence[BlockSpec], budgets: Budgets, resolution: int, *,
                   num_classes: int, se: bool, predictor: PredictsLatency | None = None) -> dict:
    """Raise BudgetError when even the smallest network of the space breaks a budget; return its costs otherwise."""
    cands = smallest_structures(space, blocks, resolution, num_classes=num_classes, se=se)
    costs = [network_cost(s, resolution, num_classes=num_classes, se=se) for s in cands]
    min_layers = len(blocks)
    min_macs = min(c.macs for c in costs)
    min_params = min(c.params for c in costs)
    where = f"the smallest network of space '{space.name}' at {resolution}x{resolution}"
    if budgets.layers is not None and budgets.layers < min_layers:
        raise BudgetError(f"infeasible layers budget: {where} has {min_layers} layers (one per block, "
                          f"{len(blocks)} blocks) > {budgets.layers}")
    if budgets.params is not None and budgets.params < min_params:
        raise BudgetError(f"infeasible params budget: {where} has {format_count(min_params)} parameters > "
                          f"{format_count(budgets.params)}")
    if budgets.macs is not None and budgets.macs < min_macs:
        raise BudgetError(f"infeasible MACs budget: {where} has {format_count(min_macs)} MACs > "
                          f"{format_count(budgets.macs)}")
    info: dict[str, Any] = {"layers": min_layers, "params": min_params, "macs": min_macs}
    if predictor is not None:
        preds = []
        kwargs = predict_kwargs(predictor, se=se, num_classes=num_classes)
        from ..errors import LatencyTableError

        gaps = []
        for s in cands:
            try:
                p = predictor.predict(s, resolution, **kwargs)
            except LatencyTableError as exc:  # a block type the table never measured: the search rejects those
                gaps.append(str(exc).split(";")[0])
                continue
            preds.append(float(p.latency_ms) + budgets.latency_margin * float(p.sigma_ms))
        if not preds:
            raise BudgetError(f"the latency table cannot predict even {where}: {gaps[0]}")
        info["latency_ms"] = min(preds)
        if budgets.latency_ms is not None and budgets.latency_ms < info["latency_ms"]:
            margin = f" (prediction + {budgets.latency_margin:g} sigma)" if budgets.latency_margin else ""
            raise BudgetError(f"infeasible latency budget: {where} is predicted at {info['latency_ms']:.4g} ms"
                              f"{margin} > {budgets.latency_ms:g} ms per image")
    return info
