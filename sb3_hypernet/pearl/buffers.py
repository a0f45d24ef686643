"""PEARL's per-task replay buffers (Rakelly et al. 2019, section 5): transitions kept apart by task, so that a
training batch and a context are each drawn from one task only.

PEARL keeps two of them: the RL buffer (every transition collected) and the encoder buffer (the recent transitions
collected for the context, cleared for a task before new data of that task is collected).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch as th

#: Arrays stored per transition, in the order of a context: (s, a, r, s') and the done flag.
FIELDS = ("observations", "actions", "rewards", "next_observations", "dones")


class TaskReplayBuffer:
    """Transitions of ``n_tasks`` tasks, each task's in its own circular buffer of ``capacity`` transitions.

    Storage grows with the data (PEARL's 1e6 transitions per task for 100 tasks would be 16 GB preallocated).

    :param n_tasks: number of tasks
    :param capacity: transitions kept per task (the oldest are overwritten)
    :param obs_dim: size of an observation
    :param action_dim: size of an action
    :param device: where sampled batches go
    """

    def __init__(self, n_tasks: int, capacity: int, obs_dim: int, action_dim: int, device: th.device | str = "cpu"):
        if n_tasks < 1 or capacity < 1:
            raise ValueError(f"n_tasks and capacity must be >= 1, got {n_tasks} and {capacity}")
        self.n_tasks, self.capacity = int(n_tasks), int(capacity)
        self.dims = {"observations": obs_dim, "actions": action_dim, "rewards": 1, "next_observations": obs_dim,
                     "dones": 1}  # fmt: skip
        self.device = th.device(device)
        self._data: list[dict[str, np.ndarray]] = [self._allocate(0) for _ in range(self.n_tasks)]
        self._top = np.zeros(self.n_tasks, dtype=np.int64)  # next write position
        self._size = np.zeros(self.n_tasks, dtype=np.int64)

    def _allocate(self, length: int) -> dict[str, np.ndarray]:
        return {name: np.zeros((length, dim), np.float32) for name, dim in self.dims.items()}

    def size(self, task: int) -> int:
        """Transitions stored for ``task``."""
        return int(self._size[task])

    def add(
        self,
        task: int,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        next_observations: np.ndarray,
        dones: np.ndarray,
    ) -> None:
        """Store transitions (leading dimension: one per transition) of ``task``."""
        if not 0 <= task < self.n_tasks:
            raise IndexError(f"task index {task} outside [0, {self.n_tasks})")
        values = dict(zip(FIELDS, (observations, actions, rewards, next_observations, dones), strict=True))
        values = {name: np.asarray(value, np.float32).reshape(-1, self.dims[name]) for name, value in values.items()}
        n = len(values["observations"])
        data = self._data[task]
        needed = min(self.capacity, int(self._size[task]) + n)
        if len(data["observations"]) < needed:  # grow (doubling) until capacity
            grown = self._allocate(min(self.capacity, max(needed, 2 * len(data["observations"]), 1024)))
            for name in FIELDS:
                grown[name][: self._size[task]] = data[name][: self._size[task]]
            self._data[task] = data = grown
        positions = (self._top[task] + np.arange(n)) % self.capacity
        for name in FIELDS:
            data[name][positions] = values[name]
        self._top[task] = (self._top[task] + n) % self.capacity
        self._size[task] = min(self.capacity, self._size[task] + n)

    def clear(self, task: int) -> None:
        """Forget every transition of ``task`` (PEARL clears a task's encoder buffer before collecting for it)."""
        self._top[task] = self._size[task] = 0

    def sample(self, tasks: Sequence[int], batch_size: int, rng: np.random.Generator) -> dict[str, th.Tensor]:
        """``batch_size`` transitions of each task, drawn uniformly with replacement: tensors
        ``(len(tasks), batch_size, dim)``, row i from ``tasks[i]`` only."""
        empty = [int(t) for t in tasks if self._size[t] == 0]
        if empty:
            raise ValueError(f"no transitions stored for task(s) {empty}")
        batch = {name: np.empty((len(tasks), batch_size, dim), np.float32) for name, dim in self.dims.items()}
        for i, task in enumerate(tasks):
            rows = rng.integers(self._size[task], size=batch_size)
            for name in FIELDS:
                batch[name][i] = self._data[task][name][rows]
        return {name: th.as_tensor(value, device=self.device) for name, value in batch.items()}

    def sample_context(
        self, tasks: Sequence[int], batch_size: int, rng: np.random.Generator, next_observations: bool = False
    ) -> th.Tensor:
        """Context transitions ``(s, a, r[, s'])`` of each task: ``(len(tasks), batch_size, context_dim)``."""
        batch = self.sample(tasks, batch_size, rng)
        return context_of(batch, next_observations)


def context_of(batch: dict[str, th.Tensor], next_observations: bool = False) -> th.Tensor:
    """The context transitions ``(s, a, r[, s'])`` of a batch of transitions, concatenated on the last axis."""
    parts = [batch["observations"], batch["actions"], batch["rewards"]]
    if next_observations:
        parts.append(batch["next_observations"])
    return th.cat(parts, dim=-1)
