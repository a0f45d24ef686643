"""Options for training at scale on a GPU (TF32, the sequence buffer on the device) leave CPU training unchanged;
the CUDA checks run where a GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.env_util import make_vec_env

import envs  # noqa: F401
from sb3_hypernet import MetaRecurrentPPO, RNNHNPolicy
from sb3_hypernet.experiments.zoo import use_tf32

SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], latent_embedding_dim=4, state_embedding_dim=8)
CUDA = pytest.mark.skipif(not th.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture
def restore_precision():
    saved = (
        th.backends.cuda.matmul.fp32_precision,
        th.backends.cudnn.conv.fp32_precision,
        th.backends.cudnn.rnn.fp32_precision,
    )
    yield
    th.backends.cuda.matmul.fp32_precision = saved[0]
    th.backends.cudnn.conv.fp32_precision = saved[1]
    th.backends.cudnn.rnn.fp32_precision = saved[2]


def train(device: str = "cpu", frames: int = 240) -> th.Tensor:
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0)
    model = MetaRecurrentPPO(
        RNNHNPolicy, env, n_steps=60, batch_size=40, n_epochs=2, seed=0, device=device, policy_kwargs=SMALL
    )
    model.learn(frames)
    return th.cat([p.detach().cpu().flatten() for p in model.policy.parameters()])


def test_tf32_flag_is_taken_off_the_command_line_and_sets_cudas_precision(restore_precision):
    assert use_tf32(["--algo", "ppo_lstm"]) == ["--algo", "ppo_lstm"]
    assert th.backends.cuda.matmul.fp32_precision != "tf32"
    assert use_tf32(["--algo", "ppo_lstm", "--tf32", "-n", "10"]) == ["--algo", "ppo_lstm", "-n", "10"]
    assert th.backends.cuda.matmul.fp32_precision == "tf32"
    assert th.backends.cudnn.conv.fp32_precision == "tf32" and th.backends.cudnn.rnn.fp32_precision == "tf32"


def test_tf32_leaves_cpu_training_bit_for_bit(restore_precision):
    plain = train()
    use_tf32(["--tf32"])
    assert th.equal(train(), plain)


def to_cpu(value):
    """A buffer sample (named tuples, dicts and tuples of tensors) with every tensor on the CPU."""
    if isinstance(value, th.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: to_cpu(item) for key, item in value.items()}
    items = [to_cpu(item) for item in value]
    return type(value)(*items) if hasattr(value, "_fields") else tuple(items)


def compare_buffer_on(device: str) -> None:
    """A sequence buffer on ``device`` cuts the minibatches a CPU one cuts from the same rollout."""
    from gymnasium import spaces
    from test_buffers import DICT_SPACE, N_ENVS, N_STEPS, assert_same, fill

    from sb3_hypernet.common.buffers import SequenceDictRolloutBuffer

    action_space = spaces.Discrete(4)
    shape = (N_STEPS, 1, N_ENVS, 6)
    cpu = SequenceDictRolloutBuffer(N_STEPS, DICT_SPACE, action_space, shape, "cpu", 0.9, 0.99, N_ENVS)
    other = SequenceDictRolloutBuffer(N_STEPS, DICT_SPACE, action_space, shape, device, 0.9, 0.99, N_ENVS)
    fill([cpu, other], DICT_SPACE, action_space, seed=0)
    np.random.seed(0)
    expected = list(cpu.get(40))
    np.random.seed(0)
    actual = [to_cpu(batch) for batch in other.get(40)]
    assert len(expected) == len(actual) > 1
    for e, a in zip(expected, actual, strict=True):
        assert_same(e, a)


def test_buffer_comparison_helper_on_cpu():
    compare_buffer_on("cpu")  # the CUDA test's own code, checked where no GPU is


@CUDA
def test_cuda_buffer_gives_the_cpu_buffers_minibatches():
    compare_buffer_on("cuda")


@CUDA
def test_training_on_cuda_runs_and_stays_close_to_cpu(restore_precision):
    cpu, cuda = train("cpu", 120), train("cuda", 120)
    assert th.isfinite(cuda).all()
    assert th.allclose(cpu, cuda, atol=1e-3)
