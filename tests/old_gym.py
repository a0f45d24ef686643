"""A minimal stand-in for the old ``gym`` package (0.21-0.26: the API minerl speaks), enough for shimmy's
``GymV21CompatibilityV0`` and the minerl backend of MC-LS: the spaces they convert and ``gym.wrappers``.

Installing old gym itself into the test environment would make SB3 print gym's deprecation banner on every command
of a user who installed the ``test`` extra; this module is put in ``sys.modules`` by the tests that need it only.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np


class Space:
    """gym.Space: a shape and a dtype."""

    def __init__(self, shape: tuple[int, ...] | None = None, dtype: Any = None):
        self.shape = None if shape is None else tuple(shape)
        self.dtype = None if dtype is None else np.dtype(dtype)

    def sample(self, mask: Any = None) -> Any:
        raise NotImplementedError

    def contains(self, x: Any) -> bool:
        raise NotImplementedError


class Box(Space):
    def __init__(self, low: Any, high: Any, shape: tuple[int, ...] | None = None, dtype: Any = np.float32):
        shape = tuple(shape) if shape is not None else np.shape(low)
        super().__init__(shape, dtype)
        self.low = np.full(shape, low, dtype=self.dtype)
        self.high = np.full(shape, high, dtype=self.dtype)

    def contains(self, x: Any) -> bool:
        x = np.asarray(x)
        return x.shape == self.shape and bool(np.all(x >= self.low) and np.all(x <= self.high))


class Discrete(Space):
    def __init__(self, n: int):
        super().__init__((), np.int64)
        self.n = int(n)

    def contains(self, x: Any) -> bool:
        return 0 <= int(x) < self.n


class MultiDiscrete(Space):
    def __init__(self, nvec: Any):
        self.nvec = np.asarray(nvec, dtype=np.int64)
        super().__init__(self.nvec.shape, np.int64)


class MultiBinary(Space):
    def __init__(self, n: int):
        super().__init__((int(n),), np.int8)
        self.n = int(n)


class Dict(Space):
    def __init__(self, spaces: dict[str, Space]):
        super().__init__(None, None)
        self.spaces = dict(spaces)


class Tuple(Space):
    def __init__(self, spaces: Any):
        super().__init__(None, None)
        self.spaces = tuple(spaces)


class Sequence(Space):
    """Only for shimmy's isinstance checks."""


class Graph(Space):
    """Only for shimmy's isinstance checks."""


class Text(Space):
    """Only for shimmy's isinstance checks."""


def module() -> types.ModuleType:
    """A fresh ``gym`` module with ``gym.spaces``, ``gym.wrappers`` and ``gym.Space``."""
    gym = types.ModuleType("gym")
    gym.__doc__ = __doc__
    spaces = types.ModuleType("gym.spaces")
    for cls in (Space, Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple, Sequence, Graph, Text):
        setattr(spaces, cls.__name__, cls)
    gym.spaces = spaces
    gym.Space = Space
    gym.wrappers = types.ModuleType("gym.wrappers")
    return gym


def install(monkeypatch: Any, gym: types.ModuleType) -> None:
    """Put ``gym`` (a :func:`module`) in ``sys.modules`` and point shimmy's old-gym bridge at it, for one test."""
    import shimmy.openai_gym_compatibility as bridge

    for name, value in (("gym", gym), ("gym.spaces", gym.spaces), ("gym.wrappers", gym.wrappers)):
        monkeypatch.setitem(sys.modules, name, value)
    monkeypatch.setattr(bridge, "gym", gym, raising=False)  # absent where old gym is not installed
    monkeypatch.setattr(bridge, "GYM_IMPORT_ERROR", None)
