"""2-D point robot navigation: PEARL's and VariBAD's point robot (Rakelly et al. 2019; Zintgraf et al. 2020), a task
family cheap enough to show adaptation on a CPU."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_hypernet.common.task import TaskDistribution


class _PlanarPoint(gym.Env, TaskDistribution):
    """A point in the plane that starts at the origin and moves by at most ``max_step`` per coordinate (actions in
    [-1, 1] scaled by ``max_step``); subclasses give the goal, the reward and the end of an episode."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 10}
    _goal: np.ndarray | None

    def _init_point(self, max_step: float, render_mode: str | None) -> None:
        if not max_step > 0:
            raise ValueError(f"max_step must be positive, got {max_step}")
        self.max_step = float(max_step)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self._goal = None
        self._position = np.zeros(2, np.float64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self._goal is None:
            self.set_task(self.sample_task(self.np_random))
        self._position = np.zeros(2, np.float64)
        return self._position.astype(np.float32), {}

    def _move(self, action: Any) -> None:
        """Move by the clipped ``action``; errors for a step before reset or a malformed action."""
        name = type(self).__name__
        if self._goal is None:
            raise RuntimeError(f"{name}: call reset() before step()")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            raise ValueError(f"{name} action must be 2 finite numbers (dx, dy), got {action!r}")
        self._position = self._position + self.max_step * np.clip(action, -1.0, 1.0)

    def render(self) -> str | np.ndarray | None:
        if self.render_mode == "ansi":
            (x, y), (gx, gy) = self._position, self._goal
            return f"point ({x:+.3f}, {y:+.3f}), goal ({gx:+.3f}, {gy:+.3f})"
        if self.render_mode == "rgb_array":  # 64 x 64 of x in [-1.5, 1.5], y in [-1.5, 1.5]: goal green, point red
            image = np.full((64, 64, 3), 255, np.uint8)
            for (x, y), colour in ((self._goal, (40, 180, 40)), (self._position, (220, 40, 40))):
                col, row = int(np.clip((x + 1.5) / 3, 0, 1) * 63), int(np.clip((1.5 - y) / 3, 0, 1) * 63)
                image[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3] = colour
            return image
        return None


class PointRobot(_PlanarPoint):
    """Move a point in the plane to a hidden goal on the upper half of the unit circle; the goal is the task.

    ## Description
    The point starts at the origin at every episode; each action moves it by at most ``max_step`` per coordinate.
    Goals lie on the half circle of radius 1 above the x axis, at an angle drawn uniformly from [0, pi]. In the
    sparse variant (the default, PEARL's "sparse point robot") the reward says nothing until the point is within
    ``goal_radius`` of the goal, so the agent must explore the half circle and remember where the reward was.

    ## Action Space
    ``Box(-1, 1, (2,), float32)``: the displacement (dx, dy) in units of ``max_step`` (PEARL's actions of
    [-0.1, 0.1] through its action normalisation); actions outside are clipped.

    ## Observation Space
    ``Box(-inf, inf, (2,), float32)``: the point's (x, y).

    ## Rewards
    Dense (``dense=True``): minus the distance to the goal. Sparse: ``1 - distance`` within ``goal_radius`` of the
    goal, else 0 (PEARL's sparse reward: the dense reward masked outside the radius, plus 1 inside).

    ## Starting State
    (0, 0).

    ## Episode End
    No termination; registered with a 20-step time limit (PEARL's point robot).

    ## Arguments
    ``dense`` (False), ``goal_radius`` (0.2), ``max_step`` (0.1), ``task`` (a fixed goal angle in [0, pi] or a goal
    (x, y); default: sampled at the first reset).

    ## Task
    The goal's angle; ``task_descriptor()`` is the goal's (x, y).

    ## Version History
    v0: initial version.
    """

    def __init__(
        self,
        dense: bool = False,
        goal_radius: float = 0.2,
        max_step: float = 0.1,
        task: Any = None,
        render_mode: str | None = None,
    ):
        if not goal_radius > 0:
            raise ValueError(f"goal_radius must be positive, got {goal_radius}")
        self._init_point(max_step, render_mode)
        self.dense = bool(dense)
        self.goal_radius = float(goal_radius)
        self.task_space = spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 1.0], np.float32))
        self._angle = 0.0
        if task is not None:
            self.set_task(task)

    # -- task distribution -------------------------------------------------------------------------------------
    def sample_task(self, rng: np.random.Generator) -> float:
        """A goal angle drawn uniformly from [0, pi]."""
        return float(rng.uniform(0.0, np.pi))

    def set_task(self, task: Any) -> None:
        """Set the goal: an angle in [0, pi], or a point (x, y) of the upper unit half circle."""
        values = np.asarray(task, dtype=np.float64).reshape(-1)
        if values.shape == (1,) and 0.0 <= values[0] <= np.pi:
            angle = float(values[0])
        elif values.shape == (2,) and abs(np.hypot(*values) - 1.0) < 1e-6 and values[1] >= -1e-9:
            angle = float(np.arctan2(max(values[1], 0.0), values[0]))
        else:
            raise ValueError(f"PointRobot task must be an angle in [0, pi] or a point of the upper unit half circle, "
                             f"got {task!r}")  # fmt: skip
        self._angle = angle
        self._goal = np.array([np.cos(angle), np.sin(angle)])

    def task_descriptor(self) -> np.ndarray:
        """The goal's (x, y)."""
        return self._goal.astype(np.float32)

    def reward(self, position: np.ndarray) -> float:
        """The reward of being at ``position`` (after a step)."""
        distance = float(np.linalg.norm(position - self._goal))
        if self.dense:
            return -distance
        return 1.0 - distance if distance <= self.goal_radius else 0.0

    def oracle_return(self, horizon: int) -> float:
        """The return of moving straight to the known goal at full speed for ``horizon`` steps."""
        position, total = np.zeros(2), 0.0
        for _ in range(horizon):
            position = position + self.max_step * np.clip((self._goal - position) / self.max_step, -1.0, 1.0)
            total += self.reward(position)
        return total

    def reference_returns(self, n_episodes: int) -> tuple[str, list[float]]:
        """The oracle's return per episode (the goal known from the start; mean over 181 goals 1 degree apart),
        an upper bound on any agent's: with the 20-step limit, 13.38 sparse and -3.84 dense."""
        horizon = self.spec.max_episode_steps if self.spec is not None and self.spec.max_episode_steps else 20
        angle = self._angle
        returns = []
        for goal_angle in np.linspace(0.0, np.pi, 181):
            self.set_task(goal_angle)
            returns.append(self.oracle_return(horizon))
        self.set_task(angle)
        return "Oracle", [float(np.mean(returns))] * n_episodes

    def step(self, action: Any):
        self._move(action)
        reward = self.reward(self._position)
        info = {"success": float(np.linalg.norm(self._position - self._goal) <= self.goal_radius)}
        return self._position.astype(np.float32), reward, False, False, info


