"""Zen-NAS search: the official evolutionary loop under layer / parameter / MACs / latency-table budgets.

    >>> from zendeploy.search import Budgets, SearchConfig, search
    >>> result = search(SearchConfig("resnet", Budgets.parse(params="1M"), resolution=32, population=64,
    ...                              iterations=2000, proxy="zen", batch_size=16, seed=0, out_dir="runs/cifar_1M"))
    >>> result.best.structure, result.best.score

(``run_search("resnet", budgets, resolution=32, ...)`` is the same call with the fields as keyword arguments.)

Modules: ``budgets`` (parsing, checks, feasibility, the latency predictor protocol), ``config`` (``SearchConfig``
and ``SearchHooks``), ``job`` (``zendeploy search`` as a library call: ``prepare_search(SearchRequest(...)).run()``),
``scoring`` (the scorer contract and the local scorer), ``evolution`` (the loop), ``random_search`` (baseline),
``checkpoint`` (atomic state), ``report`` (output files), ``closed_loop`` (tightening, device manifests). The spaces
and the official mutation live one floor down, in ``zendeploy.space.spaces`` and ``zendeploy.space.mutation`` (the
latency tables sample the same spaces), and are re-exported here.
"""

from ..space.mutation import channel_choices, mutate, mutate_block, random_walk, rechain, split_blocks, sub_layer_choices
from ..space.spaces import BUILTIN_SPACES, MOBILENET, RESNET, SearchSpace, list_spaces, load_space, space_from_dict
from .budgets import Budgets, BudgetChecker, LatencyPrediction, PredictsLatency, check_feasible, parse_count
from .checkpoint import CheckpointError
from .config import SearchConfig, SearchHooks
from .evolution import Candidate, ProgressInfo, SearchResult, run_search, search
from .job import SearchJob, SearchRequest, prepare_search
from .random_search import run_random_search
from .scoring import LocalScorer, Scorer, ScoreRequest, ScoreResult, candidate_seed, score_request

__all__ = [
    "Budgets", "BudgetChecker", "LatencyPrediction", "PredictsLatency", "check_feasible", "parse_count",
    "CheckpointError", "Candidate", "ProgressInfo", "SearchConfig", "SearchHooks", "SearchResult", "candidate_seed",
    "run_search", "search", "SearchJob", "SearchRequest", "prepare_search",
    "channel_choices", "mutate", "mutate_block", "random_walk", "rechain", "split_blocks", "sub_layer_choices",
    "run_random_search", "BUILTIN_SPACES", "MOBILENET", "RESNET", "SearchSpace", "list_spaces", "load_space",
    "space_from_dict", "LocalScorer", "Scorer", "ScoreRequest", "ScoreResult", "score_request",
]
