"""Lazy package attributes: a package `__init__` names what it offers; each module loads when
one of its names is first used, so importing the package (and building the CLI parser) stays
light.

Example:
    >>> import types
    >>> package = types.ModuleType("demo")
    >>> package.__getattr__, package.__dir__ = lazy_attributes("demo", {"sqrt": "math"})
    >>> package.__getattr__("sqrt")(16.0)
    4.0
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, homes: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module `__getattr__` and `__dir__` that import `homes[name]` on first use of `name`.

    Args:
        package: the package's `__name__`; a loaded value is stored on it, so the next use
            is a plain attribute.
        homes: public name -> the module that defines it.

    Returns:
        `(__getattr__, __dir__)`, to assign at the package's top level.

    Example:
        >>> getattr_, _ = lazy_attributes("demo", {"pi": "math"})
        >>> round(getattr_("pi"), 2)
        3.14
    """

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        module = sys.modules.get(package)
        if module is not None:
            setattr(module, name, value)
        return value

    def __dir__() -> list[str]:
        module = sys.modules.get(package)
        return sorted({*(vars(module) if module is not None else ()), *homes})

    return __getattr__, __dir__
