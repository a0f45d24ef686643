"""Names of earlier versions that still resolve, with a ``DeprecationWarning`` naming the new one."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any


def renamed_attributes(module: str, namespace: dict[str, Any], renamed: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that resolves each old name of ``renamed`` (old -> new) to the new name's object in
    ``namespace`` (the module's ``globals()``)."""

    def __getattr__(name: str) -> Any:
        if name in renamed:
            warnings.warn(f"{name} is now {renamed[name]} (sb3-hypernet 0.2)", DeprecationWarning, stacklevel=2)
            return namespace[renamed[name]]
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
