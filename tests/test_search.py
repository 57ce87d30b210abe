"""zendeploy.search: official mutation semantics, budgets, the evolution loop, cache, determinism, parallel, resume,
custom spaces, reports and the CLI. Small CIFAR-resolution searches only (each test well under 10 s on 2 cores)."""

from __future__ import annotations

import json
import math
import random
import sys
from collections import Counter
from pathlib import Path

import pytest

from zendeploy.cost import network_cost
from zendeploy.errors import BudgetError, SearchSpaceError, StructureError
from zendeploy.space.structure import format_structure, make_block, parse_structure
from zendeploy.search import (
    MOBILENET, RESNET, Budgets, CheckpointError, LocalScorer, ScoreRequest, candidate_seed, channel_choices,
    load_space, mutate, mutate_block, parse_count, random_walk, rechain, run_search, score_request, space_from_dict,
    split_blocks, sub_layer_choices,
)
from zendeploy.search.checkpoint import write_json_atomic

FIXTURES = Path(__file__).parent / "fixtures" / "search"


# The latency budgets below are checked against a real table: the ONNX Runtime CPU table of the resnet space at 32
# shipped in latency_tables/ (measured on this host by zendeploy profile, with its provenance inside).
CPU_RESNET_TABLE = Path(__file__).resolve().parents[1] / "latency_tables" / "cpu-onnxruntime-fp32-b1-resnet-r32.json"


def table_predictor():
    from zendeploy.latency import load_predictor

    return load_predictor(CPU_RESNET_TABLE)


# The official candidate generation (idstcv/ZenNAS gen_search_space), written out in tools/zennas_official.py: our
# one-draw sampler is checked against it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from zennas_official import official_candidates, official_channels  # noqa: E402


class _IndexRng:
    """A fake RNG whose randrange returns a preset index (to enumerate our sampler's virtual list)."""

    def __init__(self, k):
        self.k = k

    def randrange(self, n):
        assert 0 <= self.k < n
        return self.k


@pytest.mark.parametrize("space,block", [
    (RESNET, "SuperResK3K3(32,64,2,32,1)"),
    (RESNET, "SuperResK1K5K1(64,1024,1,24,4)"),  # width clamp at 2048
    (RESNET, "SuperConvK1BNRELU(64,128,1,1)"),
    (MOBILENET, "SuperResIDWE6K3(32,48,2,32,2)"),
    (MOBILENET, "SuperConvK3BNRELU(3,8,2,1)"),
    (MOBILENET, "SuperConvK1BNRELU(128,2048,1,1)"),  # fixfc: frozen
])
def test_candidate_distribution_equals_official_flattened_list(space, block):
    b = parse_structure(block)[0]
    official = Counter(s for sub in official_candidates(b, space.block_groups, space.max_channels,
                                                        space.freeze_1x1_conv) for s in sub)
    if b.bottleneck is None:
        n = len(channel_choices(b.out_channels, space)) if not (space.freeze_1x1_conv and b.kernel == 1) else 1
    else:
        n = (sum(len(g) - max(0, i - 1) for g in space.block_groups for i in range(len(g))) * len(channel_choices(b.out_channels, space))
             * len(channel_choices(b.bottleneck, space)) * len(sub_layer_choices(b.sub_layers, space)))
    ours = Counter(str(mutate_block(b, _IndexRng(k), space)) for k in range(n))
    assert ours == official  # same candidates with the same multiplicities: the same distribution for one draw


def test_channel_and_sublayer_choices_match_official_functions():
    for c in list(range(8, 400, 8)) + [1000, 1600, 2048, 5, 12]:
        assert channel_choices(c, RESNET) == official_channels(c, 2048)
        assert channel_choices(c, MOBILENET) == official_channels(c, None)
    assert sub_layer_choices(1, RESNET) == [3, 2, 1]  # non-positive dropped, not clamped to 1
    assert sub_layer_choices(4, RESNET) == [6, 5, 4, 3, 2]
    assert channel_choices(8, RESNET) == [16, 8]  # 20 -> 16 and 12 -> 16 (banker's rounding, as official)


