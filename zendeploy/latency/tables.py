"""Reading and writing latency tables: parse the JSON, validate it against the schema (``schema.py``) and against
this zendeploy's unit models, and compute the coverage of a table that does not store one. The one place that
knows the schema, the models and the coverage together (``schema.py`` itself depends on neither)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from ..errors import LatencyTableError, ZenDeployError
from ..io import atomic_write_text
from .coverage import compute_coverage
from .model import FEATURE_SETS
from .schema import SCHEMA_VERSION, LatencyTable, _describe_validation_error


def load_table(path: str | os.PathLike) -> LatencyTable:
    """Load and validate a table; any problem is a LatencyTableError naming the file and the field."""
    p = Path(path)
    if not p.is_file():
        raise LatencyTableError(f"latency table '{p}' does not exist")
    try:
        data = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LatencyTableError(f"latency table '{p}' is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LatencyTableError(f"latency table '{p}' must hold a JSON object")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise LatencyTableError(f"latency table '{p}' has schema_version {version!r}; this zendeploy reads "
                                f"{SCHEMA_VERSION}")
    try:
        table = LatencyTable.model_validate(data)
    except ValidationError as exc:
        raise LatencyTableError(f"latency table '{p}' is invalid: {_describe_validation_error(exc)}") from None
    keys = [e.key for e in table.entries]
    if len(set(keys)) != len(keys):
        raise LatencyTableError(f"latency table '{p}' has duplicate entry keys")
    if not table.entries:
        raise LatencyTableError(f"latency table '{p}' is invalid: entries: no measured unit (a table predicts "
                                f"from its entries)")
    measured = {e.unit.kind for e in table.entries}
    for m in table.unit_models:
        if m.family not in measured:
            raise LatencyTableError(f"latency table '{p}' is invalid: unit_models.{m.family}: no '{m.family}' "
                                    f"entry was measured for it")
    for m in table.unit_models:
        if m.features not in FEATURE_SETS.get(m.family, ()):
            raise LatencyTableError(f"latency table '{p}' is invalid: unit_models.{m.family}: features differ from "
                                    f"this zendeploy's (refit it with `zendeploy latency refit --table {p}`)")
    if table.coverage is None:
        try:
            table.coverage = compute_coverage(table)
        except ZenDeployError as exc:
            raise LatencyTableError(f"latency table '{p}' is invalid: calibration.structures: {exc}") from None
    return table


def save_table(table: LatencyTable, path: str | os.PathLike) -> Path:
    return atomic_write_text(path, json.dumps(table.model_dump(mode="json"), indent=1) + "\n")


def list_tables(folder: str | os.PathLike) -> list[dict]:
    """One row per table in ``folder`` (validation reports left out): its provenance, space and covered range, or
    ``{"path", "error"}`` for a file that does not load (the error's one line)."""
    rows: list[dict] = []
    for path in sorted(Path(folder).glob("*.json")):
        if path.name.endswith(".validation.json"):
            continue
        try:
            t = load_table(path)
        except LatencyTableError as exc:
            rows.append({"path": str(path), "error": str(exc)})
            continue
        p, cov = t.provenance, t.coverage
        rows.append({"path": str(path), "device": p.device, "device_name": p.device_name, "backend": p.backend,
                     "backend_version": p.backend_version, "precision": p.precision, "batch": p.batch,
                     "space": t.space.name, "resolution": t.space.resolution, "entries": len(t.entries),
                     "calibrated": t.calibration is not None, "date": p.date,
                     "anchored": t.anchor.date if t.anchor else None,
                     "covered_macs": cov.network_macs if cov else None,
                     "covered_ms_per_image": [v / p.batch for v in cov.network_latency_ms]
                     if cov and cov.network_latency_ms else None})
    return rows
