"""Errors zendeploy raises for user mistakes.

Every message is one line that names the problem. The CLI prints ``error: <message>`` and exits with code 1; set
``ZENDEPLOY_DEBUG=1`` to see the traceback instead. Library code raises these and never exits the process.
"""

from __future__ import annotations


class ZenDeployError(Exception):
    """Base class: a user-facing, one-line error."""


class StructureError(ZenDeployError, ValueError):
    """A structure string is malformed or describes an invalid network."""


class RegistryError(ZenDeployError, KeyError):
    """An unknown name was asked of a registry (block, proxy, zoo entry, device, format)."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ProxyError(ZenDeployError):
    """A zero-shot proxy could not be computed (bad options, invalid numerics)."""


class InvalidScore(ProxyError):
    """A proxy cannot give this network a number (no pre-GAP map, a failure inside the proxy): the result is invalid,
    with this as its reason, rather than an error."""


class BudgetError(ZenDeployError):
    """A budget is malformed or cannot be met."""


class SearchSpaceError(ZenDeployError):
    """A search-space definition is invalid."""


class LatencyTableError(ZenDeployError):
    """A latency table is missing, corrupt, incompatible or lacks an entry."""


class ProfilerError(ZenDeployError):
    """A device profiler failed (tool missing, device unreachable, unparsable output)."""


class ExportError(ZenDeployError):
    """An export failed or did not pass its parity check."""


class MissingExtraError(ZenDeployError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(f"{purpose} needs '{package}', which is not installed: pip install \"zendeploy[{extra}]\"")
        self.package = package
        self.extra = extra


def require(module: str, extra: str, purpose: str):
    """Import an optional module, or raise MissingExtraError with the install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(module.split(".")[0], extra, purpose) from exc


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, or its type's name when it has none (never IndexError)."""
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__