def test_official_type_weighting_frequencies():
    rng = random.Random(1)
    b = parse_structure("SuperResK3K3(32,64,2,32,1)")[0]
    counts = Counter(mutate_block(b, rng, RESNET).name for _ in range(6000))
    for group in RESNET.block_groups:  # 3 : 3 : 2 within each group (official list aliasing), groups equal
        freq = [counts[t] / 6000 for t in group]
        for f, expected in zip(freq, (3 / 16, 3 / 16, 2 / 16)):
            assert abs(f - expected) < 0.02


def test_split_rule_is_official_3_plus_3():
    b6 = make_block("SuperResK1K3K1", 32, 64, 2, 16, 6)
    b7 = make_block("SuperResK1K3K1", 32, 64, 2, 16, 7)
    b5 = make_block("SuperResK1K3K1", 32, 64, 2, 16, 5)
    conv = make_block("SuperConvK3BNRELU", 3, 32, 2, 7)
    assert [str(x) for x in split_blocks([b6])] == ["SuperResK1K3K1(32,64,2,16,3)", "SuperResK1K3K1(64,64,1,16,3)"]
    # official split(6) writes 6//2 and 6-6//2 whatever the count: a 7-layer block becomes 3 + 3
    assert [str(x) for x in split_blocks([b7])] == ["SuperResK1K3K1(32,64,2,16,3)", "SuperResK1K3K1(64,64,1,16,3)"]
    assert split_blocks([b5]) == [b5]
    assert split_blocks([conv]) == [conv]


def test_rechain_and_duplicate_replacement_index():
    blocks = parse_structure(RESNET.initial["cifar"])
    changed = list(blocks)
    changed[2] = changed[2].with_(out_channels=40)
    out = rechain(changed)
    assert out[3].in_channels == 40 and out[0] == blocks[0]
    parse_structure(format_structure(out))

    class Rng(random.Random):  # both replacements pick block 2: the second is skipped (official `continue`)
        def randint(self, a, b):
            return 2

    rng = Rng(0)
    child = mutate(blocks, rng, RESNET, num_replaces=2)
    assert sum(1 for a, b in zip(blocks, child) if a.name != b.name or a.out_channels != b.out_channels
               or a.bottleneck != b.bottleneck or a.sub_layers != b.sub_layers) <= 1


@pytest.mark.parametrize("space,dataset", [(RESNET, "cifar"), (MOBILENET, "imagenet"), (MOBILENET, "cifar")])
def test_mutation_stays_in_space_and_bounds(space, dataset):
    rng = random.Random(0)
    initial = space.initial_blocks(dataset)
    strides = [b.stride for b in initial]
    for _ in range(60):
        cur = initial
        for _ in range(12):
            cur = mutate(cur, rng, space, rng.choice([1, 2]))
            assert parse_structure(format_structure(cur)) == cur  # valid and chained
            assert cur[0].in_channels == 3 and cur[0].name == initial[0].name
            assert [b.stride for b in cur if b.stride != 1] == [s for s in strides if s != 1]
            for b in cur:
                if b.bottleneck is None:
                    assert b.name in {x.name for x in initial if x.bottleneck is None}
                else:
                    assert b.name in space.block_types and 1 <= b.sub_layers < space.split_threshold
                for w in (b.out_channels, b.bottleneck):
                    if w is None or (b.bottleneck is None and b.kernel == 1 and space.freeze_1x1_conv):
                        continue
                    assert w % 8 == 0 and w >= space.min_channels
                    assert space.max_channels is None or w <= space.max_channels
            if space.freeze_1x1_conv:
                assert cur[-1] == initial[-1].with_(in_channels=cur[-1].in_channels)


def test_random_walk_deterministic_and_valid():
    a = random_walk(RESNET.initial_blocks("cifar"), random.Random(5), RESNET)
    b = random_walk(RESNET.initial_blocks("cifar"), random.Random(5), RESNET)
    assert a == b
    parse_structure(format_structure(a))


# ------------------------------------------------------------------------------------------------------ budgets


