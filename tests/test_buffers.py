"""Sequence rollout buffers: the same minibatches as sb3-contrib's recurrent buffers, value for value."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer, RecurrentRolloutBuffer
from sb3_contrib.common.recurrent.type_aliases import RNNStates

from sb3_hypernet.common.buffers import SequenceDictRolloutBuffer, SequenceRolloutBuffer, padded_positions

N_STEPS, N_ENVS, LAYERS, HIDDEN = 23, 5, 1, 6
DICT_SPACE = spaces.Dict(
    {
        "obs": spaces.Box(-1.0, 1.0, (3,), np.float32),
        "prev_action": spaces.Box(0.0, 1.0, (4,), np.float32),
        "image": spaces.Box(0, 255, (2, 2, 3), np.uint8),
    }
)
BOX_SPACE = spaces.Box(-1.0, 1.0, (2, 3), np.float32)


def fill(buffers: list, observation_space: spaces.Space, action_space: spaces.Space, seed: int) -> None:
    """Add the same random rollout (episode starts at random steps) to every buffer and compute returns."""
    rng = np.random.default_rng(seed)
    observation_space.seed(seed)
    action_space.seed(seed)
    for buffer in buffers:
        buffer.reset()
    for step in range(N_STEPS):
        obs = [observation_space.sample() for _ in range(N_ENVS)]
        obs = {k: np.stack([o[k] for o in obs]) for k in obs[0]} if isinstance(obs[0], dict) else np.stack(obs)
        actions = np.stack([action_space.sample() for _ in range(N_ENVS)]).reshape(N_ENVS, -1)
        rewards = rng.normal(size=N_ENVS).astype(np.float32)
        starts = (rng.random(N_ENVS) < 0.15) | (step == 0)
        values = th.as_tensor(rng.normal(size=(N_ENVS, 1)), dtype=th.float32)
        log_probs = th.as_tensor(rng.normal(size=N_ENVS), dtype=th.float32)
        states = [th.as_tensor(rng.normal(size=(LAYERS, N_ENVS, HIDDEN)), dtype=th.float32) for _ in range(4)]
        for buffer in buffers:
            buffer.add(
                obs,
                actions,
                rewards,
                starts,
                values,
                log_probs,
                lstm_states=RNNStates((states[0], states[1]), (states[2], states[3])),
            )
    last_values = th.as_tensor(rng.normal(size=(N_ENVS, 1)), dtype=th.float32)
    dones = rng.random(N_ENVS) < 0.3
    for buffer in buffers:
        buffer.compute_returns_and_advantage(last_values=last_values, dones=dones)


def assert_same(expected, actual) -> None:
    """Field by field, same shape, dtype and values."""
    for name in expected._fields:
        a, b = getattr(expected, name), getattr(actual, name)
        if name == "lstm_states":
            for x, y in zip([*a.pi, *a.vf], [*b.pi, *b.vf], strict=True):
                assert x.dtype == y.dtype and x.shape == y.shape and th.equal(x, y), name
                assert y.is_contiguous()
        elif isinstance(a, dict):
            assert a.keys() == b.keys()
            for key in a:
                assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
                assert th.equal(a[key], b[key]), key
        else:
            assert a.dtype == b.dtype and a.shape == b.shape, name
            assert th.equal(a, b), name


def make(buffer_cls: type, observation_space: spaces.Space, action_space: spaces.Space):
    return buffer_cls(
        N_STEPS, observation_space, action_space, (N_STEPS, LAYERS, N_ENVS, HIDDEN), "cpu", 0.9, 0.99, N_ENVS
    )


@pytest.mark.parametrize(
    "observation_space, stock_cls, sequence_cls",
    [
        (DICT_SPACE, RecurrentDictRolloutBuffer, SequenceDictRolloutBuffer),
        (BOX_SPACE, RecurrentRolloutBuffer, SequenceRolloutBuffer),
    ],
)
@pytest.mark.parametrize("action_space", [spaces.Discrete(4), spaces.Box(-1.0, 1.0, (2,), np.float32)])
@pytest.mark.parametrize("batch_size", [None, 1, 7, 23, 40, 115])
def test_minibatches_equal_sb3_contribs(observation_space, stock_cls, sequence_cls, action_space, batch_size):
    stock, sequence = (
        make(stock_cls, observation_space, action_space),
        make(sequence_cls, observation_space, action_space),
    )
    for rollout in range(2):  # a second rollout must not see the first one's device copies
        fill([stock, sequence], observation_space, action_space, seed=rollout)
        for epoch in range(2):  # the shuffle draws from NumPy's global generator, as sb3-contrib's get does
            np.random.seed(100 * rollout + epoch)
            expected = list(stock.get(batch_size))
            np.random.seed(100 * rollout + epoch)
            actual = list(sequence.get(batch_size))
            assert len(expected) == len(actual) == -(-N_STEPS * N_ENVS // (batch_size or N_STEPS * N_ENVS))
            for e, a in zip(expected, actual, strict=True):
                assert_same(e, a)
            assert np.array_equal(stock.seq_start_indices, sequence.seq_start_indices)


def test_padded_positions_lay_sequences_out_as_sb3_contrib():
    # Minibatch of 7 steps: sequences start at 0 (always), 2 (episode start) and 5 (env change).
    starts = np.array([0, 0, 1, 0, 0, 0, 0], float)
    env_change = np.array([0, 0, 0, 0, 0, 1, 0], float)
    seq_starts, rows, max_length = padded_positions(starts, env_change)
    np.testing.assert_array_equal(seq_starts, [0, 2, 5])
    assert max_length == 3
    np.testing.assert_array_equal(rows, [0, 1, 3, 4, 5, 6, 7])


def test_meta_recurrent_ppo_trains_on_the_sequence_buffer():
    import envs  # noqa: F401
    from sb3_hypernet import MetaRecurrentPPO, RNNHNPolicy

    model = MetaRecurrentPPO(
        RNNHNPolicy,
        "GridNavi-v0",
        n_steps=60,
        batch_size=30,
        n_epochs=1,
        seed=0,
        policy_kwargs=dict(gru_hidden_size=8, net_arch=[8], latent_embedding_dim=4, state_embedding_dim=4),
    )
    assert type(model.rollout_buffer) is SequenceDictRolloutBuffer
    assert model.rollout_buffer.hidden_state_shape == (60, 1, 1, 8)
    assert (model.rollout_buffer.gamma, model.rollout_buffer.gae_lambda) == (model.gamma, model.gae_lambda)
    model.learn(120)
    assert model.num_timesteps == 120
