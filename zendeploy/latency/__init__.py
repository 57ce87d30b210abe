"""Latency lookup tables: measure units on a device, predict networks, validate predictions.

Public API: :func:`load_table`, :func:`load_predictor`, :class:`LatencyPredictor`, :func:`make_backend`,
:func:`list_devices`, :func:`plan_profile`, :func:`profile_table`.
"""

from .predict import LatencyPrediction, LatencyPredictor, load_predictor
from .schema import LatencyTable
from .tables import load_table, save_table


def __getattr__(name):
    if name in ("make_backend", "list_devices", "DEVICES"):
        from . import backends

        return getattr(backends, name)
    if name in ("plan_profile", "profile_table", "ProfileSettings", "measure_networks"):
        from . import profile

        return getattr(profile, name)
    raise AttributeError(name)


__all__ = ["LatencyPrediction", "LatencyPredictor", "LatencyTable", "load_predictor", "load_table", "save_table",
           "make_backend", "list_devices", "plan_profile", "profile_table", "measure_networks"]