def test_parse_count():
    assert parse_count("400M") == 400_000_000
    assert parse_count("5M") == 5_000_000
    assert parse_count("1.2G") == 1_200_000_000
    assert parse_count("1.7B") == 1_700_000_000
    assert parse_count("500k") == 500_000
    assert parse_count("2e6") == 2_000_000
    assert parse_count(3000) == 3000
    for bad in ("abc", "-5M", "0", "5MB", "", "1.2.3M"):
        with pytest.raises(BudgetError):
            parse_count(bad, "params")
    with pytest.raises(BudgetError, match="MACs"):
        Budgets.parse(flops="400X")
    with pytest.raises(BudgetError):
        Budgets.parse(latency_ms="fast")
    with pytest.raises(BudgetError):
        Budgets(latency_ms=-1.0)


def test_budgets_required_and_latency_needs_table():
    with pytest.raises(BudgetError, match="at least one size budget"):
        run_search("resnet", Budgets(layers=10), resolution=32, iterations=5)
    with pytest.raises(BudgetError, match="latency table"):
        run_search("resnet", Budgets(latency_ms=1.0), resolution=32, iterations=5)


def test_infeasible_budgets_are_clear_errors_before_search():
    calls = []
    for budgets, predictor, match in [
        (Budgets.parse(params="1K"), None, "infeasible params budget"),
        (Budgets.parse(flops="100K"), None, "infeasible MACs budget"),
        (Budgets.parse(params="1M", layers=3), None, "infeasible layers budget"),
        (Budgets(latency_ms=1e-6), table_predictor(), "below the fastest network .* was calibrated on"),
    ]:
        with pytest.raises(BudgetError, match=match) as info:
            run_search("resnet", budgets, resolution=32, iterations=50, proxy="params", predictor=predictor,
                       progress=calls.append, space_max_layers=False)
        assert "\n" not in str(info.value)
    assert calls == []  # nothing ran


def test_no_candidate_within_budget_is_reported():
    # feasible in principle (the smallest net fits) but the initial structure is far above: no official child fits
    with pytest.raises(BudgetError, match="no candidate met the budgets"):
        run_search("resnet", Budgets.parse(flops="10M"), dataset="imagenet", resolution=224, population=16,
                   iterations=30, proxy="params", strategy="official")
    # the budget-aware default shrinks its children onto the budget instead
    r = run_search("resnet", Budgets.parse(flops="10M"), dataset="imagenet", resolution=224, population=16,
                   iterations=30, proxy="params")
    assert r.accepted > 0 and 5_000_000 < r.best.macs <= 10_000_000


# ------------------------------------------------------------------------------------------------------ the loop


def _official_loop_reference(space, budgets, *, dataset, resolution, population, iterations, seed, proxy,
                             batch_size, num_classes, predictor=None):
    """evolution_search.py main(), line by line, with our mutation, checker and (seeded) scorer."""
    from zendeploy.search.budgets import BudgetChecker

    rng = random.Random(seed)
    initial = space.initial_blocks(dataset)
    checker = BudgetChecker(budgets, resolution, num_classes=num_classes, se=space.se, predictor=predictor)
    structures, scores = [], []
    accepted = 0
    for _ in range(iterations):
        while len(structures) > population:
            i = scores.index(min(scores))
            scores.pop(i)
            structures.pop(i)
        if len(structures) <= 10:
            child = mutate(initial, rng, space, 1)
        else:
            child = mutate(parse_structure(structures[rng.randint(0, len(structures) - 1)]), rng, space, 2)
        if not checker.check(child).ok:
            continue
        s = format_structure(child)
        score = score_request(ScoreRequest(s, child, proxy, resolution, batch_size, candidate_seed(seed, s),
                                           num_classes)).score
        structures.append(s)
        scores.append(score)
        accepted += 1
    return structures, scores, accepted


