"""Array-stepped meta-episode VecEnvs: the same MDP as DummyVecEnv over the registered ids, step by step, and usable
from make_vec_env, rl_zoo3 (through our launcher and build_model) and the evaluator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

import envs  # noqa: F401  (registers the ids)
from envs.vector import array_vec_env, make_array_vec_env
from envs.vector.gridworld import GridNaviVecEnv
from envs.vector.mc_ls import LongShortMemoryVecEnv
from sb3_hypernet import evaluate
from sb3_hypernet.common.evaluation import RandomPolicy, evaluate_meta_policy
from sb3_hypernet.experiments.zoo import build_model, use_array_vec_env

REPO_ROOT = Path(__file__).resolve().parents[1]
GRID_IDS = ["GridNavi-v0", "GridNaviShow-v0", "GridNaviDense-v0"]


def assert_same(reference, array, where: str = "") -> None:
    """Equal nested dicts/arrays; Monitor's wall-clock ``t`` is the one entry allowed to differ."""
    if isinstance(reference, dict):
        assert set(reference) == set(array), (where, set(reference) ^ set(array))
        for key in reference:
            if key != "t":
                assert_same(reference[key], array[key], f"{where}/{key}")
    elif isinstance(reference, list) and reference and isinstance(reference[0], dict):
        assert len(reference) == len(array), where
        for i, (left, right) in enumerate(zip(reference, array, strict=True)):
            assert_same(left, right, f"{where}[{i}]")
    else:
        reference, array = np.asarray(reference), np.asarray(array)
        numeric = np.issubdtype(reference.dtype, np.number)
        assert np.array_equal(reference, array, equal_nan=numeric), (where, reference, array)


def step_both(reference, array, n_steps: int, seed: int = 0, p: list[float] | None = None) -> int:
    """Random actions in both (probabilities ``p``); every observation, reward, done and info compared. Returns the
    number of meta-episodes ended."""
    assert_same(reference.reset(), array.reset(), "reset")
    assert_same(reference.reset_infos, array.reset_infos, "reset infos")
    rng = np.random.default_rng(seed)
    ended = 0
    n_actions = reference.action_space.n
    for t in range(n_steps):
        actions = rng.choice(n_actions, size=reference.num_envs, p=p)
        obs, rewards, dones, infos = reference.step(actions)
        array_obs, array_rewards, array_dones, array_infos = array.step(actions)
        assert_same(obs, array_obs, f"step {t} obs")
        assert np.array_equal(rewards, array_rewards) and rewards.dtype == array_rewards.dtype, t
        assert np.array_equal(dones, array_dones), t
        for i, (info, array_info) in enumerate(zip(infos, array_infos, strict=True)):
            assert_same(info, array_info, f"step {t} env {i} info")
        ended += int(dones.sum())
    return ended


@pytest.mark.parametrize("expose_task", [False, True])
@pytest.mark.parametrize("env_id", GRID_IDS)
def test_same_mdp_as_dummy_vec_env_step_by_step(env_id, expose_task):
    reference = make_vec_env(env_id, n_envs=5, env_kwargs={"expose_task": expose_task})
    array = make_array_vec_env(env_id, 5, env_kwargs={"expose_task": expose_task})
    reference.seed(11)
    array.seed(11)
    # 300 steps: 5 meta-episodes of 4 inner episodes per env, with their auto-resets and new tasks.
    assert step_both(reference, array, 300) == 25


@pytest.mark.parametrize("env_id", GRID_IDS)
def test_same_mdp_given_the_same_tasks(env_id):
    tasks = [np.array([4, 4]), np.array([2, 0]), np.array([0, 3])]
    reference = make_vec_env(env_id, n_envs=3)
    array = make_array_vec_env(env_id, 3)
    for vec_env in (reference, array):
        vec_env.set_options([{"task": task} for task in tasks])
        vec_env.seed(5)  # the tasks after the first meta-episodes are drawn
    step_both(reference, array, 60)
    assert [tuple(task) for task in array.tasks] != [tuple(task) for task in tasks]  # after the end: sampled anew


