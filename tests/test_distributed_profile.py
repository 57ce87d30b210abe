"""``zendeploy profile --ray`` and device farms, on real Ray (no mocks).

- Conversion on the suite's local Ray instance (2 CPUs): the table equals what local conversion gives (same files, same keys),
  LiteRT files converted by workers open in the real LiteRT interpreter, per-worker counts add up.
- A device farm of two Ray nodes on this machine (``ray.cluster_utils.Cluster``: real raylets) declaring a resource:
  each node times its own shard (every unit stays on one node), shards are merged into one table with both shards in
  its provenance; a node removed mid-run has its units re-queued and the table is still complete.
- Shards whose fingerprints differ (real backends with other settings) are refused, naming the field.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pytest.importorskip("onnxruntime", reason="needs the [onnx] extra")

from typer.testing import CliRunner  # noqa: E402

from zendeploy.cli.app import app  # noqa: E402
from zendeploy.errors import LatencyTableError  # noqa: E402
from zendeploy.latency.backends import BackendSpec, make_backend  # noqa: E402
from zendeploy.latency.conversion import converter_for  # noqa: E402
from zendeploy.latency.profile import conversion_jobs, plan_profile, profile_table  # noqa: E402
from zendeploy.latency.schema import check_shards_match  # noqa: E402
from zendeploy.latency.tables import load_table  # noqa: E402
from zendeploy.space.structure import parse_structure  # noqa: E402

from test_latency_profile import FAST, SPACE  # noqa: E402  (the tiny settings of the local profiling tests)
from test_latency_profile import NETS as _LOCAL_NETS  # noqa: E402

NETS = list(_LOCAL_NETS)  # 4: the fewest a calibration takes (3 parameters, one held out)


def _plan():
    nets = [parse_structure(s) for s in NETS]
    return plan_profile(nets, nets, 16, num_classes=10)


def _journal(path):
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_conversion_on_ray_matches_local(local_ray, tmp_path):
    from zendeploy.distributed.conversion import RayExecutor

    plan = _plan()
    executor = RayExecutor()
    events = []
    table = profile_table(make_backend("cpu"), plan, tmp_path / "ray.json", space=SPACE, settings=FAST,
                          executor=executor, keep_work=True, progress=events.append)
    local = profile_table(make_backend("cpu"), plan, tmp_path / "local.json", space=SPACE, settings=FAST,
                          keep_work=True)
    jobs = conversion_jobs(plan, 1, ".onnx", SPACE)
    assert sum(r["files"] for r in executor.summary()) == len(jobs)
    import onnx

    def graph(path):  # what decides latency: operators, attributes, weight shapes (the weights are random draws)
        g = onnx.load(str(path)).graph
        return ([(n.op_type, [str(a) for a in n.attribute]) for n in g.node],
                sorted((i.name, tuple(i.dims)) for i in g.initializer))

    for job in jobs.values():  # the same graph, wherever it was converted
        assert graph(tmp_path / "ray.json.work" / job.file_name) == graph(tmp_path / "local.json.work" / job.file_name)
    assert [e.key for e in table.entries] == [e.key for e in local.entries]
    assert any("converted on Ray" in n for n in table.provenance.notes)
    assert any(e.info for e in events if e.phase == "convert")  # per-worker throughput in the progress bar


def test_litert_conversion_on_ray_opens_in_litert(local_ray, tmp_path):
    pytest.importorskip("litert_torch", reason="needs the [tflite] extra")
    pytest.importorskip("ai_edge_litert", reason="needs the [tflite] extra")
    from zendeploy.distributed.conversion import RayExecutor
    from profilers.litert.run import open_runner

    plan = plan_profile([parse_structure(NETS[0])], [], 16, num_classes=10, corners=False)
    jobs = list(conversion_jobs(plan, 1, ".tflite", SPACE).values())[:2]
    RayExecutor().convert(converter_for("tflite-cpu"), jobs, tmp_path, lambda *a, **k: None)
    for job in jobs:
        run = open_runner(tmp_path / job.file_name, num_threads=1, batch_size=1)
        run()


def test_shards_with_other_fingerprints_are_refused():
    one, two = make_backend("cpu", threads=1), make_backend("cpu", threads=2)
    check_shards_match([("a", one.provenance()), ("b", make_backend("cpu", threads=1).provenance())])
    with pytest.raises(LatencyTableError, match=r"cannot merge shards: threads differs \(a: 1, b: 2\)"):
        check_shards_match([("a", one.provenance()), ("b", two.provenance())])


@pytest.fixture()
def farm_cluster():
    from ray.cluster_utils import Cluster

    if ray.is_initialized():  # the suite's local instance (conftest ``local_ray``): the farm needs its own cluster
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    nodes = [cluster.add_node(num_cpus=1, resources={"cpufarm": 1}) for _ in range(2)]
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, logging_level="warning")
    cluster.wait_for_nodes()
    yield cluster, nodes
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.fault
def test_device_farm_shards_merge_and_survive_a_lost_node(farm_cluster, tmp_path):
    from zendeploy.distributed.conversion import RayExecutor
    from zendeploy.distributed.farm import Farm

    cluster, nodes = farm_cluster
    plan = _plan()
    spec = BackendSpec("cpu")
    out = tmp_path / "farm.json"
    farm = Farm("cpufarm", spec)
    table = profile_table(spec, plan, out, space=SPACE, settings=FAST, executor=RayExecutor(), farm=farm,
                          keep_work=True)
    # every timer removed its temporary folder when the job ended (the nodes of this cluster share this host's /tmp)
    assert not list(Path(tempfile.gettempdir()).glob(f"zendeploy-farm-{farm.tag}-*"))
    records = _journal(tmp_path / "farm.json.partial.jsonl")
    shards_of = {}
    for r in records:
        shards_of.setdefault(r["key"], set()).add(r["shard"])
    assert len({s for v in shards_of.values() for s in v}) == 2  # both nodes measured
    assert all(len(v) == 1 for v in shards_of.values())  # a unit stays on its node for every pass
    assert len(records) == FAST.passes * (len(plan.units) + len(plan.networks))
    assert len(table.entries) == len(plan.units) and table.calibration is not None
    assert len(table.provenance.drift["shards"]) == 2
    assert any("device farm: 2 node(s)" in n for n in table.provenance.notes)
    assert load_table(out).provenance.device == "cpu"

    # a node lost after the first timings: its units are dealt to the other node, none is lost
    out2 = tmp_path / "farm2.json"
    farm2 = Farm("cpufarm", spec)
    removed = []

    def progress(event):
        if event.phase == "time" and not removed:
            removed.append(nodes[1])
            cluster.remove_node(nodes[1])

    table2 = profile_table(spec, plan, out2, space=SPACE, settings=FAST, executor=RayExecutor(), farm=farm2,
                           progress=progress, keep_work=True)
    records2 = _journal(tmp_path / "farm2.json.partial.jsonl")
    pairs = [(r["key"], r["pass"]) for r in records2]
    assert len(pairs) == len(set(pairs)) == FAST.passes * (len(plan.units) + len(plan.networks))
    assert farm2.requeued > 0 and len(table2.entries) == len(plan.units)


def test_cli_farm_without_nodes_names_the_resource(local_ray, tmp_path):
    res = CliRunner().invoke(app, ["profile", "--device", "cpu", "--space", "resnet", "--res", "32",
                                   "--grid-networks", "2", "--calibration-networks", "0", "--max-macs", "20M", "--farm", "pixel7",
                                   "-o", str(tmp_path / "t.json")])
    assert res.exit_code == 1
    assert "no Ray node declares the resource 'pixel7'" in res.output


def test_cli_profile_on_ray(local_ray, tmp_path):
    out = tmp_path / "t.json"
    res = CliRunner().invoke(app, ["profile", "--device", "cpu", "--space", "resnet", "--res", "32",
                                   "--grid-networks", "6", "--calibration-networks", "4", "--passes", "1", "--max-macs", "20M",
                                   "--ray", "auto", "-o", str(out)])
    assert res.exit_code == 0, res.output
    table = load_table(out)
    assert any("converted on Ray" in n and "timed on this host after" in n for n in table.provenance.notes)
    assert "conversion per worker" in res.output