def test_step1_reproduces_the_official_loop():
    kw = dict(dataset="cifar", resolution=32, population=12, iterations=60, seed=3, proxy="zen", batch_size=2,
              num_classes=100)
    budgets = Budgets.parse(params="300K", layers=14)
    structures, scores, accepted = _official_loop_reference(RESNET, budgets, **kw)
    r = run_search(RESNET, budgets, space_max_layers=False, strategy="official", **kw)
    best = max(scores)
    assert r.best.structure == structures[scores.index(best)] and r.best.score == best
    expected = sorted(scores, reverse=True)[:12]
    assert [c.score for c in r.population] == expected
    assert r.accepted == accepted and r.iterations == 60 and accepted > 12
    assert r.evaluations + r.cache_hits == r.accepted


@pytest.mark.parametrize("strategy", ["official", "budget-aware"])
def test_budgets_never_violated_by_population(strategy):
    pred = table_predictor()
    budgets = Budgets(macs=40_000_000, params=400_000, layers=12, latency_ms=0.35, latency_margin=1.0)
    r = run_search(RESNET, budgets, resolution=32, population=16, iterations=120, proxy="zen", batch_size=2,
                   seed=1, predictor=pred, strategy=strategy)
    if strategy == "official":
        assert r.rejected  # the budgets bite
    else:  # budget-aware redraws children that break a budget; its best lies on the frontier of one
        best = parse_structure(r.best.structure)
        cost, p = network_cost(best, 32, num_classes=100), pred.predict(best, 32)
        assert max(cost.params / budgets.params, cost.macs / budgets.macs,
                   (p.latency_ms + p.sigma_ms) / budgets.latency_ms) > 0.9
    for c in r.population:
        blocks = parse_structure(c.structure)
        cost = network_cost(blocks, 32, num_classes=100)
        assert cost.params <= budgets.params and cost.macs <= budgets.macs and cost.layers <= budgets.layers
        p = pred.predict(blocks, 32)
        assert p.latency_ms + budgets.latency_margin * p.sigma_ms <= budgets.latency_ms
        assert c.latency is not None and c.latency["latency_ms"] == pytest.approx(p.latency_ms)
    assert r.report["best"]["latency"]["unit"].startswith("ms per image at batch 1 on cpu")
    assert r.report["budgets"]["latency"]["margin_sigmas"] == 1.0


def test_determinism_under_seed_and_random_strategy():
    kw = dict(resolution=32, population=16, iterations=50, proxy="zen", batch_size=2)
    a = run_search("resnet", Budgets.parse(params="500K"), seed=7, **kw)
    b = run_search("resnet", Budgets.parse(params="500K"), seed=7, **kw)
    c = run_search("resnet", Budgets.parse(params="500K"), seed=8, **kw)
    assert [(x.structure, x.score) for x in a.population] == [(x.structure, x.score) for x in b.population]
    assert [x.structure for x in a.population] != [x.structure for x in c.population]
    ra = run_search("resnet", Budgets.parse(params="500K"), seed=7, strategy="random", **kw)
    rb = run_search("resnet", Budgets.parse(params="500K"), seed=7, strategy="random", **kw)
    assert ra.best.structure == rb.best.structure and ra.best.score == rb.best.score
    for x in ra.population:
        assert network_cost(parse_structure(x.structure), 32, num_classes=100).params <= 500_000


