"""Scale-out on a Ray cluster (optional extra ``zendeploy[ray]``).

- ``runtime``: connecting to a cluster (or starting a local one), checking that workers run the same versions, who
  a worker is (for per-worker throughput);
- ``scoring``: the search's candidates scored as Ray tasks, K in flight, a dead worker's candidates re-queued;
- ``conversion``: a latency table's units converted (ONNX / TFLite) across the cluster;
- ``farm``: a device farm (Ray nodes declaring a resource such as ``t4`` or ``pixel7``) timing shards of a table.

Nothing here is imported unless ``--ray`` is given, so zendeploy works without Ray installed.
"""
