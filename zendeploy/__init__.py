"""zendeploy: hardware-aware zero-shot NAS (Zen-NAS), measured latency tables, verified export.

Data flows one way: space -> cost / proxies / latency -> search -> export. A structure string (official ZenNAS
format) is the one currency between stages.
"""

__version__ = "0.1.0"

from .errors import ZenDeployError  # noqa: E402
from .space.registry import list_blocks  # noqa: E402
from .space.structure import BlockSpec, format_structure, parse_structure  # noqa: E402


def __getattr__(name: str):
    # Lazy re-exports: importing zendeploy must not import torch (the CLI's --help and the parser stay fast).
    if name in ("build_model", "ZenNet"):
        from . import builder

        return getattr(builder, name)
    if name == "network_cost":
        from .cost import network_cost

        return network_cost
    if name in ("compute_proxy", "list_proxies", "get_proxy"):
        from . import proxies

        return getattr(proxies, name)
    if name in ("get_zoo", "list_zoo"):
        from . import zoo

        return getattr(zoo, name)
    raise AttributeError(f"module 'zendeploy' has no attribute {name!r}")


__all__ = [
    "__version__", "ZenDeployError", "BlockSpec", "parse_structure", "format_structure", "list_blocks",
    "build_model", "ZenNet", "network_cost", "compute_proxy", "list_proxies", "get_proxy", "get_zoo", "list_zoo",
]
