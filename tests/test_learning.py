"""Learning tests (slow: several CPU minutes each; run with ``python -m pytest -m slow``)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th

import envs  # noqa: F401
from sb3_hypernet.evaluation import evaluate_meta_policy
from sb3_hypernet.zoo import build_model, load_hyperparams

CONFIGS = Path(__file__).resolve().parents[1] / "zoo_configs"
# About 3.5 minutes on 2 cores. benchmarks/gridworld_learning.py measured 6.8 after 1e5 frames and 20.8 after 2e5
# (seed 0); a random policy gets about -4.7.
LEARNING_FRAMES = 150_000
MARGIN = 8.0


def random_policy_meta_return(env_id: str, n: int = 200, seed: int = 0) -> float:
    env = gym.make(env_id)
    env.action_space.seed(seed)
    returns = []
    for i in range(n):
        env.reset(seed=seed + i)
        done, total = False, 0.0
        while not done:
            _, reward, done, _, _ = env.step(env.action_space.sample())
            total += reward
        returns.append(total)
    return float(np.mean(returns))


@pytest.mark.slow
def test_rnn_hn_clearly_beats_random_on_gridnavi():
    threads = th.get_num_threads()
    th.set_num_threads(2)  # real-size networks: two threads pay off here
    try:
        model, callbacks = build_model(load_hyperparams(CONFIGS / "rnn_hn.yml", "GridNavi-v0"), "GridNavi-v0", seed=0)
        model.learn(LEARNING_FRAMES, callback=callbacks)
        trained = evaluate_meta_policy(model, "GridNavi-v0", n_meta_episodes=100, seed=123).meta_returns.mean()
    finally:
        th.set_num_threads(threads)
    random_return = random_policy_meta_return("GridNavi-v0")  # about -4.7
    assert trained > random_return + MARGIN, (trained, random_return)
