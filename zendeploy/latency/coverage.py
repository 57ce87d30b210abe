"""Where a latency table can be trusted: the region its measurements span, and whether a network lies inside it.

A table's coverage is derived from what it measured, never declared: per unit family the kernels, strides, input
resolutions, SE and shortcut variants and the channel ranges of its entries; and the range of whole networks (MACs,
end-to-end latency per batch, as measured when the table was built, also for a re-anchored table) its calibration
was fitted on. ``profile_table`` stores it in the table, and a table
written before coverage existed gets it computed on load, from the same fields.

``check_network`` lists, in one short line each, why a network lies outside (an empty list: inside). The predictor
puts the list into every prediction, ``latency predict`` prints it, and ``strict`` turns it into an error.
"""

from __future__ import annotations

from typing import Sequence

from .schema import Coverage, FamilyCoverage, LatencyTable


def _span(values) -> list[int]:
    values = list(values)
    return [min(values), max(values)]


def compute_coverage(table: LatencyTable) -> Coverage:
    """The coverage of ``table``'s entries and calibration networks."""
    from ..cost import network_cost
    from ..space.structure import parse_structure

    by_family: dict[str, list] = {}
    for e in table.entries:
        by_family.setdefault(e.unit.kind, []).append(e.unit)
    families = []
    for fam, units in sorted(by_family.items()):
        families.append(FamilyCoverage(
            family=fam, units=len(units), kernels=sorted({u.kernel for u in units}),
            kernels2=sorted({u.kernel2 or u.kernel for u in units}), strides=sorted({u.stride for u in units}),
            resolutions=sorted({u.resolution for u in units}), se=sorted({u.se for u in units}),
            shortcuts=sorted({u.shortcut for u in units}), in_channels=_span(u.in_channels for u in units),
            mid_channels=_span(u.mid_channels for u in units), out_channels=_span(u.out_channels for u in units)))
    cov = Coverage(families=families)
    cal = table.calibration
    if cal is not None and cal.structures:
        res, classes = table.space.resolution, table.space.num_classes
        macs = [network_cost(parse_structure(s), res, num_classes=classes).macs for s in cal.structures]
        cov.networks = len(macs)
        cov.network_macs = [min(macs), max(macs)]
        cov.network_latency_ms = [min(cal.measured_ms), max(cal.measured_ms)]
    return cov


def _fmt_count(n: float) -> str:
    from ..cost import format_count

    return format_count(int(n))


def check_units(coverage: Coverage, units: Sequence[tuple]) -> list[str]:
    """Why units ``(Unit, resolution)`` fall outside ``coverage`` (one reason per kind of gap, first unit named)."""
    fams = {f.family: f for f in coverage.families}
    reasons: dict[str, str] = {}

    def note(kind: str, text: str) -> None:
        reasons.setdefault(kind, text)

    for unit, res in units:
        f = fams.get(unit.kind)
        if f is None:
            note(f"family {unit.kind}", f"no '{unit.kind}' unit was measured")
            continue
        k2 = unit.kernel2 or unit.kernel
        if unit.kernel not in f.kernels or k2 not in f.kernels2:
            note(f"kernel {unit.kind}", f"{unit.kind} units with kernel {unit.kernel}x{k2} were never measured "
                                        f"(measured: {', '.join(map(str, f.kernels))})")
        if unit.stride not in f.strides:
            note(f"stride {unit.kind}", f"{unit.kind} units with stride {unit.stride} were never measured")
        if unit.se not in f.se:
            note(f"se {unit.kind}", f"{unit.kind} units {'with' if unit.se else 'without'} SE were never measured")
        if unit.shortcut not in f.shortcuts:
            note(f"shortcut {unit.kind}", f"{unit.kind} units with a {unit.shortcut} shortcut were never measured")
        if not (min(f.resolutions) <= res <= max(f.resolutions)):
            note(f"res {unit.kind}", f"{unit.kind} unit at {res}x{res} outside the measured "
                                     f"{min(f.resolutions)}..{max(f.resolutions)}")
        for name, value, (lo, hi) in (("input", unit.in_channels, f.in_channels),
                                      ("middle", unit.mid_channels, f.mid_channels),
                                      ("output", unit.out_channels, f.out_channels)):
            if not lo <= value <= hi:
                note(f"{name} {unit.kind}", f"{unit.kind} unit with {value} {name} channels outside the measured "
                                            f"{lo}..{hi}")
    return list(reasons.values())


def check_network(coverage: Coverage, units: Sequence[tuple], macs: int | None) -> list[str]:
    """Why a network (its placed units and MACs) falls outside ``coverage``; empty when it lies inside."""
    reasons = check_units(coverage, units)
    if macs is not None and coverage.network_macs is not None:
        lo, hi = coverage.network_macs
        if not lo <= macs <= hi:
            reasons.append(f"{_fmt_count(macs)} MACs outside the {_fmt_count(lo)}-{_fmt_count(hi)} MACs of the "
                           f"networks the calibration was fitted on")
    return reasons
