"""Whole meta-episodes for inference that reconstructs them (VariBAD; NeurIPS 2023 section 3.3).

RecurrentPPO's rollout buffer holds ``n_steps`` per env, cut into sequences: too little to decode a whole meta-episode,
past and future, from every step. :class:`MetaEpisodeBuffer` keeps the most recent complete meta-episodes (a ring, as
VariBAD's VAE buffer), and :class:`MetaEpisodeRecorder`, a callback that :class:`~sb3_hypernet.MetaRecurrentPPO` adds
to the callbacks of ``learn``, fills it from the rollouts as they are collected.

A stored meta-episode of T transitions keeps:

- the T + 1 observations the policy saw, ``o_0 .. o_T`` (``o_T`` the terminal observation), every key of the
  meta-episode observation but ``task``: the GRU encoder's input;
- for each transition t, the raw reward ``r_t`` (before VecNormalize) and the inner env's next state ``s_{t+1}``
  (at an inner-episode boundary the inner episode's terminal state, not the next episode's first state);
- the task descriptor, when the observation has a ``task`` entry (``expose_task=True``): the label that the
  task-inference methods' VAE decodes.

The action of transition t is ``o_{t+1}["prev_action"]``, the action the env received.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback

from sb3_hypernet.common.task import INNER_TERMINAL_KEY, META_OBS_KEYS, TASK_KEY


class MetaEpisodeBuffer:
    """Ring buffer of the ``capacity`` most recent complete meta-episodes, with per-env staging of the ones being
    collected. Storage grows with the longest meta-episode seen; shorter ones are padded and carry their length.

    :param capacity: meta-episodes kept
    :param observation_space: the meta-episode Dict observation space
    :param n_envs: number of envs recording at once
    """

    def __init__(self, capacity: int, observation_space: spaces.Dict, n_envs: int):
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"the meta-episode buffer size must be an integer >= 1, got {capacity!r}")
        self.capacity = int(capacity)
        self.n_envs = n_envs
        self.spaces = {key: observation_space[key] for key in META_OBS_KEYS}
        self.task_space = observation_space.spaces.get(TASK_KEY)
        self.max_length = 0  # transitions per meta-episode the storage holds
        self.size = 0
        self.position = 0
        self.lengths = np.zeros(self.capacity, np.int64)
        self.storage: dict[str, np.ndarray] = {}
        self.staging: dict[str, np.ndarray] = {}
        self.cursor = np.zeros(n_envs, np.int64)
        self.recording = np.zeros(n_envs, bool)
        self._allocate(16)

    def __len__(self) -> int:
        return self.size

    def _fields(self, length: int) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        obs_space = self.spaces["obs"]
        fields = {f"obs/{key}": ((length + 1, *space.shape), space.dtype) for key, space in self.spaces.items()}
        fields["reward"] = ((length,), np.dtype(np.float32))
        fields["next_state"] = ((length, *obs_space.shape), obs_space.dtype)
        if self.task_space is not None:
            fields["task"] = (self.task_space.shape, self.task_space.dtype)
        return fields

    def _allocate(self, length: int) -> None:
        """(Re)allocate storage and staging for meta-episodes of up to ``length`` transitions, keeping the data."""
        fields = self._fields(length)
        needed = (self.capacity + self.n_envs) * sum(
            np.prod(shape) * dtype.itemsize for shape, dtype in fields.values()
        )
        for target, rows, filled in (
            (self.storage, self.capacity, self.size),
            (self.staging, self.n_envs, self.n_envs),
        ):
            for name, (shape, dtype) in fields.items():
                try:
                    grown = np.zeros((rows, *shape), dtype)  # zero pages take no memory until written
                except MemoryError as error:
                    raise MemoryError(
                        f"the VAE's meta-episode buffer cannot hold vae_buffer_size={self.capacity} meta-episodes of "
                        f"up to {length} steps with observations of shape {self.spaces['obs'].shape}: that needs "
                        f"{needed / 2**30:.1f} GiB. Lower vae_buffer_size (image observations need a few hundred to "
                        "a few thousand meta-episodes)."
                    ) from error
                if name == "task" and name in target:
                    grown[:filled] = target[name][:filled]
                elif name in target:
                    grown[:filled, : target[name].shape[1]] = target[name][:filled]
                target[name] = grown
        self.max_length = length

    def start(self, episode_starts: np.ndarray) -> None:
        """Start recording: envs at a meta-episode start record from their next step; the others wait for their
        next meta-episode (a partial one is never stored)."""
        self.cursor[:] = 0
        self.recording[:] = np.asarray(episode_starts, bool)

    def add(
        self,
        obs: dict[str, np.ndarray],
        new_obs: dict[str, np.ndarray],
        rewards: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """One step of every env: ``obs`` before it, ``new_obs`` after (auto-reset where ``dones``), raw rewards."""
        if int(self.cursor.max()) >= self.max_length:
            self._allocate(2 * self.max_length)
        envs = np.arange(self.n_envs)
        t = self.cursor.copy()
        for key in META_OBS_KEYS:
            self.staging[f"obs/{key}"][envs, t] = obs[key]
        if self.task_space is not None:
            self.staging["task"][envs] = obs[TASK_KEY]
        self.staging["reward"][envs, t] = rewards
        self.staging["next_state"][envs, t] = new_obs["obs"]
        self.cursor += 1
        for i in np.flatnonzero(dones | np.asarray([INNER_TERMINAL_KEY in info for info in infos])):
            if dones[i]:
                terminal = infos[i]["terminal_observation"]
                for key in META_OBS_KEYS:
                    self.staging[f"obs/{key}"][i, self.cursor[i]] = terminal[key]
                self.staging["next_state"][i, t[i]] = terminal["obs"]
                if self.recording[i]:
                    self._store(i)
                self.recording[i] = True
                self.cursor[i] = 0
            else:  # inner-episode boundary: the next state is the inner episode's terminal state
                self.staging["next_state"][i, t[i]] = infos[i][INNER_TERMINAL_KEY]

    def _store(self, env: int) -> None:
        length = int(self.cursor[env])
        for name, staged in self.staging.items():
            if name == "task":
                self.storage[name][self.position] = staged[env]
                continue
            rows = length + 1 if name.startswith("obs/") else length
            stored = self.storage[name][self.position]
            stored[:rows] = staged[env, :rows]
            stored[rows:] = 0
        self.lengths[self.position] = length
        self.position = (self.position + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, device: th.device | str = "cpu") -> dict[str, Any]:
        """``batch_size`` stored meta-episodes drawn uniformly (with NumPy's global generator, which SB3 seeds),
        as tensors cut to the longest of them: ``obs`` (a dict of (B, T + 1, ...)), ``reward`` (B, T),
        ``next_state`` (B, T, ...), ``lengths`` (B,) and, with a task entry, ``task`` (B, ...)."""
        if self.size == 0:
            raise ValueError("the meta-episode buffer is empty: no meta-episode has been completed yet")
        index = np.random.randint(0, self.size, size=batch_size)
        lengths = self.lengths[index]
        longest = int(lengths.max())
        batch: dict[str, Any] = {"obs": {}, "lengths": th.as_tensor(lengths, device=device)}
        for name, stored in self.storage.items():
            if name == "task":
                batch[name] = th.as_tensor(stored[index], device=device)
                continue
            cut = stored[index, : longest + 1] if name.startswith("obs/") else stored[index, :longest]
            tensor = th.as_tensor(cut, device=device)
            if name.startswith("obs/"):
                batch["obs"][name[4:]] = tensor
            else:
                batch[name] = tensor
        return batch


class MetaEpisodeRecorder(BaseCallback):
    """Fills a :class:`MetaEpisodeBuffer` from the rollouts, one call per env step. Added by
    :class:`~sb3_hypernet.MetaRecurrentPPO` to the callbacks of ``learn`` when the policy trains on whole
    meta-episodes; users do not add it themselves."""

    def __init__(self, buffer: MetaEpisodeBuffer):
        super().__init__()
        self.buffer = buffer
        self.vec_normalize = None

    def _on_training_start(self) -> None:
        self.vec_normalize = self.model.get_vec_normalize_env()
        if self.vec_normalize is not None and self.vec_normalize.norm_obs:
            raise ValueError(
                f"{type(self.model.policy).__name__} reconstructs the env's states and rewards, but VecNormalize "
                'normalises the observations (norm_obs=True): use normalize: "dict(norm_obs=False, ...)" (the '
                "policy normalises its state input itself)."
            )
        self.buffer.start(self.model._last_episode_starts)

    def _on_step(self) -> bool:
        rewards = self.locals["rewards"] if self.vec_normalize is None else self.vec_normalize.get_original_reward()
        self.buffer.add(self.model._last_obs, self.locals["new_obs"], rewards, self.locals["dones"],
                        self.locals["infos"])  # fmt: skip
        return True