def test_budget_aware_children_sit_on_the_budget_frontier():
    budgets = Budgets.parse(params="300K", layers=14)
    r = run_search("resnet", budgets, resolution=32, population=12, iterations=40, proxy="zen", batch_size=2, seed=5)
    assert r.report["settings"]["strategy"] == "budget-aware" and not r.rejected  # every child fits
    params = sorted(c.params for c in r.population)
    assert all(c.params <= 300_000 and c.layers <= 14 for c in r.population)
    assert params[len(params) // 2] > 0.85 * 300_000  # filled, not the initial structure's 10 %
    assert len({c.structure for c in r.population}) == len(r.population)  # duplicates redrawn, never re-scored


def test_fit_to_budget_grows_and_shrinks_onto_the_frontier():
    from zendeploy.search.budgets import BudgetChecker
    from zendeploy.search.strategies import fit_to_budget, scale_widths

    budgets = Budgets.parse(params="500K")
    checker = BudgetChecker(budgets, 32, num_classes=100)
    initial = RESNET.initial_blocks("cifar")
    grown = fit_to_budget(initial, RESNET, checker.check)
    assert checker.check(grown).ok and not checker.check(scale_widths(grown, 1.25, RESNET)).ok
    assert network_cost(grown, 32, num_classes=100).params > 0.8 * 500_000
    huge = scale_widths(initial, 16, RESNET)
    assert not checker.check(huge).ok
    shrunk = fit_to_budget(huge, RESNET, checker.check)
    assert checker.check(shrunk).ok and network_cost(shrunk, 32, num_classes=100).params > 0.8 * 500_000
    too_deep = Budgets.parse(params="500K", layers=2)  # no width fits: returned unchanged, rejected by the search
    assert fit_to_budget(initial, RESNET, BudgetChecker(too_deep, 32, num_classes=100).check) == tuple(initial)


def test_budget_aware_beats_random_search_at_equal_evaluations():
    kw = dict(resolution=32, population=8, iterations=400, max_evaluations=24, proxy="zen", batch_size=2)
    budgets = Budgets.parse(params="200K", layers=12)
    ours = [run_search("resnet", budgets, seed=s, **kw).best.score for s in range(3)]
    rand = [run_search("resnet", budgets, seed=s, strategy="random", **kw).best.score for s in range(3)]
    assert sorted(ours)[1] > sorted(rand)[1], (ours, rand)  # the median of 3 seeds


def test_strategy_names_and_alias():
    kw = dict(resolution=32, population=8, iterations=20, proxy="params", seed=1)
    a = run_search("resnet", Budgets.parse(params="300K"), strategy="official", **kw)
    b = run_search("resnet", Budgets.parse(params="300K"), strategy="evolution", **kw)  # the old name
    assert [(x.structure, x.score) for x in a.population] == [(x.structure, x.score) for x in b.population]
    assert b.report["settings"]["strategy"] == "official"
    with pytest.raises(SearchSpaceError, match="unknown search strategy 'greedy'.*budget-aware"):
        run_search("resnet", Budgets.parse(params="300K"), strategy="greedy", **kw)


def test_score_cache_never_scores_a_structure_twice(monkeypatch):
    scored = []

    def counting(request):
        scored.append(format_structure(request.blocks))
        return score_request(request)

    # fixfc space: mutating the frozen final 1x1 returns the initial structure itself, so duplicates are frequent
    r = run_search("mobilenet", Budgets.parse(params="2M"), dataset="cifar", resolution=32, population=16,
                   iterations=60, proxy="zen", batch_size=2, seed=0, scorer=LocalScorer(task=counting),
                   strategy="official")
    assert len(scored) == len(set(scored)) == r.evaluations
    assert r.cache_hits > 0 and r.evaluations + r.cache_hits == r.accepted
    assert r.report["cache_hits"] == r.cache_hits and r.report["rejected"]["total"] == sum(r.rejected.values())


@pytest.mark.parametrize("strategy", ["budget-aware", "official"])
def test_parallel_workers_identical_to_serial(strategy):
    kw = dict(resolution=32, population=12, iterations=16, proxy="zen", batch_size=2, seed=4, step=4,
              strategy=strategy)
    serial = run_search("resnet", Budgets.parse(params="400K"), workers=1, **kw)
    parallel = run_search("resnet", Budgets.parse(params="400K"), workers=2, **kw)
    assert [(x.structure, x.score) for x in serial.population] == [(x.structure, x.score) for x in parallel.population]
    assert (serial.evaluations, serial.cache_hits, serial.rejected) == \
        (parallel.evaluations, parallel.cache_hits, parallel.rejected)


@pytest.mark.fault
@pytest.mark.parametrize("strategy", ["budget-aware", "official"])
def test_resume_gives_the_same_result(tmp_path, strategy):
    kw = dict(resolution=32, population=12, iterations=70, proxy="zen", batch_size=2, seed=2, checkpoint_every=0.0,
              plot=False, strategy=strategy)
    budgets = Budgets.parse(params="400K")
    full = run_search("resnet", budgets, out_dir=tmp_path / "full", **kw)

    steps = []

    def interrupt(p):
        steps.append(p.iteration)
        if len(steps) == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_search("resnet", budgets, out_dir=tmp_path / "cut", progress=interrupt, **kw)
    saved = json.loads((tmp_path / "cut" / "checkpoint.json").read_text())
    assert 0 < saved["counters"]["iterations"] < 70 and not saved["done"]
    with pytest.raises(CheckpointError, match="already holds a search"):
        run_search("resnet", budgets, out_dir=tmp_path / "cut", **kw)
    resumed = run_search("resnet", budgets, out_dir=tmp_path / "cut", resume=True, **kw)
    assert resumed.resumed
    assert [(x.structure, x.score) for x in resumed.population] == [(x.structure, x.score) for x in full.population]
    assert (resumed.iterations, resumed.evaluations, resumed.cache_hits, resumed.rejected) == \
        (full.iterations, full.evaluations, full.cache_hits, full.rejected)
    assert (tmp_path / "cut" / "best_structure.txt").read_text().strip() == full.best.structure
    with pytest.raises(CheckpointError, match="population"):
        run_search("resnet", budgets, out_dir=tmp_path / "cut", resume=True, **{**kw, "population": 13})
    with pytest.raises(CheckpointError, match="nothing to resume"):
        run_search("resnet", budgets, out_dir=tmp_path / "none", resume=True, **kw)
    assert not [p for p in (tmp_path / "cut").iterdir() if p.name.endswith(".tmp")]


def test_atomic_json_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "c.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": math.nan})  # not serialisable with allow_nan=False
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


