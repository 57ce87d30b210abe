"""Unit keys, unit features and the per-family least-squares latency model (interpolation over the measured grid).

No search space can be measured exhaustively (free channel widths: ~150k first-of-block units for one CIFAR space at
one resolution). A table therefore measures a grid of units and fits, per unit family, a linear model with
non-negative coefficients on work features: MACs split by conv shape and kernel (a 7x7 depthwise MAC does not cost what
a 1x1 MAC costs), the unfolded-input (im2col) elements of every KxK dense conv (memory traffic that does not shrink
with the output width: a 7x7 conv on 8 channels is far slower than its MACs say), activation elements read and
written, and per-call constants for the shortcut and SE variants. The
fit minimises *relative* error (rows weighted by 1 / latency). Its cross-validated relative error becomes the error
bar of every unit predicted from it (measured units carry their own spread).

Two effects that MACs alone miss have *extended* features, kept per family only when they lower its cross-validated
error (``fit_family`` fits both sets):

- partial channel tiles: CPU conv kernels compute output channels in tiles (16 floats on AVX-512 for ONNX Runtime's
  MLAS and XNNPACK alike), so a 40-channel conv costs part of a 48-channel one. ``pad_<feature>`` is the work the
  16-channel rounding adds to each MAC and im2col feature; a learned share of it is paid.
- weights outgrowing the cache: ``weights`` (millions of weight elements, read per call) and ``macs_wlog`` (MACs
  times log2 of the weights' megabytes above 1 MB: each output tile streams its weights again from a slower level).

Measured on the shipped tables' stored units (5-fold cross-validated relative error, before -> after, over the eight
tables): ResNet basic blocks 9.9-13.1 % -> 7.7-8.9 %, bottlenecks 8.2-11.8 % -> 5.0-8.9 %, the ResNet 224 convs
7.6-8.5 % -> 5.8-6.4 %, inverted residuals 2.3-11.4 % -> 1.9-10.0 %.
"""

from __future__ import annotations

import math
from typing import Sequence, cast

import numpy as np

from ..space.units import BASIC, BOTTLENECK, CONV, HEAD, IDENTITY, INVERTED, PROJ, Unit, iter_conv_layers, se_channels
from .schema import ChannelBlock, Entry, Shortcut, UnitFields, UnitKind, UnitModel

KERNELS = (1, 3, 5, 7)


def unit_key(unit: Unit, resolution: int) -> str:
    """Everything that changes a unit's latency within one table (batch, precision, layout are table-level)."""
    return (f"{unit.kind}|i{unit.in_channels}|o{unit.out_channels}|m{unit.mid_channels}|k{unit.kernel}"
            f"|k{unit.kernel2 or unit.kernel}|s{unit.stride}|r{resolution}|se{int(unit.se)}|{unit.shortcut}")


def unit_fields(unit: Unit, resolution: int) -> UnitFields:
    # a Unit's kind and shortcut are the schema's literals (space/units.py builds them from the same names)
    return UnitFields(kind=cast(UnitKind, unit.kind), in_channels=unit.in_channels, out_channels=unit.out_channels,
                      mid_channels=unit.mid_channels, kernel=unit.kernel, kernel2=unit.kernel2, stride=unit.stride,
                      se=unit.se, shortcut=cast(Shortcut, unit.shortcut), resolution=resolution)


def fields_unit(f: UnitFields) -> tuple[Unit, int]:
    return Unit(f.kind, f.in_channels, f.out_channels, f.mid_channels, f.kernel, f.stride, f.kernel2, f.se,
                f.shortcut), f.resolution


def _feature_names(family: str) -> list[str]:
    common = ["const", "act_in", "act_out"]
    if family == HEAD:
        return common + ["macs_linear"]
    cols = [f"col_k{k}" for k in KERNELS if k > 1]  # im2col elements of dense KxK convs
    if family == CONV:
        return common + [f"macs_k{k}" for k in KERNELS] + cols
    names = common + ["const_proj", "const_identity", "const_se", "act_mid", "macs_proj", "se_elems"]
    if family == BASIC:
        names += [f"macs_k{k}" for k in KERNELS if k > 1] + cols
    elif family == BOTTLENECK:
        names += ["macs_1x1"] + [f"macs_k{k}" for k in KERNELS if k > 1] + cols
    elif family == INVERTED:
        names += ["macs_1x1"] + [f"macs_dw{k}" for k in KERNELS if k > 1]
    return names


FEATURES = {f: _feature_names(f) for f in (CONV, BASIC, BOTTLENECK, INVERTED, HEAD)}


def _work_names(names: Sequence[str]) -> list[str]:
    return [n for n in names if n.startswith(("macs_", "col_")) and n != "macs_linear"]


def _extended_names(family: str) -> list[str]:
    base = FEATURES[family]
    if family == HEAD:  # a linear layer: no conv tiles, its weights are its MACs
        return base
    return base + [f"pad_{n}" for n in _work_names(base)] + ["weights", "macs_wlog"]


