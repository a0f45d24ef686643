"""GridNavi, Show and Dense as one array-stepped meta-episode VecEnv (the dynamics of :class:`envs.gridworld.GridNavi`
on arrays)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.gridworld import _MOVES, GridNavi
from sb3_hypernet.common.array_vec_env import ArrayMetaEpisodeVecEnv


class GridNaviVecEnv(ArrayMetaEpisodeVecEnv):
    """``num_envs`` GridNavi meta-episode envs stepped as arrays: the same MDP as ``DummyVecEnv`` over
    ``GridNavi-v0`` (``GridNaviShow-v0`` with ``show_goal=True``, ``GridNaviDense-v0`` with ``dense=True``).

    :param num_envs: number of envs
    :param n_episodes: inner episodes per meta-episode (4, as the registered ids)
    :param max_episode_steps: steps per inner episode (15)
    :param expose_task: add the goal to the observation under ``task``
    :param size: grid size, and the other keywords of :class:`~envs.gridworld.GridNavi`
    """

    def __init__(
        self,
        num_envs: int,
        n_episodes: int = 4,
        max_episode_steps: int = 15,
        expose_task: bool = False,
        size: int = 5,
        goal_reward: float = 1.0,
        step_penalty: float = -0.1,
        show_goal: bool = False,
        dense: bool = False,
    ):
        # One single env holds the task distribution, the spaces and the checks of every argument.
        self.grid = GridNavi(size, goal_reward, step_penalty, show_goal, dense)
        integer = isinstance(max_episode_steps, (int, np.integer)) and not isinstance(max_episode_steps, bool)
        if not integer or max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be an integer >= 1, got {max_episode_steps!r}")
        self.max_episode_steps = int(max_episode_steps)
        super().__init__(num_envs, self.grid.observation_space, 5, self.grid.task_space, n_episodes, expose_task)
        self._pos = np.zeros((self.num_envs, 2), np.int64)
        self._goal = np.zeros((self.num_envs, 2), np.int64)
        self._steps = np.zeros(self.num_envs, np.int64)

    def _sample_task(self, rng: np.random.Generator) -> np.ndarray:
        return self.grid.sample_task(rng)

    def _set_tasks(self, indices: np.ndarray, tasks: Sequence[Any]) -> None:
        for i, task in zip(indices, tasks, strict=True):
            self.grid.set_task(task)  # validates
            self._goal[i] = self.grid._goal

    def _reset_inner(self, mask: np.ndarray) -> None:
        self._pos[mask] = 0
        self._steps[mask] = 0

    def _step_inner(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, None]:
        grid = self.grid
        self._pos = np.clip(self._pos + _MOVES[actions], 0, grid.size - 1)
        distance = np.abs(self._pos - self._goal).sum(axis=1)
        off_goal = -distance / grid.size if grid.dense else np.full(self.num_envs, grid.step_penalty)
        rewards = np.where(distance == 0, grid.goal_reward, off_goal)
        self._steps += 1
        return rewards, self._steps >= self.max_episode_steps, None

    def _observe(self) -> np.ndarray:
        shown = self._pos.astype(np.float32)
        if self.grid.show_goal:
            at_start = ~self._pos.any(axis=1)
            shown[at_start] = self._goal[at_start]
        return shown

    def _task_descriptors(self) -> np.ndarray:
        return self._goal.astype(np.float32)

    def reference_returns(self) -> tuple[str, list[float]] | None:
        return self.grid.reference_returns(self.n_episodes)