def test_report_files_and_measure_hook(tmp_path):
    pred = table_predictor()
    measured = []

    from zendeploy.search.measure import local_measure_fn

    device_measure, reason = local_measure_fn("cpu", pred, tmp_path / "measure")  # the table's own backend, here
    assert reason is None, reason

    def measure(networks, resolution, *, se=False):  # counts the calls; the timing is ONNX Runtime's, for real
        measured.append(len(networks))
        return device_measure(networks, resolution, se=se)

    measure.name = device_measure.name
    r = run_search("resnet", Budgets(latency_ms=0.5, params=600_000), resolution=32, population=12, iterations=30,
                   proxy="zen", batch_size=2, predictor=pred, out_dir=tmp_path / "run", top_k=3, measure_fn=measure)
    run = tmp_path / "run"
    for name in ("best_structure.txt", "report.json", "top_k.json", "population.png", "checkpoint.json"):
        assert (run / name).is_file(), name
    assert parse_structure((run / "best_structure.txt").read_text().strip())
    rep = json.loads((run / "report.json").read_text())
    assert rep["structure"] == r.best.structure and rep["best"]["params"] == r.best.params
    assert {"latency_ms", "sigma_ms", "low_ms", "high_ms", "unit"} <= set(rep["best"]["latency"])
    assert rep["budgets"]["params"]["unit"] == "parameters" and "ms per image" in rep["budgets"]["latency"]["unit"]
    assert {"zendeploy", "torch", "python"} <= set(rep["versions"])
    assert rep["measured"]["ran"] and measured == [3] and len(rep["measured"]["results"]) == 3
    assert rep["measured"]["chosen_meets_budget_measured"] == (rep["measured"]["chosen_measured_ms"] <= 0.5)
    assert len(json.loads((run / "top_k.json").read_text())) == 3
    assert (run / "population.png").read_bytes()[:4] == b"\x89PNG"


def test_other_proxies_from_registry():
    r = run_search("resnet", Budgets.parse(params="300K"), resolution=32, population=12, iterations=40,
                   proxy="params", seed=0)
    assert r.best.score == pytest.approx(math.log(r.best.params))
    with pytest.raises(Exception, match="unknown proxy"):
        run_search("resnet", Budgets.parse(params="300K"), resolution=32, iterations=5, proxy="zenn")


# ------------------------------------------------------------------------------------------------------ spaces


