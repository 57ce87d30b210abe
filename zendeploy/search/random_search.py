"""Random search under the same budgets: the honest baseline for the evolutionary search.

Each iteration draws an independent random structure: the space's initial structure after ``randint(1, W)``
single-block mutations (the same official mutation operator; ``W`` = ``random_walk_steps``, default 4 x the number
of blocks), re-chained and split after every step. No score ever influences what is sampled next; the population
only keeps the best ``population`` structures seen. Budgets, the score cache, checkpoints, workers and the report
are those of :func:`zendeploy.search.run_search`, which this calls with ``strategy='random'``.
"""

from __future__ import annotations

from .evolution import SearchResult, run_search


def run_random_search(*args, **kwargs) -> SearchResult:
    """``run_search(..., strategy='random')``; takes the same arguments."""
    kwargs["strategy"] = "random"
    return run_search(*args, **kwargs)
