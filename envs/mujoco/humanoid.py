"""Humanoid-Dir (NeurIPS 2023; VariBAD): walk in a direction of the x-y plane, on gymnasium's ``Humanoid-v5``."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv

from envs.mujoco.locomotion import DirectionTask


class HumanoidDir(DirectionTask, HumanoidEnv):
    """Walk in a direction drawn uniformly from all angles: the direction is the task.

    ## Action Space
    ``Box(-0.4, 0.4, (17,))``: Humanoid-v5's joint torques.

    ## Observation Space
    Humanoid-v5's default observation (348 dimensions with its contact and actuator terms).

    ## Rewards
    ``0.25 * (centre-of-mass velocity . direction) + 5 - 0.1 |a|^2 - min(5e-7 |cfrc_ext|^2, 10)``: Humanoid-v5's
    survive, control and contact terms with the reference's forward weight 0.25.

    ## Episode End
    Terminates when the torso's height leaves [1, 2]; registered with 200-step episodes.

    ## Arguments
    ``direction_weight`` (0.25), ``task`` (a fixed angle in radians) and Humanoid-v5's keyword arguments.

    ## Task
    The direction angle, uniform in [0, 2 pi); ``task_descriptor()`` is ``(cos, sin)``.
    """

    def __init__(self, direction_weight: float = 0.25, task: float | None = None, **kwargs: Any):
        HumanoidEnv.__init__(self, **kwargs)
        self._init_direction_task(direction_weight, task)

    def sample_task(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(0.0, 2.0 * np.pi))
