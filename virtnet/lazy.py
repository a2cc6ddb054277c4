"""Lazy re-exports for package __init__ files.

Importing any submodule runs its package's __init__ first: with eager re-exports, reading
`virtnet.domxml.metadata`'s namespace would also load the designer, the spec models and pydantic.
A package lists its re-exports here instead, imported on first use, and imports them again under
TYPE_CHECKING so that type checkers see the real names.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_exports(package: str, sources: dict[str, str]) -> Callable[[str], object]:
    """A module-level __getattr__ that imports each name in `sources` from its module on first use."""

    def __getattr__(name: str) -> object:
        if name not in sources:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(sources[name]), name)

    return __getattr__
