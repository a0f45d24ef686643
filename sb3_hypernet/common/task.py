"""The task-distribution interface every benchmark implements, and the keys of the meta-episode observation and
``info`` (NeurIPS 2023, section 3.1)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

#: Keys of the meta-episode observation, in the order policies read them.
META_OBS_KEYS = ("obs", "prev_action", "prev_reward", "episode_done")
TASK_KEY = "task"
#: ``info`` key of the last observation of an inner episode that is not the meta-episode's last (the agent sees the
#: next inner episode's first observation instead).
INNER_TERMINAL_KEY = "inner_terminal_observation"
#: ``info`` key under which a task env reports, on an episode's last step, numbers describing that episode (MC-LS:
#: rooms passed, check accuracy, end choice); the wrapper lists them per inner episode under ``inner_statistics``.
EPISODE_STATISTICS_KEY = "episode_statistics"
#: The methods of the task-distribution interface.
TASK_METHODS = ("sample_task", "set_task", "task_descriptor")


class TaskDistribution(abc.ABC):
    """A family of MDPs indexed by a task: the interface every benchmark env implements.

    An environment that inherits this (next to ``gym.Env``) or simply provides the same three methods and the
    ``task_space`` attribute can be wrapped by :class:`MetaEpisodeWrapper`. The contract:

    - ``sample_task(rng)`` draws a task from the distribution using only ``rng`` (so task sampling is seeded
      by the wrapper), without changing the current task;
    - ``set_task(task)`` makes ``task`` the current task; ``reset()`` never changes the task;
    - ``task_descriptor()`` returns the current task's descriptor c_M, an array in ``task_space``
      (used as a training target by task-inference methods and never as a policy input).
    """

    task_space: spaces.Box

    @abc.abstractmethod
    def sample_task(self, rng: np.random.Generator) -> Any:
        """Draw a task from the task distribution."""

    @abc.abstractmethod
    def set_task(self, task: Any) -> None:
        """Make ``task`` the current task (takes effect from the next ``reset``)."""

    @abc.abstractmethod
    def task_descriptor(self) -> np.ndarray:
        """Descriptor c_M of the current task, an element of ``task_space``."""


def check_task_distribution(env: gym.Env) -> TaskDistribution:
    """``env.unwrapped`` if it implements the task interface; otherwise a ``TypeError`` naming what is missing."""
    base = env.unwrapped
    missing = [name for name in (*TASK_METHODS, "task_space") if not hasattr(base, name)]
    if missing:
        raise TypeError(
            f"{type(base).__name__} does not implement the task-distribution interface needed for meta-episodes: "
            f"missing {', '.join(missing)}. Implement sb3_hypernet.TaskDistribution (sample_task(rng), set_task(task), "
            "task_descriptor() and a task_space attribute) on the environment."
        )
    return base  # type: ignore[return-value]


def draw_task_split(env: VecEnv, n_train: int, n_test: int, seed: int) -> tuple[list[Any], list[Any]]:
    """Train and test tasks drawn from the task env behind ``env`` with a seeded generator, as PEARL draws its
    ``n_tasks`` tasks once and keeps the first ``n_train`` for training, the rest for testing.

    Each task gets its own child stream of ``np.random.SeedSequence(seed)``, so the split is the same for any VecEnv
    (a copy of the generator in a subprocess draws the same numbers). A task env with a ``"test"`` entry in its
    ``splits`` (Cheetah-Vel-Medium) draws the test tasks from that range. ``n_test=0``: test on the train tasks (the
    reference's protocol for the two-task Fwd-Back families).
    """
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_train + n_test)]
    train = [env.env_method("sample_task", rng, indices=[0])[0] for rng in streams[:n_train]]
    has_test_split = env.has_attr("splits") and "test" in env.get_attr("splits", indices=[0])[0]
    if has_test_split:
        split = env.get_attr("split", indices=[0])[0]
        env.env_method("set_wrapper_attr", "split", "test", indices=[0])
    try:
        test = [env.env_method("sample_task", rng, indices=[0])[0] for rng in streams[n_train:]]
    finally:
        if has_test_split:
            env.env_method("set_wrapper_attr", "split", split, indices=[0])
    return train, test


def check_task_env(env: VecEnv) -> None:
    """``TypeError`` naming what is missing if the env behind ``env`` lacks the task-distribution interface."""
    missing = [name for name in (*TASK_METHODS, "task_space") if not env.has_attr(name)]
    if missing:
        raise TypeError(
            f"this algorithm needs a task env (sb3_hypernet.TaskDistribution: sample_task(rng), set_task(task), "
            f"task_descriptor() and task_space), such as the <Name>Task-v0 ids of envs; this env lacks "
            f"{', '.join(missing)}"
        )
