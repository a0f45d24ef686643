"""Recurrent rollout buffers that cut and pad minibatches with a few batched gathers instead of one copy per sequence.

sb3-contrib's ``RecurrentRolloutBuffer`` pads each minibatch by building one tensor per sequence and field
(``th.tensor(array[start:end + 1], device)``, then ``pad_sequence``): with hundreds of envs that is thousands of small
host-to-device copies per update, which dominate an update on a GPU. :class:`SequenceRolloutBuffer` and
:class:`SequenceDictRolloutBuffer` keep sb3-contrib's storage, returns and minibatch order (``get`` is theirs),
copy each step's tensors to the host in one transfer (``add``), and replace ``_get_samples``: the rollout moves to
the device once per rollout, and each minibatch is one index computation in NumPy plus one gather per field on the
device. The samples are identical to sb3-contrib's, value for value (tested), so training is unchanged.
:class:`~sb3_hypernet.MetaRecurrentPPO` uses them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer, RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.type_aliases import (
    RecurrentDictRolloutBufferSamples,
    RecurrentRolloutBufferSamples,
    RNNStates,
)

#: Per-step scalars gathered together as the columns of one tensor.
_SCALARS = ("values", "log_probs", "advantages", "returns", "episode_starts")
_STATES = ("hidden_states_pi", "cell_states_pi", "hidden_states_vf", "cell_states_vf")


def padded_positions(episode_starts: np.ndarray, env_change: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Where each step of a minibatch goes in sb3-contrib's padded layout.

    A sequence starts at a minibatch step whose ``episode_starts`` or ``env_change`` is set, and at the first step
    (sb3-contrib's ``create_sequencers``). Returns each sequence's first step (index into the minibatch), each
    step's row in the (n_seq * max_length) padded batch, and ``max_length``.
    """
    n_steps = len(episode_starts)
    starts_flag = np.logical_or(episode_starts, env_change).reshape(-1)
    starts_flag[0] = True
    seq_starts = np.flatnonzero(starts_flag)
    lengths = np.diff(np.append(seq_starts, n_steps))
    max_length = int(lengths.max())
    seq_of_step = np.repeat(np.arange(len(seq_starts)), lengths)
    rows = seq_of_step * max_length + (np.arange(n_steps) - seq_starts[seq_of_step])
    return seq_starts, rows, max_length


class _DevicePadding:
    """``_get_samples`` for sb3-contrib's recurrent buffers, from device-resident copies of the flattened rollout."""

    device: th.device
    n_envs: int
    buffer_size: int
    generator_ready: bool

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        self._on_device: dict[str, Any] | None = None

    def add(self, *args: Any, lstm_states: RNNStates) -> None:
        # One device-to-host copy per step for the four recurrent states, the values and the log-probabilities
        # (sb3-contrib copies each on its own: six synchronisations per step on a GPU).
        obs, action, reward, episode_start, value, log_prob = args
        n = value.numel()
        tensors = [value, log_prob, *lstm_states.pi, *lstm_states.vf]
        host = th.cat([tensor.reshape(-1) for tensor in tensors]).cpu()
        states = host[2 * n :].view(4, *lstm_states.pi[0].shape)
        super().add(  # type: ignore[misc]
            obs,
            action,
            reward,
            episode_start,
            host[:n].view_as(value),
            host[n : 2 * n].view_as(log_prob),
            lstm_states=RNNStates((states[0], states[1]), (states[2], states[3])),
        )

    def whole_rollout(self) -> Any:
        """The whole rollout as one batch, each env's steps one sequence from the rollout's first step (cut only where
        an episode starts). ``get`` would rotate the steps at a random index, cutting one env's steps in two: the
        second part would start from the recurrent state stored during the rollout instead of re-running the GRU
        from the rollout's start, as minibatches of random steps of the whole rollout (the reference's) do."""
        n_steps = self.buffer_size * self.n_envs
        if not self.generator_ready:
            next(iter(self.get(1)))  # sb3-contrib flattens the rollout on its generator's first step (one step padded)
        env_change = np.zeros((self.buffer_size, self.n_envs))
        env_change[0, :] = 1.0
        return self._get_samples(np.arange(n_steps), self.swap_and_flatten(env_change))  # type: ignore[attr-defined]

    def _rollout_on_device(self) -> dict[str, Any]:
        """The flattened rollout as device tensors, built on the first minibatch after ``get`` flattened it."""
        if self._on_device is None:
            to = lambda array: th.as_tensor(array, device=self.device)  # noqa: E731  (no copy on the CPU)
            observations = self.observations
            self._on_device = {
                "observations": (
                    {key: to(obs) for key, obs in observations.items()}
                    if isinstance(observations, dict)
                    else to(observations)
                ),
                "actions": to(self.actions),
                "scalars": to(np.stack([getattr(self, name).reshape(-1) for name in _SCALARS], axis=1)),
                **{name: to(getattr(self, name)) for name in _STATES},
            }
        return self._on_device

    def _get_samples(self, batch_inds: np.ndarray, env_change: np.ndarray, env: Any = None) -> Any:
        data = self._rollout_on_device()
        seq_starts, rows, max_length = padded_positions(self.episode_starts[batch_inds], env_change[batch_inds])
        self.seq_start_indices = seq_starts  # as sb3-contrib's buffer leaves it
        n_rows = len(seq_starts) * max_length
        source = th.as_tensor(batch_inds, device=self.device)
        target = th.as_tensor(rows, device=self.device)

        def pad(tensor: th.Tensor) -> th.Tensor:
            out = tensor.new_zeros((n_rows, *tensor.shape[1:]))
            out[target] = tensor[source]
            return out

        scalars = pad(data["scalars"]).T.contiguous()  # one row per field, each contiguous like sb3-contrib's
        mask = th.zeros(n_rows, dtype=scalars.dtype, device=self.device)
        mask[target] = 1.0
        first = th.as_tensor(batch_inds[seq_starts], device=self.device)
        # (n_seq, n_layers, dim) -> (n_layers, n_seq, dim), as sb3-contrib
        states = [data[name][first].transpose(0, 1).contiguous() for name in _STATES]
        observations = data["observations"]
        observations = (
            {key: pad(obs) for key, obs in observations.items()}
            if isinstance(observations, dict)
            else pad(observations)
        )
        samples_class = (
            RecurrentDictRolloutBufferSamples if isinstance(observations, dict) else RecurrentRolloutBufferSamples
        )
        values, log_probs, advantages, returns, episode_starts = scalars.unbind(0)
        return samples_class(
            observations=observations,
            actions=pad(data["actions"]),
            old_values=values,
            old_log_prob=log_probs,
            advantages=advantages,
            returns=returns,
            lstm_states=RNNStates((states[0], states[1]), (states[2], states[3])),
            episode_starts=episode_starts,
            mask=mask,
        )


class SequenceRolloutBuffer(_DevicePadding, RecurrentRolloutBuffer):
    """sb3-contrib's ``RecurrentRolloutBuffer`` with batched minibatch padding (same samples; module docstring)."""


class SequenceDictRolloutBuffer(_DevicePadding, RecurrentDictRolloutBuffer):
    """sb3-contrib's ``RecurrentDictRolloutBuffer`` with batched minibatch padding (same samples; module docstring)."""
