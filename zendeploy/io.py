"""Atomic file writes: every file zendeploy writes (tables, checkpoints, reports, models) goes through here.

A temporary file in the target's folder is written, flushed to disk, given the usual file mode and renamed over the
target, so a reader (or a resumed run) sees either the old file or the new one, never half of one; the folder is
fsync'd after the rename, so the rename itself survives a power cut. A target that exists and is not a regular file
(a device node such as ``/dev/full``, a folder, a FIFO, a symbolic link) is refused with ``OutputPathError`` before
anything is written: renaming over it would destroy it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import ZenDeployError


class OutputPathError(ZenDeployError):
    """An output path that zendeploy must not (or cannot) write: not a regular file, or in a folder it cannot use."""


def check_output_file(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an output file path that an atomic write would destroy or cannot create."""
    p = Path(path)
    if os.path.lexists(p):
        if p.is_symlink():
            raise OutputPathError(f"'{p}' is a symbolic link; zendeploy replaces files atomically and will not "
                                  f"replace a link (give the real path)")
        if not p.is_file():
            kind = "a folder" if p.is_dir() else "not a regular file (a device, FIFO or socket)"
            raise OutputPathError(f"'{p}' is {kind}; give a file path to write")
    parent = p.parent
    probe = parent
    while not probe.exists():  # the folder will be created: the first existing ancestor must be a writable folder
        probe = probe.parent
    if not probe.is_dir():
        raise OutputPathError(f"cannot create '{parent}': '{probe}' is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write in '{probe}': permission denied")
    return p


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def default_file_mode() -> int:
    """0o666 less the process umask: what ``open()`` would have given the file (mkstemp gives 0o600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path next to ``path`` for a writer that wants a file name (``torch.save``, safetensors): when the
    block succeeds it gets the usual file mode and replaces ``path``; when it fails it is removed."""
    path = check_output_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise OutputPathError(f"cannot write '{path}': {exc.strerror or exc}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray) -> Path:
    try:
        with atomic_target(path) as tmp, open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:  # a full disk, a quota: one line, and the old file (if any) is untouched
        raise OutputPathError(f"cannot write '{path}': {exc.strerror or exc}") from None
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2,
                      default: Callable[[Any], Any] | None = None) -> Path:
    """JSON without NaN or infinity (they are not JSON), newline-terminated."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False, default=default) + "\n")
