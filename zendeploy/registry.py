"""A small name -> object registry shared by blocks, proxies, zoo entries, devices and formats.

Duplicate names raise at registration (as torchvision's ``register_model`` does); an unknown name raises
:class:`~zendeploy.errors.RegistryError` listing the valid names and the closest match. We suggest, never substitute.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from .errors import RegistryError

T = TypeVar("T")


def unknown_name_message(kind: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    shown = ", ".join(valid) if len(valid) <= 40 else ", ".join(valid[:40]) + ", ..."
    return f"unknown {kind} '{name}'{hint} (valid: {shown})"


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._items[name] = obj
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            return self.register(name, obj)

        return wrap

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise RegistryError(unknown_name_message(self.kind, name, self.names())) from None

    def names(self, include: str | None = None, exclude: str | None = None) -> list[str]:
        names = list(self._items)
        if include:
            names = [n for n in names if fnmatch.fnmatch(n, include)]
        if exclude:
            names = [n for n in names if not fnmatch.fnmatch(n, exclude)]
        return names

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self):
        return self._items.items()
