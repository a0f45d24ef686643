"""MC-LS and its variants as one array-stepped meta-episode VecEnv: :class:`envs.mc_ls.LongShortMemoryCourse`'s rules
on arrays, the views looked up from a table of the drawn ones."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.mc_ls import (
    DIAMOND,
    END,
    END_REWARD,
    FORWARD,
    LEFT,
    MOVE_REWARD,
    RIGHT,
    ROOM_CELLS,
    ROOMS,
    SIGNAL,
    WRONG_END_REWARD,
    LongShortMemoryMaze,
    draw_view,
    goes_right,
    scale_pixels,
)
from sb3_hypernet.common.array_vec_env import ArrayMetaEpisodeVecEnv


class LongShortMemoryVecEnv(ArrayMetaEpisodeVecEnv):
    """``num_envs`` MC-LS meta-episode envs stepped as arrays: the same MDP as ``DummyVecEnv`` over ``MCLS-v0`` (or
    ``MCLSN-v0``, ``MCLSO-v0``, ``MCLSH-v0`` with their ``variant``), the room types and LSN's noise drawn from each
    env's own generator as the single env draws them (so the same seeds give the same episodes).

    :param num_envs: number of envs
    :param n_episodes: inner episodes per meta-episode (2, as the registered ids)
    :param max_episode_steps: the registered time limit (200; the course's own ``timeout`` ends episodes too)
    :param expose_task: add the signal to the observation under ``task``
    :param variant: and the other keywords of :class:`~envs.mc_ls.LongShortMemoryMaze`
    """

    reset_info = {"success": 0.0}

    def __init__(
        self,
        num_envs: int,
        n_episodes: int = 2,
        max_episode_steps: int | None = 200,
        expose_task: bool = False,
        variant: str = "LS",
        resolution: int = 10,
        n_rooms: int | None = None,
        noise_std: float | None = None,
        timeout: int = 200,
    ):
        # One single env holds the task distribution, the spaces, the reference and the checks of every argument.
        self.maze = LongShortMemoryMaze(variant, resolution, n_rooms, noise_std, timeout)
        spec = self.maze.variant
        self.timeout = int(timeout)
        self.max_episode_steps = int(max_episode_steps) if max_episode_steps else None
        super().__init__(num_envs, self.maze.observation_space, 3, self.maze.task_space, n_episodes, expose_task)
        n, self.n_rooms, self.signal_cells = self.num_envs, spec.n_rooms, spec.signal_cells
        # Views: signal (cell, colour), then room (type, cell), then the end.
        cell_index = {cell: i for i, cell in enumerate(ROOM_CELLS)}
        self._cell_index = np.zeros((3, 4), np.int64)
        for (x, y), i in cell_index.items():
            self._cell_index[x + 1, y] = i
        situations = [(SIGNAL, cell, colour) for cell in range(self.signal_cells) for colour in (0, 1)]
        situations += [(ROOMS, room_type, *cell) for room_type in (0, 1) for cell in ROOM_CELLS] + [(END,)]
        blank = np.zeros(self.observation_space["obs"].shape, np.float32)
        self._views = np.stack(
            [
                blank
                if spec.hidden_signal and situation[0] == SIGNAL
                else scale_pixels(draw_view(situation, resolution))
                for situation in situations
            ]
        )
        self._env_rngs = [np.random.default_rng() for _ in range(n)]
        self._signal = np.zeros((n, self.signal_cells), np.int64)
        self._goes_right = np.zeros(n, dtype=bool)
        self._room_types = np.zeros((n, self.n_rooms), np.int64)
        self._phase = np.zeros(n, np.int64)
        self._signal_cell = np.zeros(n, np.int64)
        self._room = np.zeros(n, np.int64)
        self._x = np.zeros(n, np.int64)
        self._y = np.zeros(n, np.int64)
        self._steps = np.zeros(n, np.int64)
        self._rooms_passed = np.zeros(n, np.int64)
        self._checks = np.zeros(n, np.int64)
        self._checks_correct = np.zeros(n, np.int64)
        self._end_side = np.full(n, -1, np.int64)
        self._obs = np.zeros((n, *self.observation_space["obs"].shape), np.float32)

    # -- the family's part of ArrayMetaEpisodeVecEnv --------------------------------------------------------------
    def _sample_task(self, rng: np.random.Generator) -> tuple[int, ...]:
        return self.maze.sample_task(rng)

    def _set_tasks(self, indices: np.ndarray, tasks: Sequence[Any]) -> None:
        for i, task in zip(indices, tasks, strict=True):
            self.maze.set_task(task)  # validates
            self._signal[i] = self.maze._signal
            self._goes_right[i] = goes_right(self.maze._signal)

    def _seed_inner(self, index: int, seed: int) -> None:
        # gymnasium's Env.reset(seed=s): PCG64 on SeedSequence(s).
        self._env_rngs[index] = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))

    def _reset_inner(self, mask: np.ndarray) -> None:
        for i in np.flatnonzero(mask):
            self._room_types[i] = self._env_rngs[i].integers(2, size=self.n_rooms)
        for array in (self._phase, self._signal_cell, self._room, self._x, self._y, self._steps):
            array[mask] = 0
        for array in (self._rooms_passed, self._checks, self._checks_correct):
            array[mask] = 0
        self._end_side[mask] = -1
        self._look(mask)

    def _step_inner(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        n = self.num_envs
        phase, x, y = self._phase.copy(), self._x.copy(), self._y.copy()
        rewards = np.zeros(n, np.float64)
        self._steps += 1

        # Signal platform: only "right" moves; off its last cell into room 1.
        moved = (phase == SIGNAL) & (actions == RIGHT)
        rewards[moved] = MOVE_REWARD
        self._signal_cell[moved] += 1
        entered = moved & (self._signal_cell == self.signal_cells)
        self._phase[entered] = ROOMS
        self._room[entered] = self._x[entered] = self._y[entered] = 0

        # End: left or right ends the episode, paid by the signal; forward does nothing.
        chose = (phase == END) & (actions != FORWARD)
        self._end_side[chose] = actions[chose]
        correct = chose & ((actions == RIGHT) == self._goes_right)
        rewards[chose] = np.where(correct[chose], END_REWARD, WRONG_END_REWARD)

        # Rooms.
        in_room = phase == ROOMS
        at_check = in_room & (x == 0) & (y == 1)
        at_far_side = in_room & (y == 3) & (x != 0)
        check = at_check & (actions != FORWARD)
        side = np.where(actions == LEFT, -1, 1)
        column_side = np.where(self._room_types[np.arange(n), self._room] == DIAMOND, -1, 1)
        passed_well = check & (side == column_side)
        self._x[check] = side[check]
        self._checks[check] += 1
        self._checks_correct[passed_well] += 1
        rewards[passed_well] = MOVE_REWARD
        around = at_far_side & (actions == np.where(x < 0, RIGHT, LEFT))
        self._x[around] = 0
        rewards[around] = MOVE_REWARD
        forward = in_room & (actions == FORWARD) & ~at_check & ~at_far_side
        rewards[forward] = MOVE_REWARD
        leaving = forward & (x == 0) & (y == 3)
        self._rooms_passed[leaving] += 1
        last = leaving & (self._room == self.n_rooms - 1)
        self._phase[last] = END
        onward = leaving & ~last
        self._room[onward] += 1
        self._x[onward] = self._y[onward] = 0
        ahead = forward & ~leaving
        self._y[ahead] += 1

        terminated = chose
        timed_out = ~terminated & (self._steps >= self.timeout)  # the course's timeout: reward 0
        rewards[timed_out] = 0.0
        course_over = terminated | timed_out
        done = course_over.copy()
        if self.max_episode_steps is not None:
            done |= self._steps >= self.max_episode_steps  # the registered TimeLimit
        self._look(np.ones(n, dtype=bool))
        success = (self._end_side >= 0) & ((self._end_side == RIGHT) == self._goes_right)
        infos: list[dict[str, Any]] = [{"success": float(value)} for value in success]
        for i in np.flatnonzero(course_over):  # the single env reports them when its course ends
            checks, reached = int(self._checks[i]), bool(self._end_side[i] >= 0)
            infos[i]["episode_statistics"] = {
                "rooms_passed": float(self._rooms_passed[i]),
                "check_accuracy": float(self._checks_correct[i] / checks) if checks else float("nan"),
                "end_reached": float(reached),
                "end_choice_accuracy": float(success[i]) if reached else float("nan"),
            }
        return rewards, done, infos

    def _look(self, mask: np.ndarray) -> None:
        """Compute the observations of the envs in ``mask`` (once per state change: LSN's noise is drawn here)."""
        base = 2 * self.signal_cells
        rows = np.arange(self.num_envs)
        signal_view = self._signal_cell * 2 + self._signal[rows, np.minimum(self._signal_cell, self.signal_cells - 1)]
        room_view = base + 9 * self._room_types[rows, self._room] + self._cell_index[self._x + 1, self._y]
        index = np.select([self._phase == SIGNAL, self._phase == ROOMS], [signal_view, room_view], base + 18)
        self._obs[mask] = self._views[index[mask]]
        noise_std = self.maze.variant.noise_std
        if noise_std:
            for i in np.flatnonzero(mask):
                noise = self._env_rngs[i].normal(0.0, noise_std, self._obs[i].shape).astype(np.float32)
                self._obs[i] = np.clip(self._obs[i] + noise, -1.0, 1.0)

    def _observe(self) -> np.ndarray:
        return self._obs.copy()

    def _task_descriptors(self) -> np.ndarray:
        return self._signal.astype(np.float32)

    def reference_returns(self) -> tuple[str, list[float]] | None:
        return self.maze.reference_returns(self.n_episodes)
