"""Module paths of versions before 0.2, kept importable: saved models name their classes by module path
(``sb3_hypernet.policies.RNNHNPolicy``), and users' scripts may import from them. Each old path is a module that
finds its names in the modules they moved to, with a ``DeprecationWarning`` naming the new place."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

#: Old module -> the modules its names live in now.
MOVED_MODULES: dict[str, tuple[str, ...]] = {
    "sb3_hypernet.adaptation": ("sb3_hypernet.common.adaptation",),
    "sb3_hypernet.array_vec_env": ("sb3_hypernet.common.array_vec_env",),
    "sb3_hypernet.buffers": ("sb3_hypernet.common.buffers",),
    "sb3_hypernet.callbacks": ("sb3_hypernet.common.callbacks",),
    "sb3_hypernet.evaluation": ("sb3_hypernet.common.evaluation", "sb3_hypernet.meta_ppo.loading"),
    "sb3_hypernet.heads": ("sb3_hypernet.common.heads",),
    "sb3_hypernet.hypernet": ("sb3_hypernet.common.generated_layers",),
    "sb3_hypernet.image": ("sb3_hypernet.common.image",),
    "sb3_hypernet.initializers": ("sb3_hypernet.common.initializers",),
    "sb3_hypernet.policies": (
        "sb3_hypernet.rnn.policies",
        "sb3_hypernet.common.policies",
        "sb3_hypernet.common.policy_keywords",
        "sb3_hypernet.common.recurrent",
    ),
    "sb3_hypernet.recurrent": ("sb3_hypernet.common.recurrent",),
    "sb3_hypernet.wrappers": ("sb3_hypernet.common.meta_episode", "sb3_hypernet.common.task"),
    "sb3_hypernet.zoo": ("sb3_hypernet.experiments.zoo",),
    "sb3_hypernet.task_inference.belief": ("sb3_hypernet.common.belief",),
    "sb3_hypernet.task_inference.meta_episode_buffer": ("sb3_hypernet.common.meta_episode_buffer",),
    "sb3_hypernet.task_inference.ppo": ("sb3_hypernet.meta_ppo.meta_ppo",),
    "sb3_hypernet.task_inference.varibad": ("sb3_hypernet.varibad.policies",),
}


class _MovedModule(types.ModuleType):
    def __init__(self, name: str, targets: tuple[str, ...]):
        super().__init__(name, f"Moved: see {', '.join(targets)}.")
        self._targets = targets

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        for target in self._targets:
            module = importlib.import_module(target)
            if hasattr(module, attribute):
                warnings.warn(
                    f"{self.__name__}.{attribute} moved to {target}.{attribute} (sb3-hypernet 0.2); the old path will "
                    "go in a later version (saved models keep loading).",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, attribute)
        raise AttributeError(f"module {self.__name__!r} (moved to {', '.join(self._targets)}) has no {attribute!r}")


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(fullname, self) if fullname in MOVED_MODULES else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _MovedModule(spec.name, MOVED_MODULES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def install() -> None:
    """Make the old module paths importable (once)."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
