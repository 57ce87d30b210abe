"""A device farm: Ray nodes that declare a resource (``ray start ... --resources='{"pixel7": 1}'``), one device each.

``Farm(resource, spec).measure(...)`` is the timing phase of ``latency.profile.profile_table`` when the devices are
not on this host:

1. One timer actor per node that declares ``resource``, pinned to that node and holding all of its CPUs (so the
   cluster runs nothing else there while it times: a quiet phase). It opens the backend on its node (``spec.make()``:
   TensorRT on a T4 box; a phone over adb, named by ``ANDROID_SERIAL`` on that node) and reports its provenance.
2. Fingerprints (device name, backend and versions, precision, batch, layout, threads, delegate, exporter, opset)
   must match across nodes, and match the shards of an earlier, interrupted run of the same table; otherwise the
   run stops naming the field and the two nodes. Only matching shards are merged into one table.
3. The units are dealt out (shuffled, round-robin): each node times its share in the usual shuffled passes (plus
   the reference unit each pass, for its own drift record); units stay on their node for every pass, so an entry's
   spread is one device's. Every pass's timings come back and are appended to the table's journal with the shard
   that measured them, so an interrupted farm run resumes where it stopped.
4. A node lost mid-pass has its unfinished units dealt to the other nodes (``requeued``); none is lost, none timed
   twice in one pass. With no node left the run stops; rerun to resume.

The merged table's provenance is the first shard's (they match), its notes list every shard (node, host, units,
reference drift) and ``drift["shards"]`` keeps each shard's reference-unit medians.
"""

from __future__ import annotations

import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from ..errors import ProfilerError, ZenDeployError, first_line
from ..io import atomic_write_json
from ..latency.schema import check_shards_match
from ..latency.timing import FileTimer, Timed, drift_summary, noisy_keys, run_pass
from .runtime import ClusterError, rate_span, require_ray, worker_identity, worker_lost_errors

SHARDS_FILE = "shards.json"


class _DeviceTimer:
    """Runs on a farm node: opens the device's backend there, receives files, times passes."""

    def __init__(self, spec, tag: str = ""):
        self.error = None
        self.backend: Any = None
        try:
            self.backend = spec.make()
        except ZenDeployError as exc:
            self.error = first_line(exc)
        self.dir = Path(tempfile.mkdtemp(prefix=f"zendeploy-farm-{tag}-"))
        self.paths: dict[str, Path] = {}
        self.timer: FileTimer | None = None  # over self.paths, once time_pass knows the timing settings

    def describe(self) -> dict:
        from profilers.common import environment_fingerprint

        ident = worker_identity()
        if self.error:
            return {"error": self.error, "identity": ident}
        return {"provenance": self.backend.provenance(), "host": environment_fingerprint(), "identity": ident}

    def load(self, keys: list, *files) -> int:
        """Write files (``(name, bytes)``; Ray resolves top-level object refs) for ``keys``."""
        for key, (name, data) in zip(keys, files):
            path = self.dir / name
            if not path.exists():
                path.write_bytes(data)
            self.paths[key] = path
        return len(self.paths)

    def time_pass(self, keys: list, p: int, timing, seed: int, reference_key: str) -> dict:
        t0 = time.perf_counter()
        if self.timer is None or self.timer.settings != timing:
            self.timer = FileTimer(self.backend, self.paths, timing)  # files stay open across passes
        timer = self.timer
        records: list[dict] = []

        def record(key: str, q: int, stats) -> None:
            records.append({"key": key, "pass": q, "stats": stats.to_dict()})

        run_pass(keys, p, timer, record, seed=seed)
        ref = timer(reference_key).median_ms
        return {"records": records, "reference_ms": ref, "seconds": time.perf_counter() - t0,
                "device_state": self.backend.device_state(), "notes": self.backend.notes()}

    def close(self) -> bool:
        """Drop the runners and remove this timer's temporary folder (the units' files) from its node."""
        import shutil

        if self.timer is not None:
            self.timer.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return not self.dir.exists()