def test_builtin_spaces_roundtrip_and_initials():
    for space in (RESNET, MOBILENET):
        assert space_from_dict(space.to_dict()).to_dict() == space.to_dict()
        for ds in space.datasets:
            parse_structure(space.initial[ds])
    assert RESNET.dataset_for(32) == "cifar" and RESNET.dataset_for(224) == "imagenet"
    assert MOBILENET.default_max_layers("imagenet") == 14 and RESNET.default_max_layers("cifar") == 18
    assert MOBILENET.block_groups[0][:4] == ("SuperResIDWE1K3", "SuperResIDWE2K3", "SuperResIDWE4K3",
                                             "SuperResIDWE6K3")


def test_custom_space_files_search():
    space = load_space(FIXTURES / "tiny_resnet.yaml")
    assert space.name == "tiny-resnet" and space.max_channels == 256 and len(space.block_groups) == 2
    r = run_search(space, Budgets.parse(params="200K"), dataset="small", resolution=64, population=12,
                   iterations=40, proxy="zen", batch_size=2)
    assert r.report["settings"]["dataset"] == "small"
    for c in r.population:
        for b in parse_structure(c.structure):
            assert b.bottleneck is None or b.name in space.block_types
            assert b.out_channels <= 256
        assert c.layers <= 10  # the file's max_layers for 'small'
    idw = load_space(FIXTURES / "tiny_idw.json")
    assert idw.se and idw.channel_base == 16 and idw.datasets == ["default"]
    r2 = run_search(idw, Budgets.parse(flops="20M"), resolution=32, population=12, iterations=30, proxy="params")
    for c in r2.population:
        blocks = parse_structure(c.structure)
        assert all(w % 16 == 0 for b in blocks[:-1] for w in (b.out_channels, b.bottleneck) if w)
        assert network_cost(blocks, 32, num_classes=1000, se=True).macs <= 20_000_000  # SE counted


@pytest.mark.parametrize("name,match", [
    ("bad_block_type.yaml", r"field 'block_types': unknown block type 'SuperResK3K9'; did you mean"),
    ("bad_conv_type.yaml", r"field 'block_types': 'SuperConvK3BNRELU' is a plain conv block"),
    ("bad_initial.yaml", r"field 'initial': cifar: block 2 \(SuperResK3K3\) has in_channels 16"),
    ("bad_bounds.yaml", r"max_channels 32 is below min_channels 64"),
    ("bad_field.yaml", r"field 'max_width' is not a known field"),
    ("bad_missing.yaml", r"field 'block_types' is required"),
    ("bad_syntax.yaml", r"is not valid YAML: .*line 2"),
])
def test_bad_space_files_give_one_line_errors(name, match):
    with pytest.raises(SearchSpaceError, match=match) as info:
        load_space(FIXTURES / name)
    assert "\n" not in str(info.value) and name in str(info.value)


def test_space_name_errors(tmp_path):
    with pytest.raises(SearchSpaceError, match="did you mean 'resnet'"):
        load_space("resnt")
    with pytest.raises(SearchSpaceError, match="does not exist"):
        load_space(str(tmp_path / "nope.yaml"))
    with pytest.raises(SearchSpaceError, match="no initial structure for dataset 'coco'"):
        run_search("resnet", Budgets.parse(params="1M"), dataset="coco", iterations=1)
    with pytest.raises(SearchSpaceError, match="too small"):
        run_search("mobilenet", Budgets.parse(params="1M"), dataset="imagenet", resolution=8, iterations=1)
    with pytest.raises(StructureError):
        parse_structure(RESNET.initial["cifar"][:-1])


# ------------------------------------------------------------------------------------------------------ CLI


def _cli(args):
    from typer.testing import CliRunner

    from zendeploy.cli.app import app

    return CliRunner().invoke(app, args)


