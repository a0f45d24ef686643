"""Learning tests (slow: several CPU minutes each; run with ``python -m pytest -m slow``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch as th

import envs  # noqa: F401
from sb3_hypernet.common.evaluation import RandomPolicy, evaluate_meta_policy
from sb3_hypernet.experiments.zoo import build_model

CONFIGS = Path(__file__).resolve().parents[1] / "zoo_configs"
# About 3.5 minutes on 2 cores. benchmarks/learning/learning_curve.py measured 6.8 after 1e5 frames and 20.8 after 2e5
# (seed 0); a random policy gets about -4.7.
LEARNING_FRAMES = 150_000
MARGIN = 8.0


@pytest.mark.slow
def test_rnn_hn_clearly_beats_random_on_gridnavi():
    threads = th.get_num_threads()
    th.set_num_threads(2)  # real-size networks: two threads pay off here
    try:
        model, callbacks = build_model(CONFIGS / "sb3_loss" / "rnn_hn.yml", "GridNavi-v0", seed=0)
        model.learn(LEARNING_FRAMES, callback=callbacks)
        trained = evaluate_meta_policy(model, "GridNavi-v0", n_meta_episodes=100, seed=123).meta_returns.mean()
    finally:
        th.set_num_threads(threads)
    random_return = evaluate_meta_policy(RandomPolicy.for_env("GridNavi-v0"), "GridNavi-v0", 200).meta_returns.mean()
    assert trained > random_return + MARGIN, (trained, random_return)
