"""The proxy registry and the one calling convention every zero-shot proxy follows.

A proxy is a function ``fn(blocks, *, resolution, batch_size, generator, num_classes) -> float`` computing ONE
repeat on freshly initialised weights drawn from ``generator``. :func:`compute_proxy` adds what all proxies share:
resolving a zoo name or structure string, seeding (repeat ``i`` uses the generator seeded with ``seed * 1_000_003 +
i``, so every repeat is reproducible on its own), repeats, timing, and the numerics guard (NaN or inf gives an
*invalid* result with a reason, never a silent number). Higher scores are better for every registered proxy.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Sequence

import torch

from ..errors import ProxyError
from ..registry import Registry
from ..space.structure import BlockSpec, feature_resolutions

ProxyFn = Callable[..., float]


@dataclass(frozen=True)
class ProxySpec:
    name: str
    fn: ProxyFn
    description: str
    reference: str
    uses_data: bool = True  # False for analytic proxies (flops, params): batch size and seed do not matter
    min_batch_size: int = 1


@dataclass
class ProxyResult:
    proxy: str
    score: float  # mean over repeats (nan when invalid)
    std: float  # population std over repeats (0 for one repeat)
    repeats: int
    seconds: float  # wall time of all repeats, model/weight creation included
    valid: bool = True
    reason: str | None = None
    scores: list[float] = field(default_factory=list)
    resolution: int = 0
    batch_size: int = 0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


PROXIES: Registry[ProxySpec] = Registry("proxy")


def register_proxy(name: str, *, description: str, reference: str, uses_data: bool = True, min_batch_size: int = 1):
    def wrap(fn: ProxyFn) -> ProxyFn:
        PROXIES.register(name, ProxySpec(name, fn, description, reference, uses_data, min_batch_size))
        return fn

    return wrap


def get_proxy(name: str) -> ProxySpec:
    return PROXIES.get(name)


def list_proxies() -> list[str]:
    return PROXIES.names()


def repeat_generator(seed: int, repeat: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed) * 1_000_003 + int(repeat))
    return g


def compute_proxy(
    name: str,
    source: str | Sequence[BlockSpec],
    *,
    resolution: int | None = None,
    batch_size: int = 16,
    repeats: int = 1,
    seed: int = 0,
    num_classes: int | None = None,
) -> ProxyResult:
    """Score a zoo name, structure string or block list with a registered proxy."""
    from ..builder import resolve

    spec = get_proxy(name)
    r = resolve(source, num_classes=num_classes)
    res = resolution or r.resolution
    if res is None:
        raise ProxyError("resolution is required for a structure string (use --res)")
    if batch_size < 1:
        raise ProxyError(f"batch size must be positive, got {batch_size}")
    if repeats < 1:
        raise ProxyError(f"repeats must be positive, got {repeats}")
    if batch_size < spec.min_batch_size:
        raise ProxyError(f"{name} needs a batch size of at least {spec.min_batch_size}, got {batch_size}")
    feature_resolutions(r.blocks, res)
    from ..cost import check_fits

    check_fits(r.blocks, res, batch=batch_size, num_classes=r.num_classes, what=f"scoring this network ({name})")
    scores: list[float] = []
    t0 = time.perf_counter()
    reason = None
    for i in range(repeats):
        try:
            value = float(spec.fn(r.blocks, resolution=res, batch_size=batch_size,
                                  generator=repeat_generator(seed, i), num_classes=r.num_classes))
        except FloatingPointError as exc:
            value, reason = math.nan, str(exc)
        if not math.isfinite(value):
            reason = reason or f"repeat {i} gave a non-finite score ({value}): numerical overflow or underflow"
            scores.append(value)
            break
        scores.append(value)
    seconds = time.perf_counter() - t0
    valid = reason is None
    mean = sum(scores) / len(scores) if valid else math.nan
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)) if valid else math.nan
    return ProxyResult(name, mean, std, len(scores), seconds, valid, reason, scores, res, batch_size, seed)
