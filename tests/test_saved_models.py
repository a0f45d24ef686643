"""Saved models as users meet them: a MetaRecurrentPPO zip given to sb3-contrib's RecurrentPPO.load, damaged files,
zips saved for evaluation without optimiser state (and rl_zoo3's best_model.zip saved that way)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env

import envs  # noqa: F401
from sb3_hypernet import MetaRecurrentPPO, RNNHNPolicy, TINaivePolicy, evaluate_meta_policy, load_meta_model
from sb3_hypernet.common.callbacks import BestModelForEvaluationCallback
from sb3_hypernet.meta_ppo.loading import check_model_file

SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], latent_embedding_dim=4)
PPO = dict(n_steps=60, batch_size=40, n_epochs=2, seed=0, learning_rate=3e-3)


def make(policy, expose_task: bool = False, **kwargs) -> MetaRecurrentPPO:
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0, env_kwargs=dict(expose_task=expose_task))
    return MetaRecurrentPPO(policy, env, policy_kwargs=dict(SMALL), **{**PPO, **kwargs})


@pytest.fixture(scope="module")
def ti_zip(tmp_path_factory) -> Path:
    model = make(TINaivePolicy, expose_task=True).learn(120)
    path = tmp_path_factory.mktemp("ti") / "ti_naive.zip"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[MetaRecurrentPPO, Path, Path]:
    """An RNN+HN model after two updates, saved with and without its optimiser state."""
    model = make(RNNHNPolicy).learn(240)
    folder = tmp_path_factory.mktemp("rnn_hn")
    model.save(folder / "full.zip")
    model.save(folder / "evaluation.zip", optimizer_state=False)
    return model, folder / "full.zip", folder / "evaluation.zip"


def test_recurrent_ppo_load_of_a_meta_zip_says_how_to_load_it(ti_zip):
    with pytest.raises(
        ValueError, match=r"trained with sb3_hypernet\.MetaRecurrentPPO.*MetaRecurrentPPO\.load\(path\)"
    ):
        RecurrentPPO.load(ti_zip)
    loaded = MetaRecurrentPPO.load(ti_zip)
    assert loaded.policy.inference_optimizer is loaded.inference_optimizer
    assert loaded.inference_optimizer.state  # the saved Adam moments came back


def test_zips_saved_before_0_2_keep_their_inference_optimizer_state(ti_zip, tmp_path):
    # 0.1 stored the state under the algorithm's name; a rewritten copy in that layout loads the same state.
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(ti_zip) as source, zipfile.ZipFile(old, "w") as target:
        for name in source.namelist():
            renamed = "inference_optimizer.pth" if name == "policy.inference_optimizer.pth" else name
            target.writestr(renamed, source.read(name))
    assert "inference_optimizer.pth" in zipfile.ZipFile(old).namelist()
    new, legacy = MetaRecurrentPPO.load(ti_zip), MetaRecurrentPPO.load(old)
    for a, b in zip(new.inference_optimizer.state.values(), legacy.inference_optimizer.state.values(), strict=True):
        assert th.equal(a["exp_avg"], b["exp_avg"])


@pytest.mark.parametrize("keep", [20_000, 0.5, 0.9, -10], ids=["first-20KB", "half", "90-percent", "all-but-10B"])
def test_a_truncated_model_file_is_reported_as_damaged(ti_zip, tmp_path, keep):
    data = ti_zip.read_bytes()
    path = tmp_path / "cut.zip"
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    with pytest.raises(ValueError, match=r"cut\.zip is damaged"):
        load_meta_model(path)


def test_a_corrupted_entry_is_reported_by_name(ti_zip, tmp_path):
    data = bytearray(ti_zip.read_bytes())
    with zipfile.ZipFile(ti_zip) as archive:
        info = archive.getinfo("policy.pth")
    # A byte inside policy.pth's stored data (past its local header) flipped.
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2
    data[offset] ^= 0xFF
    path = tmp_path / "flipped.zip"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"its entry 'policy\.pth' fails its checksum"):
        check_model_file(path)


def test_the_evaluator_reports_a_damaged_file_once(ti_zip, tmp_path, capsys):
    from sb3_hypernet import evaluate

    path = tmp_path / "cut.zip"
    path.write_bytes(ti_zip.read_bytes()[: len(ti_zip.read_bytes()) // 2])
    with pytest.raises(SystemExit) as stop:
        evaluate.main(["--model", str(path), "--env", "GridNavi-v0", "-n", "2"])
    assert str(stop.value.code).startswith(f"error: {path} is damaged")
    assert "Error:" not in str(stop.value.code)


def test_a_model_saved_for_evaluation_is_smaller_loads_and_evaluates_identically(trained):
    model, full, evaluation = trained
    assert os.path.getsize(evaluation) < 0.5 * os.path.getsize(full)
    assert "policy.optimizer.pth" not in zipfile.ZipFile(evaluation).namelist()
    lean = MetaRecurrentPPO.load(evaluation)
    assert lean.optimizer_state_missing and not MetaRecurrentPPO.load(full).optimizer_state_missing
    for a, b in zip(model.policy.state_dict().values(), lean.policy.state_dict().values(), strict=True):
        assert th.equal(a, b)
    ours = evaluate_meta_policy(model, "GridNavi-v0", n_meta_episodes=4, n_envs=2).inner_returns
    theirs = evaluate_meta_policy(lean, "GridNavi-v0", n_meta_episodes=4, n_envs=2).inner_returns
    np.testing.assert_array_equal(ours, theirs)


def test_a_model_saved_for_evaluation_refuses_to_train_on(trained):
    _, _, evaluation = trained
    lean = MetaRecurrentPPO.load(evaluation, env=make_vec_env("GridNavi-v0", n_envs=2, seed=0))
    with pytest.raises(ValueError, match="saved without its optimisers' states"):
        lean.learn(120)
    lean.optimizer_state_missing = False  # the documented way to go on with fresh optimisers
    lean.learn(120)


def test_a_model_loaded_for_evaluation_saves_without_optimizer_state_again(trained, tmp_path):
    _, _, evaluation = trained
    lean = MetaRecurrentPPO.load(evaluation)
    lean.save(tmp_path / "again.zip", optimizer_state=True)  # it has none to write
    assert MetaRecurrentPPO.load(tmp_path / "again.zip").optimizer_state_missing


def test_save_optimizer_state_false_applies_to_every_save(tmp_path):
    model = make(RNNHNPolicy, save_optimizer_state=False).learn(120)
    model.save(tmp_path / "m.zip")
    assert MetaRecurrentPPO.load(tmp_path / "m.zip").optimizer_state_missing
    model.save(tmp_path / "resumable.zip", optimizer_state=True)
    assert not MetaRecurrentPPO.load(tmp_path / "resumable.zip").optimizer_state_missing


def test_the_best_model_callback_saves_for_evaluation(tmp_path):
    model = make(RNNHNPolicy)
    callback = BestModelForEvaluationCallback(
        make_vec_env("GridNavi-v0", n_envs=1, seed=1), eval_freq=60, n_eval_episodes=1, best_model_save_path=tmp_path
    )
    model.learn(120, callback=callback)
    assert MetaRecurrentPPO.load(tmp_path / "best_model.zip").optimizer_state_missing
    assert model.save_optimizer_state  # the model's own setting is back


def test_rl_zoo3_through_the_launcher_writes_a_lean_best_model(tmp_path, monkeypatch):
    import sys

    from sb3_hypernet import train

    small = "dict(gru_hidden_size=8, net_arch=[8], latent_embedding_dim=4)"
    argv = [
        "train", "--algo", "meta_ppo_lstm", "--env", "GridNavi-v0", "--gym-packages", "envs", "--conf-file",
        "zoo_configs/rnn_hn.yml", "-n", "240", "--eval-freq", "120", "--eval-episodes", "1", "-f", str(tmp_path),
        "--seed", "0", "-params", "n_envs:2", "n_steps:60", "batch_size:60", f"policy_kwargs:{small}",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    train.main()
    run = tmp_path / "meta_ppo_lstm" / "GridNavi-v0_1"
    assert MetaRecurrentPPO.load(run / "best_model.zip").optimizer_state_missing
    assert not MetaRecurrentPPO.load(run / "GridNavi-v0.zip").optimizer_state_missing