def test_cli_search_writes_run_and_errors(tmp_path):
    out = tmp_path / "runs" / "tiny"
    res = _cli(["search", "--space", "resnet", "--res", "32", "--params", "300K", "--population", "12",
                "--iterations", "30", "--batch-size", "2", "--top-k", "4", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "next: zendeploy info --run" in res.output
    s = (out / "best_structure.txt").read_text().strip()
    parse_structure(s)
    rep = json.loads((out / "report.json").read_text())
    assert rep["settings"]["population"] == 12 and rep["measured"]["ran"] is False
    assert len(json.loads((out / "top_k.json").read_text())) == 4
    again = _cli(["search", "--space", "resnet", "--res", "32", "--params", "300K", "-o", str(out)])
    assert again.exit_code == 1 and "--resume" in again.output
    bad = _cli(["search", "--space", "resnet", "--res", "32", "--params", "1K", "-o", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "infeasible params budget" in bad.output
    lat = _cli(["search", "--space", "resnet", "--latency-ms", "0.5", "-o", str(tmp_path / "y")])
    assert lat.exit_code == 1 and "--latency-ms needs --table" in lat.output
    dev = _cli(["search", "--space", "resnet", "--params", "1M", "--device", "t4", "-o", str(tmp_path / "z")])
    assert dev.exit_code == 1 and "--table" in dev.output
    space = _cli(["search", "--space", str(FIXTURES / "bad_field.yaml"), "--params", "1M", "-o", str(tmp_path / "w")])
    assert space.exit_code == 1 and "max_width" in space.output


# ------------------------------------------------------- tools/bench_anytime.py: the closed loop's decision per point
def test_bench_anytime_closed_loop_picks_best_scoring_that_meets_budget_as_measured():
    import bench_anytime

    A, B, C = (f"SuperConvK3BNRELU(3,{w},1,1)SuperResK3K3({w},32,2,16,1)SuperConvK1BNRELU(32,64,1,1)"
               for w in (32, 24, 16))
    point = {"structure": A, "top": [{"structure": s, "raw": r} for s, r in ((A, 3.0), (B, 2.0), (C, 1.0))]}
    over = bench_anytime.closed_loop(point, {A: 1.2, B: 1.1, C: 0.9}, budget=1.0)
    assert over["best_over"] and over["pick"] == C and over["pick_rank"] == 2 and over["pick_measured_ms"] == 0.9
    meets = bench_anytime.closed_loop(point, {A: 0.95, B: 0.5, C: 0.4}, budget=1.0)
    assert not meets["best_over"] and meets["pick"] == A and meets["pick_rank"] == 0
    none = bench_anytime.closed_loop(point, {A: 2.0, B: 2.0, C: 2.0}, budget=1.0)
    assert none["best_over"] and none["pick"] is None
    assert bench_anytime.closed_loop({"structure": A}, {A: 1.0}, budget=1.0) is None  # no top-k recorded


def test_bench_anytime_measures_the_top_k_on_the_tables_backend(tmp_path):
    """The benchmark's cifar-latency setting, cut to one random-search seed of 12 evaluations: the top-2 of each point
    and the reference are timed for real with ONNX Runtime, and the summary carries the closed loop's rows."""
    import subprocess

    tool = Path(__file__).resolve().parents[1] / "tools" / "bench_anytime.py"
    res = subprocess.run([sys.executable, str(tool), "--settings", "cifar-latency", "--strategies", "random",
                          "--seeds", "1", "--evals", "6", "12", "--jobs", "1", "--rescore-repeats", "1",
                          "--measure-top", "2", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "closed loop = best-scoring of them that meets" in res.stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = summary["closed_loop"]["cifar-latency"]
    assert rows["reference_measured_ms"] > 0 and rows["rows"]["12"]["random"]["runs"] == 1
    measured = [json.loads(x) for x in (tmp_path / "measured.jsonl").read_text().splitlines()]
    point = summary["results"][0]["points"][-1]
    assert {t["structure"] for t in point["top"]} <= {m["structure"] for m in measured}
    assert all(m["measured_ms"] > 0 for m in measured)
    again = subprocess.run([sys.executable, str(tool), "--settings", "cifar-latency", "--strategies", "random",
                            "--seeds", "1", "--evals", "6", "12", "--jobs", "1", "--rescore-repeats", "1",
                            "--measure-top", "2", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 run(s) to do, 1 done earlier" in again.stdout
    assert "timing" not in again.stdout  # every network came from measured.jsonl
