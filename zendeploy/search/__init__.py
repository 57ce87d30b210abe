"""Zen-NAS search: the official evolutionary loop under layer / parameter / MACs / latency-table budgets.

    >>> from zendeploy.search import Budgets, run_search
    >>> result = run_search("resnet", Budgets.parse(params="1M"), resolution=32, population=64, iterations=2000,
    ...                     proxy="zen", batch_size=16, seed=0, out_dir="runs/cifar_1M")
    >>> result.best.structure, result.best.score

Modules: ``spaces`` (built-in and file spaces), ``mutation`` (pure official mutation), ``budgets`` (parsing, checks,
feasibility, the latency predictor protocol), ``scoring`` (the scorer contract and the local scorer), ``evolution`` (the loop), ``random_search`` (baseline),
``checkpoint`` (atomic state), ``report`` (output files).
"""

from .budgets import Budgets, BudgetChecker, LatencyPrediction, LatencyPredictor, check_feasible, parse_count
from .checkpoint import CheckpointError
from .evolution import Candidate, ProgressInfo, SearchResult, run_search
from .mutation import channel_choices, mutate, mutate_block, random_walk, rechain, split_blocks, sub_layer_choices
from .random_search import run_random_search
from .scoring import LocalScorer, Scorer, ScoreRequest, ScoreResult, candidate_seed, score_request
from .spaces import BUILTIN_SPACES, MOBILENET, RESNET, SearchSpace, list_spaces, load_space, space_from_dict

__all__ = [
    "Budgets", "BudgetChecker", "LatencyPrediction", "LatencyPredictor", "check_feasible", "parse_count",
    "CheckpointError", "Candidate", "ProgressInfo", "SearchResult", "candidate_seed", "run_search",
    "channel_choices", "mutate", "mutate_block", "random_walk", "rechain", "split_blocks", "sub_layer_choices",
    "run_random_search", "BUILTIN_SPACES", "MOBILENET", "RESNET", "SearchSpace", "list_spaces", "load_space",
    "space_from_dict", "LocalScorer", "Scorer", "ScoreRequest", "ScoreResult", "score_request",
]
