"""Pruning methods behind one interface (:class:`pruning.methods.base.PruningMethod`).

Every module of this package is imported on first use and every ``PruningMethod`` subclass
with a ``name`` becomes available under that name, so adding a method is adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache

from pruning.methods.base import PruningMethod

__all__ = ["PruningMethod", "available_methods", "make_method"]


@lru_cache(maxsize=1)
def _registry() -> dict[str, type[PruningMethod]]:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    found: dict[str, type[PruningMethod]] = {}
    stack = list(PruningMethod.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        # Only classes that name themselves in a file of this package: a subclass elsewhere
        # (a test's instrumented FlipOut) inherits the name but is not a method of its own.
        if "name" in vars(cls) and cls.name and cls.__module__.startswith(f"{__name__}."):
            if cls.name in found and found[cls.name] is not cls:
                raise RuntimeError(f"two pruning methods are called {cls.name!r}")
            found[cls.name] = cls
    return dict(sorted(found.items()))


def available_methods() -> tuple[str, ...]:
    """The names of every pruning method, sorted."""
    return tuple(_registry())


def make_method(name: str, **options) -> PruningMethod:
    """A new instance of method ``name`` with ``options`` (its dataclass fields, e.g. seed).

    ValueError naming the method and the valid ones for an unknown name."""
    registry = _registry()
    if name not in registry:
        raise ValueError(f"unknown pruning method {name!r}; valid: {', '.join(registry)}")
    return registry[name](**options)
