"""One small dict registry per extension point (design.md 5.2).

A registry maps a name to a builder (class or function). It is filled by a decorator at import
time of the module that defines the builder; there are no scopes and no auto-import magic, so a
module must be imported before its names are available (``vidal.detection`` imports its backends).

    >>> from vidal.registry import Registry
    >>> R = Registry("example")
    >>> @R.register("plain")
    ... def build_plain(): return 1
    >>> R.get("plain")()
    1
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


class Registry:
    """Name -> object mapping; duplicate names and unknown names are errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator registering ``obj`` under ``name`` (default: ``obj.__name__``)."""

        def deco(obj: T) -> T:
            key = name if name is not None else getattr(obj, "__name__", None)
            if not isinstance(key, str) or not key:
                raise ValueError(f"{self.kind} registry: a name is required to register {obj!r}")
            if key in self._items:
                raise ValueError(f"{self.kind} registry: {key!r} is already registered "
                                 f"(by {self._items[key]!r})")
            self._items[key] = obj
            return obj

        return deco

    def get(self, name: str) -> Any:
        try:
            return self._items[name]
        except KeyError:
            valid = ", ".join(sorted(self._items)) or "(none registered)"
            raise KeyError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``get(name)(*args, **kwargs)``."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"


DETECTORS = Registry("detector")
TRACKERS = Registry("tracker")
ACQUISITIONS = Registry("acquisition")
SELECTORS = Registry("selector")
