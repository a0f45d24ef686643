"""rl_zoo3's --optimize through the launcher: the search space is sampled and merged into the zoo entry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from sb3_hypernet.experiments.search_space import (
    DEFAULT_SPACE,
    check_space,
    load_space,
    split_policy_keys,
    use_search_space,
)
from sb3_hypernet.meta_ppo.loading import load_meta_model

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL = "dict(gru_hidden_size=8, net_arch=[8], latent_embedding_dim=4, reward_embedding_dim=4, state_embedding_dim=8)"
SPACE = """\
learning_rate: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}
policy_kwargs.hyper_init: {type: categorical, choices: [weight]}
"""


def launcher(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "sb3_hypernet.train", "--algo", "meta_ppo_lstm", "--env", "GridNavi-v0",
        "--gym-packages", "envs", "--conf-file", str(REPO_ROOT / "zoo_configs" / "rnn_hn.yml"), "-f",
        str(tmp_path / "logs"), "--storage", str(tmp_path / "study.log"), "--study-name", "lr", *extra,
        "-params", "n_envs:2", f"policy_kwargs:{SMALL}",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_optimize_samples_the_space_and_keeps_the_entrys_policy_kwargs(tmp_path):
    (tmp_path / "space.yml").write_text(SPACE)
    optimize = ["-optimize", "--n-trials", "2", "-n", "240", "--sampler", "random", "--pruner", "none"]
    launcher(tmp_path, *optimize, "--n-evaluations", "1", "--eval-episodes", "2", "--optimization-log-path",
             str(tmp_path / "trials"), "--search-space", str(tmp_path / "space.yml"))  # fmt: skip
    study = optuna.load_study(
        study_name="lr",
        storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.log"))),
    )
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2
    for trial in trials:
        assert set(trial.params) == {"learning_rate", "policy_kwargs.hyper_init"}
        assert 1e-4 <= trial.params["learning_rate"] <= 1e-3
        model = load_meta_model(tmp_path / "trials" / f"trial_{trial.number}" / "best_model.zip")
        assert model.learning_rate(1.0) == pytest.approx(trial.params["learning_rate"])
        assert model.policy.mlp_extractor.actor.layers[0].hyper_init == "weight"  # sampled
        assert model.policy.lstm_actor.hidden_size == 8  # the entry's, kept (zoo's sampler would replace it)
        assert model.policy.lstm_actor.reward_embedding[0].out_features == 4

    # Training from a trial of the study merges its parameters into the entry the same way.
    launcher(tmp_path, "--trial-id", "1", "-n", "120", "--seed", "0")
    (zip_path,) = (tmp_path / "logs" / "meta_ppo_lstm").glob("GridNavi-v0_*/GridNavi-v0.zip")
    model = load_meta_model(zip_path)
    assert model.learning_rate(1.0) == pytest.approx(study.trials[1].params["learning_rate"])
    assert model.policy.mlp_extractor.actor.layers[0].hyper_init == "weight"
    assert model.policy.lstm_actor.hidden_size == 8


def test_search_space_files_and_errors(tmp_path):
    (tmp_path / "space.yml").write_text(SPACE)
    space = load_space(tmp_path / "space.yml")
    assert space["policy_kwargs.hyper_init"]["choices"] == ["weight"]
    assert split_policy_keys({"learning_rate": 1e-3, "policy_kwargs.hyper_init": "hfi"}) == (
        {"learning_rate": 1e-3},
        {"hyper_init": "hfi"},
    )
    assert DEFAULT_SPACE["learning_rate"] == {"type": "float", "low": 3e-5, "high": 3e-3, "log": True}
    with pytest.raises(ValueError, match="'lr' needs type float, int or categorical"):
        check_space({"lr": {"low": 1}})
    with pytest.raises(ValueError, match=r"missing \['high'\]"):
        check_space({"lr": {"type": "float", "low": 1}})
    with pytest.raises(ValueError, match=r"unknown \['scale'\]"):
        check_space({"lr": {"type": "float", "low": 1, "high": 2, "scale": 3}})
    with pytest.raises(ValueError, match="names no policy keyword"):
        check_space({"policy_kwargs.": {"type": "categorical", "choices": [1]}})
    argv = ["--algo", "ppo_lstm", "--search-space", str(tmp_path / "space.yml"), "-optimize"]
    assert use_search_space(argv) == ["--algo", "ppo_lstm", "-optimize"]
