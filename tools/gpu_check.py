"""Run the T4 runner's CUDA parts for real on an NVIDIA GPU, without TensorRT: driver and GPU identification,
NVML readings, and the CUDA-graph event timing of ``profilers/tensorrt/cuda_timing.py`` around a small PyTorch
workload enqueued on the timer's own stream.

    python tools/gpu_check.py [--output gpu_check.json]

Needs ``cuda-python`` (12.x) and ``nvidia-ml-py`` (both in ``pip install "zendeploy[tensorrt]"``, and in the test
extra) and, for the timing part, a PyTorch with CUDA. What it prints, per matrix size: the GPU median of graph
replays and of plain launches, the host's median enqueue time, whether the capture worked and whether the workload
is enqueue-bound (a 64x64 matmul should be; a 4096x4096 one should not). On a machine without a GPU it says so in
one line per part and exits 0: nothing here needs the hardware to fail cleanly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from profilers.common import ProfilerError  # noqa: E402
from profilers.tensorrt.cuda_timing import check, time_on_stream  # noqa: E402
from profilers.tensorrt.gpu_state import cuda_pci_bus_id, read_gpu_state  # noqa: E402


def identify() -> dict:
    from zendeploy.errors import ZenDeployError
    from zendeploy.latency.remote import _cudart, _gpu_identity, is_t4

    out: dict = {}
    try:
        cudart = _cudart()
        out["cuda_driver"] = cudart.cudaDriverGetVersion()[1]
        out["cuda_runtime"] = cudart.cudaRuntimeGetVersion()[1]
        name, capability = _gpu_identity()
        out.update(gpu=name, compute_capability=list(capability) if capability else None, is_t4=is_t4(name, capability),
                   pci_bus_id=cuda_pci_bus_id(cudart, 0))
    except ZenDeployError as exc:
        out["error"] = str(exc)
    return out


def time_matmuls(sizes, repeats: int) -> list[dict]:
    try:
        import torch
    except ImportError:
        return [{"error": "PyTorch is not installed"}]
    if not torch.cuda.is_available():
        return [{"error": f"torch {torch.__version__} sees no CUDA GPU"}]
    from cuda.bindings import runtime as cudart

    stream = check(cudart, cudart.cudaStreamCreate(), "cudaStreamCreate")
    rows = []
    try:
        ext = torch.cuda.ExternalStream(int(stream))
        for n in sizes:
            a = torch.randn(n, n, device="cuda")
            c = torch.empty_like(a)

            def enqueue() -> None:
                with torch.cuda.stream(ext):
                    torch.mm(a, a, out=c)  # preallocated output: nothing is allocated while the stream captures

            row: dict = {"n": n}
            for graph in (True, False):
                try:
                    t = time_on_stream(cudart, stream, enqueue, warmup=20, repeats=repeats, min_time_s=0.2,
                                       cuda_graph=graph)
                except ProfilerError as exc:
                    row["graph" if graph else "plain"] = {"error": str(exc)}
                    continue
                row["graph" if graph else "plain"] = {"median_ms": t.stats.median_ms, "min_ms": t.stats.min_ms,
                                                      **t.to_dict()}
            rows.append(row)
    finally:
        cudart.cudaStreamDestroy(stream)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 4096])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--output", type=Path, default=None, help="also write the report as JSON")
    args = parser.parse_args(argv)

    identity = identify()
    report = {"identity": identity, "nvml": read_gpu_state(0, pci_bus_id=identity.get("pci_bus_id")),
              "timing": time_matmuls(args.sizes, args.repeats)}
    ident = report["identity"]
    print(f"GPU: {ident.get('gpu', '-')} (compute capability {ident.get('compute_capability')}, T4: "
          f"{ident.get('is_t4')}); driver {ident.get('cuda_driver')}, runtime {ident.get('cuda_runtime')}"
          + (f"; {ident['error']}" if "error" in ident else ""))
    nvml = report["nvml"]
    print("NVML: " + (", ".join(f"{k} {v}" for k, v in nvml.items() if k != "available") if nvml["available"]
                      else nvml["reason"]))
    print(f"{'n':>6} {'graph ms':>10} {'plain ms':>10} {'enqueue ms':>11} {'graph used':>10} {'enqueue-bound':>13}")
    for row in report["timing"]:
        if "error" in row:
            print(f"timing: {row['error']}")
            continue
        g, p = row.get("graph", {}), row.get("plain", {})
        print(f"{row['n']:>6} {g.get('median_ms', float('nan')):>10.4f} {p.get('median_ms', float('nan')):>10.4f} "
              f"{g.get('enqueue_ms') or float('nan'):>11.4f} {str(g.get('cuda_graph')):>10} "
              f"{str(g.get('enqueue_bound')):>13}" + (f"  ({g['graph_note']})" if g.get("graph_note") else ""))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
