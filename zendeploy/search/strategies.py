"""Where a search's children come from: one object per strategy, each proposing the next child of the population.

- ``official``: the official Zen-NAS loop (``evolution_search.py``), draw for draw: while the population holds 10 or
  fewer members a child is the initial structure with one block replaced, afterwards a uniformly drawn member with
  two. Today's ``evolution`` is the same strategy (kept as an alias, so older runs resume).
- ``random``: random search: a random walk of single-block mutations from the initial structure.
- ``budget-aware`` (the default): the official mutations, aimed at the budget. Zen-NAS maximises the Zen-Score under
  the budgets, and the score grows with width, so the best networks lie on the budget's frontier; the official loop
  walks there from a tiny initial structure by random 1-2 block moves and spends most of its 480,000 iterations on
  that walk. Here (measured in ``tools/bench_anytime.py``):

  1. *Seeding.* The first ``population`` children are random walks from the initial structure, each scaled to the
     frontier (below), so the population starts spread over the frontier rather than around one tiny network.
  2. *Fill the budget.* Every child is scaled to the frontier: all widths (and bottlenecks) multiplied by one factor,
     found by bisection on the cheap budget checks (params, MACs, the table's latency prediction), to the largest
     factor that still meets every budget. Depth and block types come from the mutations; a child that no width can
     fit (the layer budget) is left as it is and rejected by the search as usual.
  3. *Large moves early, small late.* Three block replacements per child at the start, two in the middle, one in the
     last third of the iterations (or of ``max_evaluations`` when that is the binding limit).
  A child over the layer budget is shortened (one sub-layer at a time, among the deepest blocks) rather than
  rejected, and after the common width factor single blocks are widened by one channel step while the budgets hold.
  4. *Selection.* Parents by a tournament of two uniformly drawn members (the better one), the official
     worst-member eviction keeping the population size.
  5. *No wasted iterations.* A child already scored, or one that no width fits into the budgets (too deep, or
     outside the latency table's coverage when no unit can be timed on demand), is redrawn (up to 16 times; after
     8, seeds are the initial structure with one block replaced) before it costs an iteration. With on-demand
     timing a child outside the coverage is kept: the search times its missing units.

  Everything is drawn from the search's one ``random.Random``, so a seed gives the same run with any ``--workers``,
  with ``--ray``, and across ``--resume``.

A strategy only proposes; the search checks budgets, scores, evicts and checkpoints. ``STRATEGIES`` is the registry
the CLI's ``--strategy`` choices come from.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Callable, Optional, Protocol, Sequence

from ..errors import SearchSpaceError
from ..space.mutation import mutate, random_walk, rechain, split_blocks
from ..space.registry import BLOCK_TYPES, CONV
from ..space.spaces import SearchSpace
from ..space.structure import MAX_CHANNELS, BlockSpec, format_structure, parse_structure
from ..space.units import smart_round

INITIAL_PHASE = 10  # official: `if len(popu_structure_list) <= 10:` mutate the initial structure
DEFAULT_STRATEGY = "budget-aware"
ALIASES = {"evolution": "official"}  # the official loop's name before budget-aware became the default
REDRAWS = 16  # budget-aware: tries to draw a child that was not scored before
FIT_STEPS = 7  # budget-aware: bisection steps of the width factor (1 % resolution over a 2x bracket)

class Verdict(Protocol):
    """What a budget check returns (``budgets.CheckResult``): whether the network fits."""

    ok: bool


Check = Callable[[Sequence[BlockSpec]], Verdict]  # blocks -> a verdict (the search's cached budget check)


class Strategy:
    """Proposes children. ``propose(pop, progress, seen)``: ``pop`` is the population ([structure, score] pairs, the
    official list order), ``progress`` the share of the run done (0..1), ``seen(structure)`` True for a structure
    already scored."""

    name = ""

    def __init__(self, space: SearchSpace, initial: Sequence[BlockSpec], rng: random.Random, *,
                 population: int, check: Optional[Check] = None, random_walk_steps: Optional[int] = None,
                 can_extend: bool = False):
        self.space, self.initial, self.rng = space, tuple(initial), rng
        self.population, self.check, self.random_walk_steps = population, check, random_walk_steps
        self.can_extend = can_extend  # the search times units outside the table's coverage on demand

    def propose(self, pop: list, progress: float, seen: Callable[[str], bool]) -> tuple[BlockSpec, ...]:
        raise NotImplementedError


class OfficialStrategy(Strategy):
    name = "official"

    def propose(self, pop, progress, seen):
        rng = self.rng
        if len(pop) <= INITIAL_PHASE:
            return mutate(self.initial, rng, self.space, 1)
        parent = pop[rng.randint(0, len(pop) - 1)][0]
        return mutate(parse_structure(parent), rng, self.space, 2)


class RandomStrategy(Strategy):
    name = "random"

    def propose(self, pop, progress, seen):
        return random_walk(self.initial, self.rng, self.space, self.random_walk_steps)


class BudgetAwareStrategy(Strategy):
    name = "budget-aware"

    def propose(self, pop, progress, seen):
        if self.check is None:
            raise SearchSpaceError("the budget-aware strategy needs the search's budget check")
        fallback = None
        for attempt in range(REDRAWS + 1):
            child = self._draw(pop, progress, short=attempt >= REDRAWS // 2)
            if seen(format_structure(child)):
                continue
            c = self.check(child)
            if c.ok or (self.can_extend and getattr(c, "kind", None) == "coverage"):
                return child
            fallback = fallback or child
        return fallback or child  # nothing fits: the search rejects it (and counts why), as the official loop does

    def _draw(self, pop, progress, short: bool = False) -> tuple[BlockSpec, ...]:
        rng = self.rng
        if len(pop) < self.population:  # seeding: random networks on the frontier
            # after half the redraws, one block of the initial structure replaced (the official first move): a
            # table that measured few unit types covers few long walks
            child = (mutate(self.initial, rng, self.space, 1) if short
                     else random_walk(self.initial, rng, self.space, self.random_walk_steps))
        else:
            a, b = pop[rng.randrange(len(pop))], pop[rng.randrange(len(pop))]
            parent = a if a[1] >= b[1] else b
            moves = 3 if progress < 1 / 3 else 2 if progress < 2 / 3 else 1
            child = mutate(parse_structure(parent[0]), rng, self.space, moves)
        assert self.check is not None  # the budget-aware strategy is always built with the search's check
        child = fit_layers(child, self.space, self.check, rng)
        child = fit_to_budget(child, self.space, self.check)
        return top_up(child, self.space, self.check, rng)


def scale_widths(blocks: Sequence[BlockSpec], factor: float, space: SearchSpace) -> tuple[BlockSpec, ...]:
    """Every block's output width and bottleneck times ``factor``, rounded to the space's channel base and kept within
    its bounds (a frozen 1x1 conv keeps its width), then re-chained and split as after a mutation."""
    lo, hi = space.min_channels, min(space.max_channels or MAX_CHANNELS, MAX_CHANNELS)

    def width(c: int) -> int:
        return int(min(hi, max(lo, smart_round(max(lo, c * factor), space.channel_base))))

    out = []
    for b in blocks:
        info = BLOCK_TYPES.get(b.name)
        if info.family == CONV and space.freeze_1x1_conv and info.kernel == 1:
            out.append(b)
            continue
        out.append(replace(b, out_channels=width(b.out_channels),
                           bottleneck=None if b.bottleneck is None else width(b.bottleneck)))
    return tuple(split_blocks(rechain(out), space.split_threshold))


def fit_to_budget(blocks: Sequence[BlockSpec], space: SearchSpace, check: Check,
                  steps: int = FIT_STEPS) -> tuple[BlockSpec, ...]:
    """``blocks`` with its widths scaled by the largest factor (to ~1 %) at which ``check`` passes: the network grown,
    or shrunk, onto the budget's frontier. Unchanged when no factor in 1/64..64 passes (e.g. too many layers)."""
    blocks = tuple(blocks)
    ok = lambda f: bool(check(scale_widths(blocks, f, space)).ok)  # noqa: E731
    if ok(1.0):
        low, high = 1.0, 2.0
        while ok(high):
            low, high = high, high * 2
            if high > 64:
                return scale_widths(blocks, low, space)
    else:
        low, high = 0.5, 1.0
        while not ok(low):
            low, high = low / 2, low
            if low < 1 / 64:
                return blocks
    for _ in range(steps):
        mid = (low * high) ** 0.5
        low, high = (mid, high) if ok(mid) else (low, mid)
    return scale_widths(blocks, low, space)


