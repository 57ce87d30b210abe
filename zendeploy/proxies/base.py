"""The proxy registry and the one calling convention every zero-shot proxy follows.

A proxy is a function ``fn(blocks, *, resolution, batch_size, generator, num_classes) -> float`` computing ONE
repeat on freshly initialised weights drawn from ``generator``. :func:`compute_proxy` adds what all proxies share:
resolving a zoo name or structure string, seeding (repeat ``i`` uses the generator seeded with ``seed * 1_000_003 +
i``, so every repeat is reproducible on its own), repeats, timing, and the numerics guard (NaN or inf gives an
*invalid* result with a reason, never a silent number). Higher scores are better for every registered proxy.

A proxy with ``combine="rank"`` (AZ-NAS) returns its indicators (a dict, ``components`` of its spec) instead of one
number: a network's score is their rank combination over a set of candidates (``az_nas.combine_by_rank``), so the
``ProxyResult`` of one network carries them in ``components`` (the mean over repeats) and a ``score`` of 0 (the
combination over a set of one); the search re-ranks against every candidate it scored.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import torch

from ..errors import InvalidScore, ProxyError, first_line
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
    # fn(ProxyInput, *, batch_size, generator) -> float: the same proxy on any torch module (network.py); the
    # structure path of every data proxy goes through it too, so both give the same value on the same net and draws
    module_fn: Callable[..., Any] | None = None  # a score, or a dict of indicators (combine="rank")
    combine: str | None = None  # "rank": fn returns a dict of ``components``, ranked within a set (AZ-NAS)
    components: tuple[str, ...] = ()


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
    components: dict[str, float] | None = None  # a rank-combined proxy's indicators (mean over repeats)

    def to_dict(self) -> dict:
        return asdict(self)


PROXIES: Registry[ProxySpec] = Registry("proxy")


def register_proxy(name: str, *, description: str, reference: str, uses_data: bool = True, min_batch_size: int = 1,
                   module_fn: Callable[..., Any] | None = None, combine: str | None = None,
                   components: Sequence[str] = ()):
    def wrap(fn: ProxyFn) -> ProxyFn:
        PROXIES.register(name, ProxySpec(name, fn, description, reference, uses_data, min_batch_size, module_fn,
                                         combine, tuple(components)))
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
    return run_repeats(name, lambda g: spec.fn(r.blocks, resolution=res, batch_size=batch_size, generator=g,
                                               num_classes=r.num_classes),
                       repeats=repeats, seed=seed, resolution=res, batch_size=batch_size)


def score_module(
    model,
    proxy: str = "zen",
    *,
    resolution: int,
    in_channels: int = 3,
    batch_size: int = 16,
    repeats: int = 1,
    seed: int = 0,
    num_classes: int | None = None,
    feature_fn=None,
) -> ProxyResult:
    """Score any ``torch.nn.Module`` classifier with a registered proxy, the same ``ProxyResult`` as
    :func:`compute_proxy`. Each repeat re-initialises a private copy the way the proxy's paper does (Zen: conv and
    linear weights N(0, 1), BN weight 1 and bias 0, train mode with fresh statistics), so the caller's model and
    weights are untouched and never leak into the score. The pre-GAP map is the model's ``forward_pre_GAP`` /
    ``forward_pre_gap``, else ``feature_fn(model, x)``, else the input of its last global average pooling
    (``zendeploy.proxies.network``). The model is scored as given: Zen-NAS scores its own structures without residual
    links, so to compare like with like pass the plain variant of a residual model."""
    from .network import module_input

    spec = get_proxy(proxy)
    if spec.module_fn is None:
        raise ProxyError(f"proxy '{proxy}' has no form for a torch module")
    for what, value in (("batch size", batch_size), ("repeats", repeats)):
        if not isinstance(value, int) or value < 1:
            raise ProxyError(f"{what} must be a positive integer, got {value!r}")
    if batch_size < spec.min_batch_size:
        raise ProxyError(f"{proxy} needs a batch size of at least {spec.min_batch_size}, got {batch_size}")
    inp = module_input(model, resolution=resolution, in_channels=in_channels, num_classes=num_classes,
                       feature_fn=feature_fn)

    def one(generator):
        try:
            return spec.module_fn(inp, batch_size=batch_size, generator=generator)
        except InvalidScore:
            raise
        except (ProxyError, RuntimeError, ValueError) as exc:  # this proxy cannot score this model: say why
            raise InvalidScore(f"{proxy} cannot score this model ({type(exc).__name__}: {first_line(exc)})") from None

    return run_repeats(proxy, one, repeats=repeats, seed=seed, resolution=resolution, batch_size=batch_size)


def run_repeats(name: str, one: Callable[[torch.Generator], float], *, repeats: int, seed: int, resolution: int,
                batch_size: int) -> ProxyResult:
    """``repeats`` draws of ``one(generator)`` (repeat i seeded with ``repeat_generator(seed, i)``), timed, with the
    numerics guard: a non-finite value (or a FloatingPointError) makes the result invalid, with the reason."""
    scores: list[float] = []
    parts: list[dict] = []  # a rank-combined proxy's indicators, per repeat
    t0 = time.perf_counter()
    reason = None
    for i in range(repeats):
        try:
            out = one(repeat_generator(seed, i))
            if isinstance(out, dict):  # indicators: -inf is a value (the worst rank), NaN is not
                bad = [k for k, v in out.items() if math.isnan(v) or v == math.inf]
                if bad:
                    raise InvalidScore(f"repeat {i} gave a non-finite {bad[0]} ({out[bad[0]]})")
                parts.append({k: float(v) for k, v in out.items()})
                out = 0.0
            value = float(out)
        except (FloatingPointError, InvalidScore) as exc:
            value, reason = math.nan, first_line(exc)
        if not math.isfinite(value):
            reason = reason or f"repeat {i} gave a non-finite score ({value}): numerical overflow or underflow"
            scores.append(value)
            break
        scores.append(value)
    seconds = time.perf_counter() - t0
    valid = reason is None
    mean = sum(scores) / len(scores) if valid else math.nan
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)) if valid else math.nan
    components = ({k: sum(p[k] for p in parts) / len(parts) for k in parts[0]} if valid and parts else None)
    return ProxyResult(name, mean, std, len(scores), seconds, valid, reason, scores, resolution, batch_size,
                       seed, components)
