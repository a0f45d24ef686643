"""Meta-World ML1 and ML10 (Yu et al. 2020) as task distributions (NeurIPS 2023 appendix 8.4; CoRL 2022 Table 2).
Needs the ``metaworld`` extra (``pip install -e ".[metaworld]"``, metaworld 3.1.1).

Meta-World's registered ``Meta-World/ML1-*`` and ``ML10-*`` ids are vector-only, and in 3.1.1 the ML1 train id
silently runs the test split, so the single envs here are built by hand from the benchmark object:
``metaworld.ML1(task_name, seed)`` or ``metaworld.ML10(seed)``, built once per process and shared by every env
(:func:`benchmark`). A task is one of the benchmark's train tasks (``split="train"``) or test tasks
(``split="test"``; for ML10 the 5 held-out classes); the two sets share no task. The descriptor is a one-hot of the
task's class among all the benchmark's classes followed by its ``rand_vec`` (object and goal positions), zero-padded
to 6. The goal is not in the observation (Meta-World's partially observable setting): it must be inferred.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_hypernet.common.task import TaskDistribution

try:
    import metaworld
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'Meta-World environments need the metaworld extra: pip install -e ".[metaworld]" '
        "(metaworld 3.1.1 with mujoco 3.3.0)"
    ) from error

#: Benchmarks and the ML1 tasks registered by name (any other ML1 task name works through ``task_name``).
BENCHMARKS = ("ML1", "ML10")
ML1_TASKS = {"PickPlace": "pick-place-v3", "Push": "push-v3", "Reach": "reach-v3"}
SPLITS = ("train", "test")
#: Length of the goal part of the descriptor: the longest ``rand_vec`` of ML10's classes.
RAND_VEC_SIZE = 6
EPISODE_STEPS = 500


@functools.cache
def benchmark(name: str, task_name: str | None, seed: int) -> metaworld.Benchmark:
    """The benchmark object, built once per process for each (name, task, seed): ML10 takes seconds to build, and
    every env of a process shares it."""
    if name == "ML1":
        if task_name not in metaworld.ML1.ENV_NAMES:
            raise ValueError(f"unknown ML1 task {task_name!r}; Meta-World has: {', '.join(metaworld.ML1.ENV_NAMES)}")
        return metaworld.ML1(task_name, seed=seed)
    if name == "ML10":
        return metaworld.ML10(seed=seed)
    raise ValueError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {name!r}")


class MetaWorldTasks(gym.Env, TaskDistribution):
    """One Meta-World benchmark split as a task distribution: ``set_task(i)`` selects the split's i-th task (its class
    and goal); episodes last 500 steps and report ``info["success"]``.

    :param benchmark_name: ``"ML1"`` or ``"ML10"``
    :param task_name: the ML1 task (``"pick-place-v3"``, ``"push-v3"``, ``"reach-v3"``, ...); ignored by ML10
    :param split: ``"train"`` (the benchmark's train tasks) or ``"test"`` (its test tasks)
    :param benchmark_seed: seed of the benchmark object, which draws the goals of both splits
    :param render_mode: passed to Meta-World (``"rgb_array"`` needs ``MUJOCO_GL=egl``)
    """

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 80}

    def __init__(
        self,
        benchmark_name: str = "ML1",
        task_name: str | None = "pick-place-v3",
        split: str = "train",
        benchmark_seed: int = 0,
        render_mode: str | None = None,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        task_name = task_name if benchmark_name == "ML1" else None
        self.benchmark = benchmark(benchmark_name, task_name, int(benchmark_seed))
        self.split = split
        classes = self.benchmark.train_classes if split == "train" else self.benchmark.test_classes
        tasks = self.benchmark.train_tasks if split == "train" else self.benchmark.test_tasks
        self.tasks = [task for task in tasks if task.env_name in classes]
        self._classes = classes
        self.class_names = sorted({*self.benchmark.train_classes, *self.benchmark.test_classes})
        self.render_mode = render_mode
        self._envs: dict[str, Any] = {}
        self._seeded_epoch: dict[str, int] = {}
        self._epoch = 0
        self.observation_space = spaces.Box(-np.inf, np.inf, (39,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.task_space = spaces.Box(-np.inf, np.inf, (len(self.class_names) + RAND_VEC_SIZE,), np.float32)
        self._task_index = 0
        self._rand_vecs = [pickle.loads(task.data)["rand_vec"] for task in self.tasks]
        self.set_task(0)

    def _env(self, env_name: str) -> Any:
        if env_name not in self._envs:
            self._envs[env_name] = self._classes[env_name](render_mode=self.render_mode)
        return self._envs[env_name]

    @property
    def current(self) -> Any:
        """The Meta-World env of the current task's class."""
        return self._env(self.tasks[self._task_index].env_name)

    def sample_task(self, rng: np.random.Generator) -> int:
        """Index of a task of this split, uniformly."""
        return int(rng.integers(len(self.tasks)))

    def set_task(self, task: Any) -> None:
        index = int(task)
        if not 0 <= index < len(self.tasks):
            raise ValueError(f"task must be an index into the {len(self.tasks)} {self.split} tasks, got {task!r}")
        self._task_index = index
        self.current.set_task(self.tasks[index])

    def task_descriptor(self) -> np.ndarray:
        task = self.tasks[self._task_index]
        descriptor = np.zeros(self.task_space.shape, np.float32)
        descriptor[self.class_names.index(task.env_name)] = 1.0
        rand_vec = self._rand_vecs[self._task_index]
        descriptor[len(self.class_names) : len(self.class_names) + len(rand_vec)] = rand_vec
        return descriptor

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        # Meta-World ignores reset(seed=...): each class env is seeded through env.seed, from this env's
        # generator, the first time it runs after a seeded reset.
        super().reset(seed=seed)
        if seed is not None:
            self._epoch += 1
        env_name = self.tasks[self._task_index].env_name
        env = self.current
        if self._seeded_epoch.get(env_name) != self._epoch:
            env.seed(int(self.np_random.integers(2**31)))
            self._seeded_epoch[env_name] = self._epoch
        obs, info = env.reset()
        return obs.astype(np.float32), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.current.step(action)
        return obs.astype(np.float32), float(reward), bool(terminated), bool(truncated), info

    def render(self) -> Any:
        return self.current.render()

    def close(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