class Farm:
    def __init__(self, resource: str, spec):
        self.ray = require_ray("--farm")
        self.resource = resource
        self.spec = spec
        self.requeued = 0
        self.shards: dict[str, dict] = {}
        self.tag = uuid.uuid4().hex[:8]  # names this job's temporary folders on the nodes (zendeploy-farm-TAG-*)

    def nodes(self) -> list[dict]:
        nodes = [n for n in self.ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(self.resource, 0) > 0]
        if not nodes:
            raise ClusterError(f"no Ray node declares the resource '{self.resource}'; start each device's node with "
                               f"ray start --address HEAD:6379 --resources='{{\"{self.resource}\": 1}}'")
        return sorted(nodes, key=lambda n: n["NodeID"])

    def _start(self, nodes: list[dict]) -> dict[str, Any]:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        actor_cls = ray.remote(max_restarts=0)(_DeviceTimer)
        actors = {}
        for n in nodes:
            actors[n["NodeID"]] = actor_cls.options(
                num_cpus=float(n["Resources"].get("CPU", 0)), resources={self.resource: 1},
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(self.spec, self.tag)
        return actors

    def measure(self, items: dict, reference_key: str, settings, journal, note, work: Path):
        ray = self.ray
        lost = worker_lost_errors(ray)
        actors = self._start(self.nodes())
        try:
            descriptions = ray.get([a.describe.remote() for a in actors.values()])
        except lost as exc:
            raise ClusterError(f"a farm node was lost while opening its device ({type(exc).__name__})") from None
        shards_path = work / SHARDS_FILE
        stored = _read_json(shards_path)
        for nid, d in zip(list(actors), descriptions):
            if "error" in d:
                raise ProfilerError(f"farm node {nid[:8]} ({d['identity']['host']}) cannot open its device: "
                                    f"{d['error']}")
            self.shards[nid[:12]] = {"node": nid, "host": d["identity"]["host"], "provenance": d["provenance"],
                                     "host_fingerprint": d["host"], "units": 0, "reference_ms": [],
                                     "timings": 0, "seconds": 0.0}
        for name, old in stored.items():  # shards of an earlier, interrupted run of this table
            self.shards.setdefault(name, old)
        check_shards_match([(f"node {k[:8]} ({v['host']})", v["provenance"]) for k, v in self.shards.items()])
        atomic_write_json(shards_path, self.shards)

        keys = list(items)
        order = sorted(keys)
        random.Random(settings.seed).shuffle(order)
        live = [nid for nid in actors]
        owner = {key: live[i % len(live)] for i, key in enumerate(order)}
        loaded: dict[str, set] = {nid: set() for nid in actors}
        blobs = {key: ray.put((items[key].name, items[key].read_bytes())) for key in keys}
        total = settings.passes * len(keys)

        def run_pass(p: int, wanted: list[str], phase: str, phase_total: int, phase_done: int) -> None:
            todo = [k for k in wanted if (k, p) not in journal.done]
            while todo:
                if not live:
                    raise ClusterError("every farm node was lost; rerun the same command to resume")
                pending = {}
                for nid in live:
                    share = [k for k in todo if owner[k] == nid]
                    if not share:
                        continue
                    missing = [k for k in share + [reference_key] if k not in loaded[nid]]
                    if missing:
                        actors[nid].load.remote(missing, *(blobs[k] for k in missing))  # runs before time_pass
                        loaded[nid].update(missing)
                    pending[actors[nid].time_pass.remote(share, p, settings.timing, settings.seed,
                                                         reference_key)] = nid
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    nid = pending.pop(ready[0])
                    try:
                        out = ray.get(ready[0])
                    except lost:
                        self._lose(nid, live, owner)
                        continue
                    name = nid[:12]
                    for rec in out["records"]:
                        journal.add({**rec, "shard": name})
                        phase_done += 1
                    shard = self.shards[name]
                    shard["units"] = len({k for k, o in owner.items() if o == nid})
                    shard["reference_ms"].append(round(out["reference_ms"], 5))
                    shard["seconds"] += out["seconds"]
                    shard["timings"] += len(out["records"]) + 1
                    if out.get("device_state") is not None:  # a T4's clocks / a phone's thermal status
                        shard.setdefault("device_state", []).append({"pass": p, **out["device_state"]})
                    shard["backend_notes"] = out.get("notes") or []
                    atomic_write_json(shards_path, self.shards)
                    note(phase, phase_done, phase_total, info=self.describe_throughput())
                todo = [k for k in todo if (k, p) not in journal.done]

        try:
            for p in range(settings.passes):
                run_pass(p, keys, "time", total,
                         sum(1 for k in keys for q in range(settings.passes) if (k, q) in journal.done))
            for extra in range(settings.max_extra_passes):
                p = settings.passes + extra
                noisy = noisy_keys(journal, keys, settings.remeasure_spread, p)
                if not noisy:
                    break
                run_pass(p, noisy, f"re-time {extra + 1}", len(noisy), 0)
        finally:  # the timers hold their nodes' CPUs and a temporary folder each: free both, also after an error
            self._close(actors)

        first = next(iter(self.shards.values()))
        notes = [f"timed on a device farm: {len(self.shards)} node(s) declaring resource '{self.resource}', "
                 f"fingerprints matching" + (f", {self.requeued} unit(s) re-queued after a node was lost"
                                              if self.requeued else "")]
        for name, s in self.shards.items():
            spread = drift_summary(reference_key, s["reference_ms"])["spread_pct"]
            notes.append(f"shard {name} on {s['host']}: {s['units']} units, reference spread {spread}%")
            notes.extend(f"shard {name}: {n}" for n in s.get("backend_notes", []))
        ref_all = [v for s in self.shards.values() for v in s["reference_ms"]]
        drift = drift_summary(reference_key, ref_all)
        drift["shards"] = {name: drift_summary(reference_key, s["reference_ms"]) for name, s in self.shards.items()}
        host = dict(first["host_fingerprint"])
        states = {name: s["device_state"] for name, s in self.shards.items() if s.get("device_state")}
        if states:
            host["device_state"] = states  # per shard, one reading after each pass it timed
        return Timed(provenance=dict(first["provenance"]), host=host, drift=drift, notes=notes)

    def _close(self, actors: dict) -> None:
        """Each timer still alive removes its temporary folder, then is killed (a lost node took its folder's
        process with it; its files are in that node's temporary directory)."""
        ray = self.ray
        closing = [a.close.remote() for a in actors.values()]
        for ref in closing:
            try:
                ray.get(ref, timeout=30)
            except Exception:  # noqa: BLE001 - a lost or stuck timer is killed below all the same
                pass
        for a in actors.values():
            ray.kill(a)

    def _lose(self, nid: str, live: list, owner: dict) -> None:
        """A node is gone: deal its units to the nodes still alive (round-robin)."""
        live.remove(nid)
        mine = [k for k, o in owner.items() if o == nid]
        self.requeued += len(mine)
        for i, k in enumerate(mine):
            if live:
                owner[k] = live[i % len(live)]

    def describe_throughput(self) -> str:
        span = rate_span([s.get("timings", 0) / s["seconds"] for s in self.shards.values() if s.get("seconds", 0) > 0])
        return f"{len(self.shards)} device(s), {span} timings/s each" if span else ""


def _read_json(path: Path) -> dict:
    import json

    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


__all__ = ["Farm", "SHARDS_FILE"]
