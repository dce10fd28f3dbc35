"""Names a package loads on first use: the module ``__getattr__`` of ``render_sdk``,
``render`` and their ``client`` packages, which keeps ``import render_sdk`` cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(
    namespace: dict[str, Any], targets: Mapping[str, tuple[str, str]]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``namespace`` (the module's ``globals()``).

    ``targets`` maps each lazy name to ``(module, attribute)``; the first access
    imports the module and stores the value in the namespace, so later accesses do
    not come here. Any other name is an AttributeError, as for a plain module.
    """
    module_name = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        target = targets.get(name)
        if target is None:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(target[0]), target[1])
        namespace[name] = value
        return value

    return __getattr__
