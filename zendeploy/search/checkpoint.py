"""Atomic JSON checkpoints of a search: written to a temporary file in the same folder, fsynced, then
``os.replace``d over the old one, so a crash at any moment leaves either the previous or the new checkpoint.

A checkpoint holds everything the future of the search depends on: the mutation RNG state, the population in order,
the score cache (so resumed runs count evaluations as an uninterrupted run does), the counters and a fingerprint of
the settings that change results (a resume with different settings is refused).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from ..errors import ZenDeployError, first_line
from ..io import atomic_write_json

CHECKPOINT_NAME = "checkpoint.json"
FORMAT_VERSION = 1


class CheckpointError(ZenDeployError):
    """A search checkpoint is missing, corrupt or belongs to different settings."""


def rng_state_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def rng_state_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return (int(version), tuple(int(x) for x in internal), gauss)


def restore_rng(data: list) -> random.Random:
    rng = random.Random()
    rng.setstate(rng_state_from_json(data))
    return rng


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = None) -> None:
    atomic_write_json(path, obj, indent=indent)


def save_checkpoint(out_dir: str | os.PathLike, state: dict) -> Path:
    path = Path(out_dir) / CHECKPOINT_NAME
    write_json_atomic(path, {"format": FORMAT_VERSION, **state})
    return path


def load_checkpoint(out_dir: str | os.PathLike) -> dict:
    path = Path(out_dir) / CHECKPOINT_NAME
    if not path.is_file():
        raise CheckpointError(f"nothing to resume: '{out_dir}' has no {CHECKPOINT_NAME}")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint '{path}' is unreadable or corrupt: {first_line(exc)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint '{path}' has an unknown format (expected version {FORMAT_VERSION})")
    for key in ("fingerprint", "rng_state", "population", "scores", "counters"):
        if key not in data:
            raise CheckpointError(f"checkpoint '{path}' is missing '{key}'")
    return data


def compare_fingerprints(saved: dict, current: dict, where: str) -> None:
    for key in sorted(set(saved) | set(current)):
        if saved.get(key) != current.get(key):
            raise CheckpointError(
                f"cannot resume '{where}': it was started with {key}={json.dumps(saved.get(key))[:80]}, now "
                f"{key}={json.dumps(current.get(key))[:80]}; resume with the same settings or use a new output folder"
            )


LOCK_NAME = ".zendeploy.lock"


class RunLock:
    """One run per output folder: ``LOCK_NAME`` holds the owner's pid and host, created exclusively. A second run into
    the same folder is refused in one line naming the owner; a lock whose process is gone (same host) is stale, is
    named in a log line and taken over. Released when the run ends, however it ends."""

    def __init__(self, out_dir: str | os.PathLike):
        self.path = Path(out_dir) / LOCK_NAME
        self.taken_over: str | None = None

    def __enter__(self):
        import json
        import socket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    owner = json.loads(self.path.read_text() or "{}")
                except (OSError, ValueError):
                    owner = {}
                if owner.get("host") == me["host"] and not _alive(owner.get("pid")):
                    self.taken_over = f"stale lock of pid {owner.get('pid')} (no longer running) taken over"
                    self.path.unlink(missing_ok=True)
                    continue
                raise CheckpointError(
                    f"'{self.path.parent}' is in use by another run (pid {owner.get('pid', '?')} on "
                    f"{owner.get('host', '?')}); wait for it to finish or choose another output folder (if that "
                    f"process is gone on another host, delete {self.path})") from None
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(me))
            return self
        raise CheckpointError(f"could not take the lock {self.path}")  # pragma: no cover - a race lost twice

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)
        return False


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's live process
        return True
    return True
