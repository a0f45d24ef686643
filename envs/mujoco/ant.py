"""Ant task families: Ant-Dir (NeurIPS 2023, 8.6) and Ant-Vel (ICML 2021, after PEARL / MAML).

Built on gymnasium's ``Ant-v5`` without contact forces in the observation (27 dimensions, as the reference).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from envs.mujoco.locomotion import DirectionTask, VelocityTask

#: Direction distributions of Ant-Dir: the reference's two angles +-1 rad, forward/backward, any angle.
ANT_DIRECTIONS = ("reference", "forward_backward", "uniform")


class AntDir(DirectionTask, AntEnv):
    """Walk in a direction of the x-y plane: the direction is the task.

    ## Description
    gymnasium's Ant-v5 with the reward of the reference Ant-Dir. The reference samples a goal of +-1 and walks
    along ``(cos goal, sin goal)``, i.e. one of two directions at +-1 rad (``directions="reference"``); the
    ``"forward_backward"`` (0 or pi) and ``"uniform"`` (any angle) variants are offered too.

    ## Action Space
    ``Box(-1, 1, (8,))``: torques of the eight hip and ankle joints.

    ## Observation Space
    ``Box(-inf, inf, (27,))``: Ant-v5's qpos without x, y (13) and qvel (14); no contact forces.

    ## Rewards
    ``velocity . direction + healthy_reward - 0.5 |a|^2 - 5e-4 |clip(cfrc_ext, -1, 1)|^2``, with the torso's x-y
    velocity over a control step and ``healthy_reward`` 1 (Ant-v5's survive, control and contact terms).

    ## Episode End
    Terminates when the torso's height leaves [0.2, 1.0]; registered with 200-step episodes.

    ## Arguments
    ``directions`` (one of :data:`ANT_DIRECTIONS`), ``task`` (a fixed angle in radians) and Ant-v5's keyword
    arguments.

    ## Task
    The direction angle; ``task_descriptor()`` is ``(cos, sin)``.
    """

    def __init__(self, directions: str = "reference", task: float | None = None, **kwargs: Any):
        if directions not in ANT_DIRECTIONS:
            raise ValueError(f"directions must be one of {', '.join(ANT_DIRECTIONS)}; got {directions!r}")
        kwargs.setdefault("include_cfrc_ext_in_observation", False)
        AntEnv.__init__(self, **kwargs)
        self.directions = directions
        self._init_direction_task(1.0, task)

    def sample_task(self, rng: np.random.Generator) -> float:
        if self.directions == "reference":
            return float(rng.choice([-1.0, 1.0]))
        if self.directions == "forward_backward":
            return float(rng.choice([0.0, np.pi]))
        return float(rng.uniform(0.0, 2.0 * np.pi))


class AntVel(VelocityTask, AntEnv):
    """Walk forward at a target velocity: the target is the task (Ant-Vel of PEARL / ICML 2021).

    ## Rewards
    ``-|x_velocity - target| + healthy_reward - 0.5 |a|^2 - contact cost`` (Ant-v5's survive, control and contact
    terms); targets uniform in ``velocity_range`` (0, 3).

    ## Observation Space, Action Space, Episode End
    As :class:`AntDir`.

    ## Arguments
    ``velocity_range`` (train split), ``test_velocity_range`` (``None``: no test split), ``split``, ``task`` and
    Ant-v5's keyword arguments.

    ## Task
    The target velocity; ``task_descriptor()`` is ``[target]``.
    """

    def __init__(
        self,
        velocity_range: tuple[float, float] = (0.0, 3.0),
        test_velocity_range: tuple[float, float] | None = None,
        split: str = "train",
        task: float | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("include_cfrc_ext_in_observation", False)
        AntEnv.__init__(self, **kwargs)
        self._init_velocity_task(velocity_range, test_velocity_range, split, task)

    def _get_rew(self, x_velocity: float, action: np.ndarray):
        reward, info = super()._get_rew(x_velocity, action)
        forward = -abs(x_velocity - self.target_velocity)
        return reward - info["reward_forward"] + forward, {**info, "reward_forward": forward}
