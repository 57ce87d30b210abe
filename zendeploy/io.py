"""Atomic file writes: every file zendeploy writes (tables, checkpoints, reports, models) goes through here.

A temporary file in the target's folder is written, flushed to disk, given the usual file mode and renamed over the
target, so a reader (or a resumed run) sees either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


def default_file_mode() -> int:
    """0o666 less the process umask: what ``open()`` would have given the file (mkstemp gives 0o600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path next to ``path`` for a writer that wants a file name (``torch.save``, safetensors): when the
    block succeeds it gets the usual file mode and replaces ``path``; when it fails it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray) -> Path:
    with atomic_target(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 2,
                      default: Callable[[Any], Any] | None = None) -> Path:
    """JSON without NaN or infinity (they are not JSON), newline-terminated."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, allow_nan=False, default=default) + "\n")