class Navigation2D(_PlanarPoint):
    """MAML's 2-D navigation (Finn et al. 2017, section 5.3): move a point to a goal drawn uniformly from the square
    [-0.5, 0.5]^2, with the distance to the goal as a dense cost; the goal is the task.

    ## Action Space
    ``Box(-1, 1, (2,), float32)``: the displacement in units of ``max_step`` (0.1, MAML's action bound); clipped.

    ## Observation Space
    ``Box(-inf, inf, (2,), float32)``: the point's (x, y).

    ## Rewards
    Minus the distance to the goal after the step.

    ## Starting State
    (0, 0).

    ## Episode End
    Terminates within 0.01 of the goal in both coordinates (as MAML's); registered with a 100-step time limit.

    ## Arguments
    ``max_step`` (0.1), ``task`` (a fixed goal (x, y); default: sampled at the first reset).

    ## Task
    The goal; ``task_descriptor()`` is its (x, y).

    ## Version History
    v0: initial version.
    """

    def __init__(self, max_step: float = 0.1, task: Any = None, render_mode: str | None = None):
        self._init_point(max_step, render_mode)
        self.task_space = spaces.Box(-0.5, 0.5, (2,), np.float32)
        if task is not None:
            self.set_task(task)

    def sample_task(self, rng: np.random.Generator) -> np.ndarray:
        """A goal drawn uniformly from [-0.5, 0.5]^2."""
        return rng.uniform(-0.5, 0.5, size=2)

    def set_task(self, task: Any) -> None:
        """Set the goal (x, y), inside [-0.5, 0.5]^2."""
        goal = np.asarray(task, dtype=np.float64).reshape(-1)
        if goal.shape != (2,) or np.abs(goal).max() > 0.5:
            raise ValueError(f"Navigation2D task must be a goal (x, y) in [-0.5, 0.5]^2, got {task!r}")
        self._goal = goal

    def task_descriptor(self) -> np.ndarray:
        """The goal's (x, y)."""
        return self._goal.astype(np.float32)

    def step(self, action: Any):
        self._move(action)
        offset = self._position - self._goal
        terminated = bool(np.all(np.abs(offset) < 0.01))
        return self._position.astype(np.float32), -float(np.linalg.norm(offset)), terminated, False, {}
