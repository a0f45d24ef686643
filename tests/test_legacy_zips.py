"""Models saved before the package's layout moved (``tests/data``, made by ``tests/data/make_legacy_zips.py`` at
commit 7decb10) still load, as the algorithm they were trained with, and act exactly as they did."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from sb3_contrib import RecurrentPPO
from stable_baselines3 import SAC

from sb3_hypernet import MetaRecurrentPPO, load_meta_model

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_legacy_zips", DATA / "make_legacy_zips.py")
legacy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(legacy)


@pytest.mark.parametrize(
    "name, algorithm",
    [("rnn_hn_recurrent_ppo", RecurrentPPO), ("ti_plus_plus_hn_meta_ppo", MetaRecurrentPPO), ("hyper_sac", SAC)],
)
def test_saved_before_the_move_loads_and_acts_the_same(name, algorithm):
    path = DATA / f"{name}.zip"
    model = algorithm.load(path, device="cpu") if algorithm is SAC else load_meta_model(path, device="cpu")
    assert type(model) is algorithm
    expected = np.load(DATA / "legacy_actions.npz")[name]
    np.testing.assert_array_equal(legacy.rollout_actions(model, name), expected)
