"""Zero-shot proxies, one module each, all registered by name in one registry (see ``base.py``)."""

from .base import (
    PROXIES, ProxyResult, ProxySpec, compute_proxy, get_proxy, list_proxies, register_proxy, score_module,
)
from . import analytic, az_nas, gradnorm, meco, naswot, synflow, tenas, zen  # noqa: F401  (registration)

__all__ = ["PROXIES", "ProxyResult", "ProxySpec", "compute_proxy", "get_proxy", "list_proxies", "register_proxy",
           "score_module"]
