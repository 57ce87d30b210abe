"""What ``zendeploy profile`` does, as a library call: a ``ProfileRequest`` (the command's options) becomes a
``ProfileJob`` (the backend, the default plan of the space, the table's path), which ``run()`` measures.

    >>> job = prepare_profile(ProfileRequest(device="cpu", space="resnet", resolution=32))
    >>> table = job.run(progress=print)

The CLI and ``zendeploy demo`` both call this; only the CLI builds scale-out (a Ray ``executor`` for conversion, a
device ``farm`` for timing) and hands it to ``run``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..io import check_output_file
from .profile import Farm, ProfilePlan, ProfileSettings, Progress, default_plan, profile_table
from .schema import LatencyTable, SpaceInfo


@dataclass
class ProfileRequest:
    """The options of ``zendeploy profile`` (see its ``--help``); MACs as numbers (the CLI parses '600M')."""

    device: str = "cpu"
    space: str = "resnet"  # a built-in space or a YAML/JSON space file
    resolution: int = 32
    dataset: str | None = None
    num_classes: int | None = None
    batch: int = 1
    precision: str = "fp32"
    threads: int = 1
    grid_networks: int = 60
    calibration_networks: int = 48
    min_macs: float | None = None
    max_macs: float | None = None
    passes: int = 5
    seed: int = 0
    backend_options: dict[str, Any] = field(default_factory=dict)  # e.g. serial, delegate, benchmark_binary (pixel)
    output: str | os.PathLike | None = None  # default: default_table_path(...)
    on_farm: bool = False  # the devices are on a farm's nodes: describe the backend, open nothing here


@dataclass
class ProfileJob:
    backend: Any  # a Backend, or a BackendSpec when the devices are on a farm
    plan: ProfilePlan
    space: SpaceInfo
    out: Path
    settings: ProfileSettings

    def describe(self) -> str:
        from ..cost import format_count

        return (f"profiling {len(self.plan.units)} units + {len(self.plan.networks)} networks on "
                f"{self.backend.device} ({self.backend.backend}), {self.settings.passes} passes, networks of "
                f"{format_count(int(self.space.min_macs or 0))}-{format_count(int(self.space.max_macs or 0))} MACs -> "
                f"{self.out}")

    def run(self, *, progress: Progress | None = None, keep_work: bool = False, convert_only: bool = False,
            executor=None, farm: Farm | None = None) -> LatencyTable | None:
        """Measure the table (resumes an interrupted run); None after ``convert_only``."""
        return profile_table(self.backend, self.plan, self.out, space=self.space, settings=self.settings,
                             progress=progress, keep_work=keep_work, convert_only=convert_only, executor=executor,
                             farm=farm)


def default_table_path(device: str, backend: str, precision: str, batch: int, space: str, res: int) -> Path:
    """``latency_tables/<device>-<backend>-<precision>-b<B>-<space>-r<R>.json`` (the shipped tables' names)."""
    return Path("latency_tables") / f"{device}-{backend}-{precision}-b{batch}-{Path(space).stem}-r{res}.json"


def prepare_profile(request: ProfileRequest) -> ProfileJob:
    """The backend (opened here, or only described for a farm), the default plan of the space and the output path
    (checked now, before any timing: a device node, folder or link is refused at once, not at the end)."""
    from ..space.spaces import load_space
    from .backends import BackendSpec, make_backend

    r = request
    options = {k: v for k, v in r.backend_options.items() if v is not None}
    backend: Any
    if r.on_farm:
        backend = BackendSpec(r.device, batch=r.batch, threads=r.threads, precision=r.precision,
                              options=tuple(options.items()))
        backend.converter.exporter  # noqa: B018 - fails here, with the install hint, if the converter is missing
    else:
        backend = make_backend(r.device, batch=r.batch, threads=r.threads, precision=r.precision, **options)
    space = load_space(r.space)
    plan, info = default_plan(space, r.resolution, dataset=r.dataset, num_classes=r.num_classes,
                              grid_networks=r.grid_networks, calibration_networks=r.calibration_networks,
                              min_macs=r.min_macs, max_macs=r.max_macs)
    out = Path(r.output) if r.output else default_table_path(r.device, backend.backend, r.precision, r.batch,
                                                             space.name, r.resolution)
    check_output_file(out)
    return ProfileJob(backend, plan, info, out, ProfileSettings(passes=r.passes, seed=r.seed))


__all__ = ["ProfileJob", "ProfileRequest", "default_table_path", "prepare_profile"]
