"""Half-cheetah task families: Cheetah-Dir, Cheetah-Vel (NeurIPS 2023, 8.6) and Cheetah-Vel-Medium (ICML 2021).

Built on gymnasium's ``HalfCheetah-v5`` (modern ``mujoco``). Dynamics differ slightly from the 2019-era models of the
reference code, so absolute returns are comparable only among runs of this package.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from envs.mujoco.locomotion import VelocityTask
from sb3_hypernet.common.task import TaskDistribution


class CheetahDir(HalfCheetahEnv, TaskDistribution):
    """Run forward or backward: the direction (+1 or -1) is the task.

    ## Description
    gymnasium's HalfCheetah-v5 with the reward of VariBAD's Cheetah-Dir.

    ## Action Space
    ``Box(-1, 1, (6,))``: torques of the six joints (as HalfCheetah-v5).

    ## Observation Space
    ``Box(-inf, inf, (17,))``: HalfCheetah-v5's observation (qpos without the x position: 8 values, then qvel: 9).

    ## Rewards
    ``direction * x_velocity - ctrl_cost_weight * |a|^2``, with ``x_velocity`` the simulator's forward velocity
    of the torso over one control step and ``ctrl_cost_weight`` 0.05.

    ## Starting State, Episode End
    As HalfCheetah-v5; no termination; registered with 200-step episodes.

    ## Arguments
    ``ctrl_cost_weight`` (0.05), ``directions`` (``(-1.0, 1.0)``, sampled uniformly), ``task`` (fixed direction),
    and HalfCheetah-v5's keyword arguments.

    ## Task
    The direction; ``task_descriptor()`` is ``[direction]``.
    """

    def __init__(
        self,
        ctrl_cost_weight: float = 0.05,
        directions: tuple[float, ...] = (-1.0, 1.0),
        task: float | None = None,
        **kwargs: Any,
    ):
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        self.directions = tuple(float(d) for d in directions)
        self.task_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.direction = float(self.directions[-1] if task is None else task)

    def sample_task(self, rng: np.random.Generator) -> float:
        return float(rng.choice(self.directions))

    def set_task(self, task: Any) -> None:
        direction = float(np.asarray(task).reshape(()))
        if direction not in (-1.0, 1.0):
            raise ValueError(f"CheetahDir task must be a direction, -1 or 1, got {task!r}")
        self.direction = direction

    def task_descriptor(self) -> np.ndarray:
        return np.array([self.direction], np.float32)

    def _get_rew(self, x_velocity: float, action: np.ndarray):
        forward_reward = self.direction * x_velocity
        ctrl_cost = self.control_cost(action)
        return forward_reward - ctrl_cost, {"reward_forward": forward_reward, "reward_ctrl": -ctrl_cost}


class CheetahVel(VelocityTask, HalfCheetahEnv):
    """Run at a target forward velocity: the target is the task.

    ## Description
    gymnasium's HalfCheetah-v5 with the reward of VariBAD's Cheetah-Vel.

    ## Action Space, Observation Space
    As HalfCheetah-v5: ``Box(-1, 1, (6,))`` and ``Box(-inf, inf, (17,))``.

    ## Rewards
    ``-|x_velocity - target| - ctrl_cost_weight * |a|^2`` (``ctrl_cost_weight`` 0.05).

    ## Episode End
    No termination; registered with 200-step episodes.

    ## Arguments
    ``ctrl_cost_weight`` (0.05), ``velocity_range`` (``(0, 3)``, targets sampled uniformly; the train split),
    ``test_velocity_range`` (``None``: no test split), ``split`` (``"train"`` or ``"test"``: where ``sample_task``
    draws from), ``task`` (a fixed target), and HalfCheetah-v5's keyword arguments.

    ## Task
    The target velocity; ``task_descriptor()`` is ``[target]``.
    """

    def __init__(
        self,
        ctrl_cost_weight: float = 0.05,
        velocity_range: tuple[float, float] = (0.0, 3.0),
        test_velocity_range: tuple[float, float] | None = None,
        split: str = "train",
        task: float | None = None,
        **kwargs: Any,
    ):
        HalfCheetahEnv.__init__(self, ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        self._init_velocity_task(velocity_range, test_velocity_range, split, task)

    def _get_rew(self, x_velocity: float, action: np.ndarray):
        forward_reward = -abs(x_velocity - self.target_velocity)
        ctrl_cost = self.control_cost(action)
        return forward_reward - ctrl_cost, {"reward_forward": forward_reward, "reward_ctrl": -ctrl_cost}
