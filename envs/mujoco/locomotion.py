"""What the direction-following locomotion families (Ant-Dir, Humanoid-Dir) share."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_hypernet.wrappers import TaskDistribution


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