MCLS_IDS = ["MCLS-v0", "MCLSN-v0", "MCLSO-v0", "MCLSH-v0"]


@pytest.mark.parametrize("n_rooms", [2, None])
@pytest.mark.parametrize("env_id", MCLS_IDS)
def test_mcls_same_mdp_as_dummy_vec_env_step_by_step(env_id, n_rooms):
    """Every variant, with its room types and LSN's noise from each env's own generator; a short course (most
    episodes reach the end) and the full one (random walks time out: reward 0, NaN statistics)."""
    env_kwargs = {"expose_task": True, **({"n_rooms": n_rooms} if n_rooms else {})}
    reference = make_vec_env(env_id, n_envs=4, env_kwargs=env_kwargs)
    array = make_array_vec_env(env_id, 4, env_kwargs=env_kwargs)
    reference.seed(2)
    array.seed(2)
    ended = step_both(reference, array, 600 if n_rooms else 900, p=[0.2, 0.5, 0.3])
    assert ended >= 8


def test_mcls_statistics_successes_and_reference_reach_the_evaluator():
    vec_env = make_array_vec_env("MCLS-v0", 4, env_kwargs={"n_rooms": 2})
    assert isinstance(vec_env, LongShortMemoryVecEnv)
    assert vec_env.reference_returns() == ("optimal", [5.3, 5.3])
    policy = RandomPolicy.for_env("MCLS-v0", n_rooms=2)
    summary = evaluate_meta_policy(policy, vec_env, 8).summary()
    assert summary["reference"]["meta_return"] == pytest.approx(10.6)
    assert len(summary["inner_successes"]) == 2
    assert set(summary["inner_statistics"]) == {"rooms_passed", "check_accuracy", "end_reached", "end_choice_accuracy"}
    # The same evaluation through DummyVecEnv gives the same summary.
    assert json.dumps(summary) == json.dumps(
        evaluate_meta_policy(RandomPolicy.for_env("MCLS-v0", n_rooms=2), "MCLS-v0", 8, n_envs=4,
                             env_kwargs={"n_rooms": 2}).summary()
    )  # fmt: skip


def test_make_vec_env_and_keyword_arguments_reach_the_array_env():
    vec_env = make_vec_env("GridNavi-v0", n_envs=7, seed=0, vec_env_cls=array_vec_env, env_kwargs={"dense": True})
    assert isinstance(vec_env, GridNaviVecEnv) and vec_env.num_envs == 7
    assert vec_env.grid.dense and not vec_env.grid.show_goal and vec_env.max_episode_steps == 15
    assert make_array_vec_env("GridNaviShow-v0", 2).grid.show_goal
    assert vec_env.reference_returns() is None  # Dense has no known Bayes-optimal return
    assert make_array_vec_env("GridNavi-v0", 2).env_method("reference_returns", indices=[0])[0][0] == "Bayes-optimal"


def test_seeding():
    def goals(seed):
        vec_env = make_array_vec_env("GridNavi-v0", 8, seed=seed)
        return vec_env.reset()["obs"], [tuple(task) for task in vec_env.tasks]

    assert goals(1)[1] == goals(1)[1]
    assert goals(1)[1] != goals(2)[1]


