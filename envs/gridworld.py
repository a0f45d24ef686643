"""Grid-World navigation (GridNavi) and its Show and Dense variants (NeurIPS 2023, sections 4.1 and 8.5)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_hypernet.common.task import TaskDistribution

# stay, up, right, down, left
_MOVES = np.array([[0, 0], [0, 1], [1, 0], [0, -1], [-1, 0]], dtype=np.int64)


class GridNavi(gym.Env, TaskDistribution):
    """Navigate a grid to a hidden goal cell; the goal is the task.

    ## Description
    The agent starts in the bottom-left cell (0, 0) of a ``size`` x ``size`` grid at every episode and must find a
    goal cell and stay there. The goal is drawn uniformly from the cells outside the start's 2x2 corner (21 cells
    on the 5x5 grid) and stays fixed across the episodes of a meta-episode (VariBAD's grid-world, Zintgraf et al.
    2020; Beck et al. 2023 section 8.5).

    ## Action Space
    ``Discrete(5)``: 0 stay, 1 up (y+1), 2 right (x+1), 3 down (y-1), 4 left (x-1). Moves off the grid stay put.

    ## Observation Space
    ``Box(0, size-1, (2,), float32)``:

    | index | observation |
    |-------|-------------|
    | 0     | x of the agent (column) |
    | 1     | y of the agent (row) |

    With ``show_goal=True`` (Grid-World Show) the observation is the goal's (x, y) whenever the agent is on (0, 0):
    at the start of every episode and after any step that ends there.

    ## Rewards
    ``goal_reward`` (+1) on every step that ends on the goal; otherwise ``step_penalty`` (-0.1), or with
    ``dense=True`` (Grid-World Dense) minus the Manhattan distance to the goal divided by ``size``.

    ## Starting State
    (0, 0).

    ## Episode End
    No termination; registered with a 15-step time limit.

    ## Arguments
    ``size`` (5), ``goal_reward`` (1.0), ``step_penalty`` (-0.1), ``show_goal`` (False), ``dense`` (False),
    ``task`` (a fixed goal (x, y); default: sampled at the first reset).

    ## Task
    The goal cell; ``task_descriptor()`` is its (x, y) as float32.

    ## Version History
    v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        size: int = 5,
        goal_reward: float = 1.0,
        step_penalty: float = -0.1,
        show_goal: bool = False,
        dense: bool = False,
        task: Any = None,
        render_mode: str | None = None,
    ):
        if size < 3:
            raise ValueError(f"GridNavi needs size >= 3, got {size}")
        self.size = int(size)
        self.goal_reward = float(goal_reward)
        self.step_penalty = float(step_penalty)
        self.show_goal = bool(show_goal)
        self.dense = bool(dense)
        self.render_mode = render_mode
        high = float(self.size - 1)
        self.observation_space = spaces.Box(0.0, high, (2,), np.float32)
        self.action_space = spaces.Discrete(5)
        self.task_space = spaces.Box(0.0, high, (2,), np.float32)
        cells = np.array([(x, y) for x in range(self.size) for y in range(self.size)], dtype=np.int64)
        self.goal_cells = cells[(cells[:, 0] >= 2) | (cells[:, 1] >= 2)]
        self._goal: np.ndarray | None = None
        self._pos = np.zeros(2, np.int64)
        if task is not None:
            self.set_task(task)

    # -- task distribution -------------------------------------------------------------------------------------
    def sample_task(self, rng: np.random.Generator) -> np.ndarray:
        """A goal cell drawn uniformly from the cells outside the start's 2x2 corner."""
        return self.goal_cells[rng.integers(len(self.goal_cells))].copy()

    def set_task(self, task: Any) -> None:
        """Set the goal cell (x, y)."""
        values = np.asarray(task, dtype=np.float64).reshape(-1)
        goal = values.astype(np.int64)
        if goal.shape != (2,) or goal.min() < 0 or goal.max() >= self.size or not np.array_equal(goal, values):
            raise ValueError(
                f"GridNavi task must be a cell (x, y) inside the {self.size}x{self.size} grid, got {task!r}"
            )
        self._goal = goal

    def task_descriptor(self) -> np.ndarray:
        """The goal's (x, y)."""
        return self._goal.astype(np.float32)

    def reference_returns(self, n_episodes: int) -> tuple[str, list[float]] | None:
        """The Bayes-optimal expected return of each episode (about 4.0, then 11.07 once the goal is known;
        37.2 in all), known for the paper's setting only: the plain 5x5 GridNavi, 4 episodes per meta-episode."""
        default = (self.size, self.goal_reward, self.step_penalty, self.show_goal, self.dense) == (
            5,
            1.0,
            -0.1,
            False,
            False,
        )
        if not default or n_episodes != 4:
            return None
        return "Bayes-optimal", [4.0, 11.07, 11.07, 11.07]

    # -- gymnasium API -----------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if self._goal is None:
            self.set_task(self.sample_task(self.np_random))
        self._pos = np.zeros(2, np.int64)
        return self._observation(), {}

    def step(self, action: Any):
        if not self.action_space.contains(action):
            raise ValueError(f"GridNavi action must be an integer in [0, 5), got {action!r}")
        if self._goal is None:
            raise RuntimeError("GridNavi: call reset() before step()")
        self._pos = np.clip(self._pos + _MOVES[int(action)], 0, self.size - 1)
        distance = int(np.abs(self._pos - self._goal).sum())
        if distance == 0:
            reward = self.goal_reward
        elif self.dense:
            reward = -distance / self.size
        else:
            reward = self.step_penalty
        return self._observation(), reward, False, False, {}

    def _observation(self) -> np.ndarray:
        if self.show_goal and not self._pos.any():
            return self._goal.astype(np.float32)
        return self._pos.astype(np.float32)

    def render(self) -> str | np.ndarray | None:
        """``ansi``: rows of ``.``, ``G`` (goal) and ``A`` (agent), top row first; ``rgb_array``: a 16-pixel-per-cell
        image (agent blue, goal green)."""
        goal = None if self._goal is None else tuple(self._goal)
        if self.render_mode == "ansi":
            rows = []
            for y in reversed(range(self.size)):
                cells = (
                    "A" if (x, y) == tuple(self._pos) else "G" if goal == (x, y) else "." for x in range(self.size)
                )
                rows.append("".join(cells))
            return "\n".join(rows)
        if self.render_mode == "rgb_array":
            grid = np.full((self.size, self.size, 3), 230, np.uint8)
            if self._goal is not None:
                grid[self.size - 1 - self._goal[1], self._goal[0]] = (60, 180, 75)
            grid[self.size - 1 - self._pos[1], self._pos[0]] = (0, 90, 200)
            return np.kron(grid, np.ones((16, 16, 1), np.uint8))
        return None
