"""What the direction-following locomotion families (Ant-Dir, Humanoid-Dir) share."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_hypernet.common.task import TaskDistribution


class DirectionTask(TaskDistribution):
    """Mixin for gymnasium v5 locomotion envs whose task is a walking direction (an angle in the x-y plane).

    The env's own step runs unchanged (dynamics, termination, and its survive, control and contact terms, which
    it reports in ``info``); only the forward term is replaced by ``direction_weight * (velocity . direction)``,
    with the velocity the env reports (``x_velocity``, ``y_velocity``). ``task_descriptor()`` is the unit
    direction ``(cos, sin)``.
    """

    direction_weight: float = 1.0
    angle: float = 0.0

    def _init_direction_task(self, direction_weight: float, task: float | None) -> None:
        self.direction_weight = float(direction_weight)
        self.task_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        if task is not None:
            self.set_task(task)

    def set_task(self, task: Any) -> None:
        """Set the direction angle (radians)."""
        self.angle = float(np.asarray(task).reshape(()))

    def task_descriptor(self) -> np.ndarray:
        return np.array([np.cos(self.angle), np.sin(self.angle)], np.float32)

    def step(self, action: np.ndarray):
        obs, _, terminated, truncated, info = super().step(action)
        velocity = np.array([info["x_velocity"], info["y_velocity"]])
        forward = self.direction_weight * float(velocity @ self.task_descriptor().astype(np.float64))
        reward = forward + info["reward_survive"] + info["reward_ctrl"] + info["reward_contact"]
        info["reward_forward"] = forward
        return obs, reward, terminated, truncated, info


class VelocityTask(TaskDistribution):
    """Mixin for locomotion envs whose task is a target forward velocity, uniform in a range per split.

    ``splits`` maps ``"train"`` (and ``"test"`` when a test range is given) to a velocity range; ``split`` selects
    the one ``sample_task`` draws from, so evaluation can run the test tasks (``gym.make(id, split="test")``).
    ``task_descriptor()`` is ``[target]``.
    """

    target_velocity: float = 0.0

    def _init_velocity_task(
        self,
        velocity_range: tuple[float, float],
        test_velocity_range: tuple[float, float] | None,
        split: str,
        task: float | None,
    ) -> None:
        self.splits = {"train": tuple(velocity_range)}
        if test_velocity_range is not None:
            self.splits["test"] = tuple(test_velocity_range)
        if split not in self.splits:
            raise ValueError(f"{type(self).__name__} has splits {', '.join(self.splits)}; got split={split!r}")
        self.split = split
        bounds = np.array(list(self.splits.values()))
        self.task_space = spaces.Box(bounds.min(), bounds.max(), (1,), np.float32)
        self.target_velocity = float(np.mean(self.splits[split]) if task is None else task)

    def sample_task(self, rng: np.random.Generator) -> float:
        low, high = self.splits[self.split]
        return float(rng.uniform(low, high))

    def set_task(self, task: Any) -> None:
        """Set the target velocity."""
        self.target_velocity = float(np.asarray(task).reshape(()))

    def task_descriptor(self) -> np.ndarray:
        return np.array([self.target_velocity], np.float32)