@pytest.mark.parametrize(
    ("env_id", "sizes", "frames"),
    [("GridNavi-v0", {}, 480), ("MCLSN-v0", {"n_steps": 48, "batch_size": 48}, 384)],
)
def test_training_through_zoo_is_the_same_with_either_vec_env(env_id, sizes, frames):
    """build_model's (and the launcher's) --vec-env array: same seed, same tasks, same trajectories, same weights."""
    trained = {}
    for vec_env_type in ("dummy", "array"):
        model, callbacks = build_model(
            REPO_ROOT / "zoo_configs" / "sb3_loss" / "rnn_hn.yml",
            env_id,
            seed=3,
            vec_env_type=vec_env_type,
            n_envs=4,
            policy_kwargs="dict(action_embedding_dim=0, reward_embedding_dim=8, gru_hidden_size=16, "
            "state_embedding_dim=16, net_arch=[16], optimizer_kwargs=dict(eps=1e-5))",
            **sizes,
        )
        array_class = GridNaviVecEnv if env_id.startswith("Grid") else LongShortMemoryVecEnv
        assert isinstance(model.get_env().venv, array_class if vec_env_type == "array" else DummyVecEnv)
        model.learn(frames, callback=callbacks)
        trained[vec_env_type] = model.policy.state_dict()
    for key, value in trained["dummy"].items():
        assert th.equal(value, trained["array"][key]), key


def test_the_evaluator_gives_the_same_results(tmp_path, capsys):
    model, _ = build_model(
        REPO_ROOT / "zoo_configs" / "sb3_loss" / "rnn.yml",
        "GridNavi-v0",
        n_envs=2,
        policy_kwargs="dict(action_embedding_dim=0, reward_embedding_dim=8, gru_hidden_size=16, net_arch=[16])",
    )
    dummy = evaluate_meta_policy(model, "GridNavi-v0", 12, n_envs=4).summary()
    array = evaluate_meta_policy(model, make_array_vec_env("GridNavi-v0", 4), 12).summary()
    assert dummy == array
    model.save(tmp_path / "rnn")
    evaluate.main(["--model", str(tmp_path / "rnn.zip"), "--env", "GridNavi-v0", "-n", "12", "--n-envs", "4"])
    printed = capsys.readouterr().out
    evaluate.main(["--model", str(tmp_path / "rnn.zip"), "--env", "GridNavi-v0", "-n", "12", "--n-envs", "4",
                   "--vec-env", "array"])  # fmt: skip
    assert capsys.readouterr().out == printed


def test_the_launcher_maps_vec_env_array_to_zoos_override(monkeypatch):
    monkeypatch.setattr(ExperimentManager, "default_vec_env_cls", None)
    argv = ["--algo", "ppo_lstm", "--vec-env", "array", "--env", "GridNavi-v0"]
    assert use_array_vec_env(argv) == ["--algo", "ppo_lstm", "--vec-env", "dummy", "--env", "GridNavi-v0"]
    assert ExperimentManager.default_vec_env_cls is array_vec_env
    monkeypatch.setattr(ExperimentManager, "default_vec_env_cls", None)
    assert use_array_vec_env(["--vec-env=array"]) == ["--vec-env", "dummy"]
    assert use_array_vec_env(["--vec-env", "subproc"]) == ["--vec-env", "subproc"]


def test_zoo_command_line_trains_with_the_array_env(tmp_path):
    command = [
        sys.executable, "-m", "sb3_hypernet.train", "--algo", "ppo_lstm", "--env", "GridNavi-v0", "--gym-packages",
        "envs", "--conf-file", str(REPO_ROOT / "zoo_configs" / "sb3_loss" / "rnn.yml"), "-n", "240", "--vec-env",
        "array", "-f",
        str(tmp_path), "--seed", "0", "-params", "n_envs:4",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "ppo_lstm" / "GridNavi-v0_1" / "GridNavi-v0.zip").exists()


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="no array-stepped VecEnv"):
        make_array_vec_env("WalkerRandParams-v0", 2)
    with pytest.raises(ValueError, match="not a meta-episode id"):
        make_array_vec_env("GridNaviTask-v0", 2)
    vec_env = make_array_vec_env("GridNavi-v0", 2)
    vec_env.reset()
    with pytest.raises(ValueError, match="actions must be integers in"):
        vec_env.step(np.array([0, 5]))
    vec_env.set_options({"task": (9, 9)})
    with pytest.raises(ValueError, match="GridNavi task must be a cell"):
        vec_env.reset()
    with pytest.raises(ValueError, match="num_envs"):
        GridNaviVecEnv(0)