EXTENDED_FEATURES = {f: _extended_names(f) for f in FEATURES}
# the feature lists a table may carry, base first (the head has one)
FEATURE_SETS = {f: (FEATURES[f],) if EXTENDED_FEATURES[f] == FEATURES[f] else (FEATURES[f], EXTENDED_FEATURES[f])
                for f in FEATURES}
TILE = 16  # output-channel tile of the CPU conv kernels (the partial-tile features)
WEIGHTS_CACHED_MB = 1.0  # fp32 weights up to this size run at the measured speed (macs_wlog starts above it)
EXTENDED_MIN_ROWS = 3  # entries per feature below which a family keeps the base set

CHANNEL_BLOCKS = (1, 8, 16)  # candidate channel blocking of the backend's conv kernels (AVX2: 8, AVX-512: 16)


def blocked(unit: Unit, block: int) -> Unit:
    """``unit`` with its channel counts rounded up to a multiple of ``block`` (the network input's 3 channels stay):
    CPU conv kernels work on channel blocks (e.g. ONNX Runtime's NCHWc layout: 16 channels on AVX-512), so a 24-channel
    conv costs what a 32-channel one does."""
    if block <= 1:
        return unit
    up = lambda c: c if c <= 4 else -(-c // block) * block  # noqa: E731
    return Unit(unit.kind, up(unit.in_channels), up(unit.out_channels), up(unit.mid_channels), unit.kernel,
                unit.stride, unit.kernel2, unit.se, unit.shortcut)


def weight_elements(unit: Unit) -> int:
    """Weights of a unit's convs and linear layer (biases, BatchNorm and SE left out)."""
    i, o = unit.in_channels, unit.out_channels
    if unit.kind == HEAD:
        return i * o
    w = sum(c_in // groups * c_out * k * k for c_in, c_out, k, _, groups, _ in iter_conv_layers(unit))
    return w + (i * o if unit.shortcut == PROJ else 0)


def unit_features(unit: Unit, resolution: int, block: int = 1) -> dict[str, float]:
    """Work features of a unit at an input resolution (MACs in millions, activations in millions of elements), with
    channels counted in multiples of ``block``, plus the extended features (module docstring), which do not depend
    on ``block``."""
    if unit.kind == HEAD:
        return _work_features(blocked(unit, block), resolution)
    plain, tiled = _work_features(unit, resolution), _work_features(blocked(unit, TILE), resolution)
    f = dict(plain if block <= 1 else tiled if block == TILE else _work_features(blocked(unit, block), resolution))
    for name in _work_names(list(plain) + list(tiled)):
        f[f"pad_{name}"] = max(tiled.get(name, 0.0) - plain.get(name, 0.0), 0.0)
    weights = weight_elements(unit)
    f["weights"] = weights / 1e6
    macs = sum(v for name, v in plain.items() if name.startswith("macs_"))
    f["macs_wlog"] = macs * max(math.log2(weights * 4 / 1e6 / WEIGHTS_CACHED_MB), 0.0) if weights else 0.0
    return f


def _work_features(unit: Unit, resolution: int) -> dict[str, float]:
    r = resolution
    ro = -(-r // unit.stride) if unit.kind != HEAD else 1
    f: dict[str, float] = {"const": 1.0, "act_in": unit.in_channels * r * r / 1e6,
                           "act_out": unit.out_channels * ro * ro / 1e6}
    if unit.kind == HEAD:
        f["macs_linear"] = unit.in_channels * unit.out_channels / 1e6
        return f
    def add_col(k: int, channels: int) -> None:  # unfolded input of a dense KxK conv, in millions of elements
        if k > 1:
            f[f"col_k{k}"] = f.get(f"col_k{k}", 0.0) + channels * k * k * ro * ro / 1e6

    if unit.kind == CONV:
        f[f"macs_k{unit.kernel}"] = unit.in_channels * unit.out_channels * unit.kernel ** 2 * ro * ro / 1e6
        add_col(unit.kernel, unit.in_channels)
        return f
    m = unit.mid_channels
    f["const_proj"] = 1.0 if unit.shortcut == PROJ else 0.0
    f["const_identity"] = 1.0 if unit.shortcut == IDENTITY else 0.0
    f["const_se"] = 1.0 if unit.se else 0.0
    f["macs_proj"] = unit.in_channels * unit.out_channels * ro * ro / 1e6 if unit.shortcut == PROJ else 0.0
    f["se_elems"] = (m * ro * ro + 2 * m * se_channels(m)) / 1e6 if unit.se else 0.0
    if unit.kind == BASIC:
        f["act_mid"] = m * ro * ro / 1e6
        k1, k2 = unit.kernel, unit.kernel2 or unit.kernel
        f[f"macs_k{k1}"] = f.get(f"macs_k{k1}", 0.0) + unit.in_channels * m * k1 * k1 * ro * ro / 1e6
        f[f"macs_k{k2}"] = f.get(f"macs_k{k2}", 0.0) + m * unit.out_channels * k2 * k2 * ro * ro / 1e6
        add_col(k1, unit.in_channels)
        add_col(k2, m)
    elif unit.kind == BOTTLENECK:
        f["act_mid"] = m * (r * r + 2 * ro * ro) / 1e6
        f["macs_1x1"] = (unit.in_channels * m * r * r + m * unit.out_channels * ro * ro) / 1e6
        f[f"macs_k{unit.kernel}"] = m * m * unit.kernel ** 2 * ro * ro / 1e6
        add_col(unit.kernel, m)
    elif unit.kind == INVERTED:
        f["act_mid"] = m * (r * r + 2 * ro * ro) / 1e6
        f["macs_1x1"] = (unit.in_channels * m * r * r + m * unit.out_channels * ro * ro) / 1e6
        f[f"macs_dw{unit.kernel}"] = m * unit.kernel ** 2 * ro * ro / 1e6
    return f


def _nnls_relative(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Non-negative least squares minimising relative error: rows scaled by 1/y, columns normalised."""
    from scipy.optimize import nnls

    Xw = X / y[:, None]
    scale = np.linalg.norm(Xw, axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls(Xw / scale, np.ones_like(y), maxiter=50 * X.shape[1])
    return coef / scale


def _cv_errors(X: np.ndarray, y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """k-fold (leave-one-out for small families) relative errors of the relative NNLS fit."""
    rel = []
    if len(y) >= 2 * folds:
        order = np.random.default_rng(seed).permutation(len(y))
        for k in range(folds):
            test = order[k::folds]
            train = np.setdiff1d(order, test)
            c = _nnls_relative(X[train], y[train])
            rel.extend(np.abs(X[test] @ c - y[test]) / y[test])
    else:
        for i in range(len(y)):
            train = np.arange(len(y)) != i
            c = _nnls_relative(X[train], y[train])
            rel.append(abs(float(X[i] @ c) - y[i]) / y[i])
    return np.asarray(rel)


def fit_family(family: str, entries: Sequence[Entry], folds: int = 5, seed: int = 0) -> UnitModel | None:
    """Fit one family's model on its measured entries; None when there are too few of them. The channel blocking
    (``CHANNEL_BLOCKS``) and the feature set (base or extended) are chosen by the cross-validated error, so each
    backend's kernels decide them; the extended set is tried only with at least ``EXTENDED_MIN_ROWS`` entries per
    feature."""
    rows = [e for e in entries if e.unit.kind == family]
    if len(rows) < 2:
        return None
    y = np.array([e.latency_ms for e in rows])
    enough = len(rows) >= 2 * folds
    blocks = CHANNEL_BLOCKS if enough else (1,)
    units = [fields_unit(e.unit) for e in rows]
    features = {b: [unit_features(u, r, b) for u, r in units] for b in blocks}  # one dict per row, every set
    best = None
    for names in FEATURE_SETS[family] if enough else FEATURE_SETS[family][:1]:
        if len(rows) < EXTENDED_MIN_ROWS * len(names) and names != FEATURES[family]:
            continue
        for block in blocks:
            X = np.array([[f.get(name, 0.0) for name in names] for f in features[block]], dtype=np.float64)
            rel = _cv_errors(X, y, folds, seed)  # the error bar of units predicted (not measured) from this model
            if best is None or rel.mean() < best[0].mean() - 1e-9:
                best = (rel, block, X, names)
    assert best is not None  # CHANNEL_BLOCKS is not empty
    rel, block, X, names = best
    coef = _nnls_relative(X, y)
    return UnitModel(family=family, features=list(names), coefficients=[float(c) for c in coef],
                     fitted_on=len(rows), cv_rel_error=float(rel.mean()), cv_rel_p90=float(np.percentile(rel, 90)),
                     channel_block=cast(ChannelBlock, block))


def fit_unit_models(entries: Sequence[Entry]) -> list[UnitModel]:
    models = []
    for family in (CONV, BASIC, BOTTLENECK, INVERTED, HEAD):
        m = fit_family(family, entries)
        if m is not None:
            models.append(m)
    return models


def model_predict(model: UnitModel, unit: Unit, resolution: int) -> float:
    f = unit_features(unit, resolution, model.channel_block)
    value = sum(c * f.get(name, 0.0) for name, c in zip(model.features, model.coefficients))
    return max(value, 1e-6)


def relative_sigma(rel_mean_abs_error: float) -> float:
    """Turn a mean absolute relative error into a standard deviation (normal errors: E|x| = sigma * sqrt(2/pi))."""
    return rel_mean_abs_error * math.sqrt(math.pi / 2)