def fit_layers(blocks: Sequence[BlockSpec], space: SearchSpace, check: Check,
               rng: random.Random) -> tuple[BlockSpec, ...]:
    """A child over the layer budget with residual blocks shortened one sub-layer at a time (a random block among
    the deepest) until the layer budget holds, instead of a wasted iteration. Unchanged if it already holds."""
    blocks = tuple(blocks)
    for _ in range(64):
        c = check(blocks)
        if getattr(c, "kind", None) != "layers":
            return blocks
        deep = [i for i, b in enumerate(blocks) if b.bottleneck is not None and b.sub_layers > 1]
        if not deep:
            return blocks
        most = max(blocks[i].sub_layers for i in deep)
        i = rng.choice([i for i in deep if blocks[i].sub_layers == most])
        blocks = blocks[:i] + (replace(blocks[i], sub_layers=blocks[i].sub_layers - 1),) + blocks[i + 1:]
    return blocks


def top_up(blocks: Sequence[BlockSpec], space: SearchSpace, check: Check, rng: random.Random,
           tries: int = 12) -> tuple[BlockSpec, ...]:
    """After the common width factor: widen single blocks (a random block, one channel step) while the budgets hold,
    using what the rounding of one factor left of the budget."""
    blocks = tuple(blocks)
    if not check(blocks).ok:
        return blocks
    step = space.channel_base
    hi = min(space.max_channels or MAX_CHANNELS, MAX_CHANNELS)
    for _ in range(tries):
        i = rng.randrange(len(blocks))
        b = blocks[i]
        info = BLOCK_TYPES.get(b.name)
        if b.out_channels + step > hi or (info.family == CONV and space.freeze_1x1_conv and info.kernel == 1):
            continue
        wider = tuple(split_blocks(rechain(blocks[:i] + (replace(b, out_channels=b.out_channels + step),)
                                           + blocks[i + 1:]), space.split_threshold))
        if check(wider).ok:
            blocks = wider
    return blocks


STRATEGIES: dict[str, type[Strategy]] = {
    "budget-aware": BudgetAwareStrategy, "official": OfficialStrategy, "random": RandomStrategy}


def strategy_names() -> list[str]:
    return list(STRATEGIES) + list(ALIASES)


def canonical_strategy(name: str) -> str:
    name = ALIASES.get(name, name)
    if name not in STRATEGIES:
        raise SearchSpaceError(f"unknown search strategy '{name}' (valid: {', '.join(strategy_names())})")
    return name


def make_strategy(name: str, space: SearchSpace, initial: Sequence[BlockSpec], rng: random.Random, *,
                  population: int, check: Optional[Check] = None, random_walk_steps: Optional[int] = None,
                  can_extend: bool = False) -> Strategy:
    return STRATEGIES[canonical_strategy(name)](space, initial, rng, population=population, check=check,
                                                random_walk_steps=random_walk_steps, can_extend=can_extend)
