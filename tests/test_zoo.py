"""rl_zoo3 integration: the zoo_configs entries, load_hyperparams / build_model, MetaEpisodeLogger, and the README
flow (rl_zoo3.train -> sb3_hypernet.evaluate -> rl_zoo3.enjoy) run as subprocesses."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml
from rl_zoo3.utils import get_class_by_name
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecNormalize

import envs  # noqa: F401  (registers the gymnasium ids)
from sb3_hypernet import (
    BIPlusPlusHNPolicy,
    MetaEpisodeLogger,
    MetaRecurrentPPO,
    MultiTaskHNPolicy,
    RNNHNPolicy,
    RNNPolicy,
    RNNSPolicy,
    TIHNPolicy,
    TINaivePolicy,
    TIPlusPlusHNPolicy,
    TIPlusPlusPolicy,
    TIPolicy,
    VIHNPolicy,
    VIPolicy,
)
from sb3_hypernet.common.evaluation import find_vecnormalize
from sb3_hypernet.evaluate import main as evaluate_main
from sb3_hypernet.experiments.zoo import build_model, load_hyperparams, merge_policy_kwargs
from sb3_hypernet.meta_ppo.loading import load_meta_model

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "zoo_configs"
CONFIGS = {
    "rnn.yml": RNNPolicy,
    "rnn_s.yml": RNNSPolicy,
    "rnn_hn.yml": RNNHNPolicy,
    "sb3_loss/rnn.yml": RNNPolicy,
    "sb3_loss/rnn_s.yml": RNNSPolicy,
    "sb3_loss/rnn_hn.yml": RNNHNPolicy,
    "ti_naive.yml": TINaivePolicy,
    "ti.yml": TIPolicy,
    "ti_plus_plus.yml": TIPlusPlusPolicy,
    "ti_hn.yml": TIHNPolicy,
    "ti_plus_plus_hn.yml": TIPlusPlusHNPolicy,
    "multi_hn.yml": MultiTaskHNPolicy,
    "bi_plus_plus_hn.yml": BIPlusPlusHNPolicy,
    "rnn_hn_task_inference.yml": RNNHNPolicy,
    "vi.yml": VIPolicy,
    "vi_hn.yml": VIHNPolicy,
}
#: The rl_zoo3 algorithm of each config: MetaRecurrentPPO, but sb3-contrib's RecurrentPPO for the SB3-loss files.
CONFIG_ALGOS = {name: "meta_ppo_lstm" for name in CONFIGS if not name.startswith("sb3_loss/")}
#: Off-policy configs (SAC/TD3 with hypernetwork critics), tested in test_offpolicy.py.
OFFPOLICY_CONFIGS = {"sac_hyper.yml", "td3_hyper.yml"}
#: PEARL's and MAML's configs (--algo pearl, --algo maml), tested in test_pearl.py and test_maml.py.
PEARL_CONFIGS = {"pearl.yml", "hyper_pearl.yml"}
MAML_CONFIGS = {"maml.yml", "context_maml.yml", "hyper_maml.yml"}
GRID_ENVS = ["GridNavi-v0", "GridNaviShow-v0", "GridNaviDense-v0"]
N_INNER = 4
# Small networks for fast tests (rl_zoo3 -params replaces policy_kwargs as a whole); RNNPolicy has no state embedding.
SMALL_POLICY_KWARGS = (
    "dict(gru_hidden_size=16, net_arch=[16, 8], state_embedding_dim=16, latent_embedding_dim=4, "
    "action_embedding_dim=0, reward_embedding_dim=8, optimizer_kwargs=dict(eps=1e-5))"
)
SMALL_RNN_POLICY_KWARGS = SMALL_POLICY_KWARGS.replace("state_embedding_dim=16, ", "")
try:
    import mujoco  # noqa: F401

    HAVE_MUJOCO = True
except ImportError:
    HAVE_MUJOCO = False
try:
    import metaworld  # noqa: F401

    HAVE_METAWORLD = True
except ImportError:
    HAVE_METAWORLD = False


def evaluated(value):
    """rl_zoo3's reading of dict-valued entries given as strings."""
    return eval(value, {"get_class_by_name": get_class_by_name}) if isinstance(value, str) else value


def small_model(conf: str = "sb3_loss/rnn_hn.yml", n_envs: int = 4, seed: int = 0, **overrides):
    """build_model on a config's GridNavi-v0 entry with small networks and ``n_envs`` envs."""
    policy_kwargs = SMALL_RNN_POLICY_KWARGS if conf.endswith("/rnn.yml") or conf == "rnn.yml" else SMALL_POLICY_KWARGS
    return build_model(
        CONFIG_DIR / conf, "GridNavi-v0", seed=seed, n_envs=n_envs, policy_kwargs=policy_kwargs, **overrides
    )


# ---------------------------------------------------------------------------------------------------------------------
# Config files
# ---------------------------------------------------------------------------------------------------------------------


def test_config_files_present():
    found = [*CONFIG_DIR.glob("*.yml"), *CONFIG_DIR.glob("sb3_loss/*.yml")]
    assert sorted(str(p.relative_to(CONFIG_DIR)) for p in found) == sorted([*CONFIGS, *OFFPOLICY_CONFIGS,
                                                                           *PEARL_CONFIGS, *MAML_CONFIGS])  # fmt: skip


@pytest.mark.parametrize("env_id", GRID_ENVS)
@pytest.mark.parametrize("conf", sorted(CONFIGS))
def test_config_entries_have_the_gridworld_settings(conf, env_id):
    hp = load_hyperparams(CONFIG_DIR / conf, env_id, CONFIG_ALGOS.get(conf, "ppo_lstm"))
    assert hp["n_envs"] == 16
    assert hp["n_steps"] == 60
    assert hp["batch_size"] == 240
    assert hp["n_envs"] * hp["n_steps"] // hp["batch_size"] == 4  # 4 minibatches
    assert hp["n_epochs"] == 2
    assert hp["clip_range"] == 0.05
    assert hp["gamma"] == 0.95
    assert hp["gae_lambda"] == 0.95
    assert hp["ent_coef"] == 0.1
    assert hp["vf_coef"] == 0.5
    assert hp["max_grad_norm"] == 0.5
    assert float(hp["n_timesteps"]) == 4e6
    policy_kwargs = evaluated(hp["policy_kwargs"])
    assert policy_kwargs["optimizer_kwargs"]["eps"] == 1e-5
    normalize = evaluated(hp["normalize"])
    assert normalize["norm_obs"] is False
    assert normalize["norm_reward"] is True
    assert normalize["clip_reward"] == 10.0
    assert get_class_by_name(hp["policy"]) is CONFIGS[conf]
    assert get_class_by_name(hp["callback"]) is MetaEpisodeLogger


MCLS_ENVS = ["MCLS-v0", "MCLSN-v0", "MCLSO-v0", "MCLSH-v0"]


@pytest.mark.parametrize("env_id", MCLS_ENVS)
@pytest.mark.parametrize("conf", sorted(CONFIGS))
def test_config_entries_have_the_mcls_settings(conf, env_id):
    """The paper's MC-LS settings: 16 envs x 800 steps, 4 minibatches, 2 epochs, clip 0.05, gamma and GAE lambda 0.95,
    entropy 0.1, Adam eps 1e-5, 6e7 frames, the learning rate decayed linearly; previous reward in 8 units."""
    hp = load_hyperparams(CONFIG_DIR / conf, env_id, CONFIG_ALGOS.get(conf, "ppo_lstm"))
    assert (hp["n_envs"], hp["n_steps"], hp["batch_size"], hp["n_epochs"]) == (16, 800, 3200, 2)
    assert (hp["clip_range"], hp["gamma"], hp["gae_lambda"], hp["ent_coef"]) == (0.05, 0.95, 0.95, 0.1)
    assert float(hp["n_timesteps"]) == 6e7
    assert str(hp["learning_rate"]).startswith("lin_")
    grid = load_hyperparams(CONFIG_DIR / conf, "GridNavi-v0", CONFIG_ALGOS.get(conf, "ppo_lstm"))
    assert float(hp["learning_rate"][len("lin_") :]) == grid["learning_rate"]  # the method's Grid-World rate
    policy_kwargs = evaluated(hp["policy_kwargs"])
    assert policy_kwargs["optimizer_kwargs"]["eps"] == 1e-5
    # Actions in 8 units as the reference's args_MCLS_varibad.py; the SB3-loss files keep the default 16.
    assert policy_kwargs["reward_embedding_dim"] == 8
    assert policy_kwargs.get("action_embedding_dim", 16) == (16 if conf.startswith("sb3_loss/") else 8)
    assert get_class_by_name(hp["policy"]) is CONFIGS[conf]


@pytest.mark.parametrize("env_id", GRID_ENVS)
def test_the_end_to_end_task_inference_config_is_rnn_hn_with_the_auxiliary_weight(env_id):
    """Appendix 8.3's combination: rnn_hn.yml's entry plus the weight and the task entry it needs."""
    combined = load_hyperparams(CONFIG_DIR / "rnn_hn_task_inference.yml", env_id, "meta_ppo_lstm")
    plain = load_hyperparams(CONFIG_DIR / "rnn_hn.yml", env_id, "meta_ppo_lstm")
    assert evaluated(combined.pop("policy_kwargs")) == {
        **evaluated(plain.pop("policy_kwargs")),
        "task_inference_weight": 0.1,
    }
    assert combined.pop("env_kwargs") == {"expose_task": True}
    assert combined == plain


@pytest.mark.parametrize("conf", ["vi.yml", "vi_hn.yml"])
def test_vi_configs_have_varibads_vae_settings_and_no_task_labels(conf):
    with open(CONFIG_DIR / conf) as file:
        entries = yaml.safe_load(file)
    for env_id in entries:
        hp = load_hyperparams(CONFIG_DIR / conf, env_id, "meta_ppo_lstm")
        grid = env_id.startswith("GridNavi")
        # MC-LS keeps 1,000 meta-episodes: its image views make one about 1 MB.
        buffer = 100_000 if grid else 1_000 if env_id.startswith("MCLS") else 10_000
        assert (hp["vae_buffer_size"], hp["vae_batch_size"], hp["vae_updates"]) == (
            (buffer, 25, 3) if grid else (buffer, 10, 1)
        ), env_id
        assert "env_kwargs" not in hp, env_id  # VariBAD reads no task labels
        policy_kwargs = evaluated(hp["policy_kwargs"])
        walker = env_id == "WalkerRandParams-v0"  # the reference's Walker VAE: states only, KL weight 1
        assert policy_kwargs["kl_weight"] == (1.0 if grid or walker else 0.1), env_id
        assert policy_kwargs.get("decode_state", False) == walker, env_id
        assert policy_kwargs.get("decode_reward", True) == (not walker), env_id


@pytest.mark.parametrize(
    "conf", sorted(name for name, policy in CONFIGS.items() if getattr(policy, "pretrains", False))
)
def test_pretraining_configs_pretrain_100_updates_on_grids_and_563_on_mujoco(conf):
    with open(CONFIG_DIR / conf) as file:
        entries = yaml.safe_load(file)
    for env_id, entry in entries.items():
        # 2.4% of the budget as NeurIPS 8.2: 100 x 960 frames of 4e6 (grids), 563 x 6400 of 7.5e7 / 1e8 (MuJoCo),
        # 250 x 4800 of 5e7 (ML1) and 500 x 4800 of 1e8 (ML10); MC-LS 100 x 12,800 of 6e7 (2.1%).
        expected = {"GridNavi": 100, "ML1": 250, "ML10": 500, "MCLS": 100}
        prefix = next((p for p in sorted(expected, key=len, reverse=True) if env_id.startswith(p)), None)
        assert entry["pretrain_updates"] == expected.get(prefix, 563), env_id


@pytest.mark.parametrize("n_envs, clip_range", [(64, 0.05), (256, 0.1), (1024, 0.2)])
def test_scale_configs_change_only_envs_minibatches_and_clip_range(n_envs, clip_range):
    for env_id in GRID_ENVS:
        base = load_hyperparams(CONFIG_DIR / "sb3_loss" / "rnn_hn.yml", env_id)
        scale = load_hyperparams(CONFIG_DIR / "scale" / f"rnn_hn_{n_envs}.yml", env_id)
        assert scale == {**base, "n_envs": n_envs, "batch_size": 960, "clip_range": clip_range}


def test_load_hyperparams_unknown_key_suggests_the_right_one(tmp_path):
    conf = tmp_path / "typo.yml"
    conf.write_text("GridNavi-v0:\n  policy: sb3_hypernet.RNNHNPolicy\n  n_step: 60\n  batch_size: 240\n")
    with pytest.raises(ValueError, match="unknown hyperparameter 'n_step'") as error:
        load_hyperparams(conf, "GridNavi-v0")
    assert "did you mean 'n_steps'" in str(error.value)


def test_load_hyperparams_missing_env_entry():
    with pytest.raises(ValueError, match="no entry for 'CartPole-v1'") as error:
        load_hyperparams(CONFIG_DIR / "rnn_hn.yml", "CartPole-v1")
    assert "GridNavi-v0" in str(error.value)  # lists the entries it has


# ---------------------------------------------------------------------------------------------------------------------
# build_model and MetaEpisodeLogger
# ---------------------------------------------------------------------------------------------------------------------


def test_build_model_matches_the_config():
    model, callbacks = small_model()
    assert isinstance(model, RecurrentPPO)
    assert isinstance(model.policy, RNNHNPolicy)
    assert model.policy.mlp_extractor.state_embedding[0].out_features == 16  # the small override reached the policy
    assert model.n_envs == 4
    assert (model.n_steps, model.batch_size, model.n_epochs) == (60, 240, 2)
    assert model.clip_range(1.0) == 0.05
    assert (model.gamma, model.gae_lambda, model.ent_coef) == (0.95, 0.95, 0.1)
    assert model.lr_schedule(1.0) == model.lr_schedule(0.0) == 1e-3
    assert model.policy.optimizer.param_groups[0]["eps"] == 1e-5
    vec_normalize = model.get_vec_normalize_env()
    assert isinstance(vec_normalize, VecNormalize)
    assert vec_normalize.norm_reward is True
    assert vec_normalize.norm_obs is False
    assert vec_normalize.clip_reward == 10.0
    assert vec_normalize.gamma == 0.95
    assert [type(callback) for callback in callbacks] == [MetaEpisodeLogger]


def test_build_model_overrides_and_rejects_unknown(tmp_path):
    model, _ = small_model("sb3_loss/rnn.yml", learning_rate=3e-4)
    assert isinstance(model.policy, RNNPolicy)
    assert model.lr_schedule(1.0) == 3e-4
    with pytest.raises(ValueError, match="unknown hyperparameter 'learning_rat' \\(did you mean 'learning_rate'"):
        small_model(learning_rat=3e-4)
    with pytest.raises(ValueError, match="unknown rl_zoo3 algorithm 'ppo_lstn'"):
        small_model(algo="ppo_lstn")


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as file:
        return list(csv.DictReader(file))


def test_meta_episode_logger_logs_inner_returns(tmp_path):
    model, callbacks = small_model()
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(3 * 4 * 60, callback=callbacks)  # 3 rollouts, one meta-episode per env each
    rows = read_csv(tmp_path / "progress.csv")
    assert len(rows) == 3
    for row in rows:
        inner = [float(row[f"rollout/inner_return_{i}"]) for i in range(1, N_INNER + 1)]
        assert all(np.isfinite(inner))
        assert all(-1.5 - 1e-6 <= value <= 16.0 for value in inner)
        # Both windows (100) hold every meta-episode so far: the meta-episode return is the sum of inner returns.
        assert float(row["rollout/ep_rew_mean"]) == pytest.approx(sum(inner), abs=1e-4)
    assert "rollout/inner_return_5" not in rows[0]
    assert not any(key.startswith("rollout/inner_success") for key in rows[0])


def test_meta_episode_logger_window(tmp_path):
    logger = MetaEpisodeLogger(window=4)
    model, _ = small_model(n_envs=2, seed=1)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(3 * 2 * 60, callback=logger)  # 6 meta-episodes
    assert len(logger.inner_returns) == 4
    last = np.mean(list(logger.inner_returns), axis=0)
    row = read_csv(tmp_path / "progress.csv")[-1]
    logged = [float(row[f"rollout/inner_return_{i}"]) for i in range(1, N_INNER + 1)]
    assert logged == pytest.approx(last, abs=1e-6)
    episode_returns = [info["r"] for info in model.ep_info_buffer][-4:]
    assert float(np.sum(last)) == pytest.approx(np.mean(episode_returns), abs=1e-4)


def test_learn_with_progress_bar_shows_the_frames(capsys):
    model, callbacks = small_model(n_envs=2)
    capsys.readouterr()
    model.learn(120, callback=callbacks, progress_bar=True)
    assert "120/120" in capsys.readouterr().out  # the bar counted every frame, with the meta-RL callbacks on


# ---------------------------------------------------------------------------------------------------------------------
# The README flow, through the command lines
# ---------------------------------------------------------------------------------------------------------------------


def run(args: list[str], cwd: Path, repo_on_path: bool = True) -> subprocess.CompletedProcess:
    """``python <args>`` in ``cwd``; with ``repo_on_path`` this checkout's packages come first on ``PYTHONPATH``."""
    env = dict(os.environ)
    if repo_on_path:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def check(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return result


def train_through_zoo(workdir: Path, launcher: str, algo: str, conf: str, params: list[str]) -> Path:
    """Train on GridNavi-v0 through a zoo command line (``launcher``: rl_zoo3.train or sb3_hypernet.train) for 2
    rollouts with seed 1; the saved model's path."""
    check(
        run(
            [
                "-m", launcher,
                "--algo", algo,
                "--env", "GridNavi-v0",
                "--gym-packages", "envs",
                "--conf-file", str(CONFIG_DIR / conf),
                "--eval-freq", "-1",
                "--seed", "1",
                *params,
            ],
            workdir,
        )
    )  # fmt: skip
    return workdir / "logs" / algo / "GridNavi-v0_1" / "GridNavi-v0.zip"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, Path]:
    """rl_zoo3.train on GridNavi-v0 with the RNN+HN config (small networks, 2 rollouts); (working dir, model zip)."""
    workdir = tmp_path_factory.mktemp("zoo")
    params = ["-n", "1920", "-params", f"policy_kwargs:{SMALL_POLICY_KWARGS}"]
    return workdir, train_through_zoo(workdir, "rl_zoo3.train", "ppo_lstm", "sb3_loss/rnn_hn.yml", params)


def test_envs_importable_outside_the_repository(tmp_path):
    # The installed packages (no PYTHONPATH help) register the ids, from a directory outside the repository.
    code = "import envs, sb3_hypernet, gymnasium; print('GridNavi-v0' in gymnasium.registry)"
    result = check(run(["-c", code], tmp_path, repo_on_path=False))
    assert result.stdout.split() == ["True"]


def test_zoo_train_saves_model_and_vecnormalize(trained_run):
    _, model_path = trained_run
    assert model_path.is_file()
    assert find_vecnormalize(model_path) == model_path.with_suffix("") / "vecnormalize.pkl"
    model = RecurrentPPO.load(model_path, device="cpu")
    assert isinstance(model.policy, RNNHNPolicy)
    assert model.num_timesteps == 1920


def test_evaluate_cli_json_and_in_process(trained_run, capsys):
    workdir, model_path = trained_run
    args = ["--model", str(model_path), "--env", "GridNavi-v0", "-n", "8", "--json"]
    result = check(run(["-m", "sb3_hypernet.evaluate", *args], workdir))
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n_meta_episodes"] == 8
    assert summary["deterministic"] is True
    assert len(summary["inner_returns"]) == N_INNER
    inner_means = [stats["mean"] for stats in summary["inner_returns"]]
    assert summary["meta_return"]["mean"] == pytest.approx(sum(inner_means))
    assert "success_rate" not in summary

    # main() in-process with an argv list gives the same numbers (same seed, same VecNormalize statistics).
    capsys.readouterr()
    evaluation = evaluate_main(args)
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == summary
    assert evaluation.inner_returns.shape == (8, N_INNER)
    assert [s["mean"] for s in evaluation.summary()["inner_returns"]] == pytest.approx(inner_means)

    # The table output names every inner episode and the meta-episode.
    evaluate_main([*args[:-1], "--seed", "3"])
    table = capsys.readouterr().out
    assert all(f"episode {i} return" in table for i in range(1, N_INNER + 1))
    assert "meta-episode return" in table


def test_evaluate_cli_clear_errors(trained_run, tmp_path, capsys):
    _, model_path = trained_run
    with pytest.raises(SystemExit) as error:
        evaluate_main(["--model", str(model_path), "--env", "CartPole-v1", "-n", "2"])
    assert "does not fit" in str(error.value.code)
    with pytest.raises(SystemExit) as error:
        evaluate_main(["--model", str(model_path), "--env", "NoSuchEnv-v0", "-n", "2"])
    assert "unknown environment id" in str(error.value.code)

    # SystemExit with a message: the command line prints it and exits with status 1, without a traceback.
    with pytest.raises(SystemExit) as error:
        evaluate_main(["--model", str(tmp_path / "nothing.zip"), "--env", "GridNavi-v0"])
    assert isinstance(error.value.code, str) and error.value.code.startswith("error: no model file")


def test_zoo_enjoy_runs(trained_run):
    workdir, _ = trained_run
    args = ["--algo", "ppo_lstm", "--env", "GridNavi-v0", "--gym-packages", "envs", "-f", "logs/", "--exp-id", "1"]
    result = check(run(["-m", "rl_zoo3.enjoy", *args, "--no-render", "-n", "120"], workdir))
    assert "Episode Reward" in result.stdout


def test_evaluate_cli_finds_the_latest_zoo_run(trained_run, capsys):
    workdir, model_path = trained_run
    args = ["-f", str(workdir / "logs"), "--algo", "ppo_lstm", "--env", "GridNavi-v0", "-n", "4", "--json"]
    evaluate_main(args)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"] == str(model_path)
    with pytest.raises(SystemExit) as error:
        evaluate_main([*args[:-1], "--exp-id", "7"])
    assert "no model file" in str(error.value.code)
    with pytest.raises(SystemExit):
        evaluate_main(["--env", "GridNavi-v0"])  # neither --model nor --log-folder


def test_build_model_reads_env_kwargs_and_linear_schedules(tmp_path):
    model, _ = small_model(learning_rate="lin_1e-3", monitor_kwargs={}, env_kwargs=dict(expose_task=True))
    assert model.lr_schedule(1.0) == pytest.approx(1e-3)
    assert model.lr_schedule(0.5) == pytest.approx(5e-4)
    assert "task" in model.observation_space.spaces
    conf = tmp_path / "conf.yml"
    conf.write_text("GridNavi-v0:\n  env_kwargs:\n    expose_task: true\n  monitor_kwargs: {}\n")
    assert load_hyperparams(conf, "GridNavi-v0")["env_kwargs"] == {"expose_task": True}


def test_build_model_writes_the_zoo_run_folder_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, _ = small_model(n_envs=1)
    model.learn(60)
    assert list(tmp_path.iterdir()) == []  # no log folder: nothing written
    model, _ = small_model(n_envs=1, log_folder=tmp_path / "logs")
    model.learn(60)
    run = tmp_path / "logs" / "ppo_lstm" / "GridNavi-v0_1"
    assert (run / "GridNavi-v0" / "config.yml").is_file()
    assert (run / "0.monitor.csv").is_file()


def test_build_model_is_what_the_zoo_command_line_trains(trained_run):
    # One source of truth: the same entry, seed and overrides give the model rl_zoo3.train trained, bit for bit.
    _, model_path = trained_run
    conf = CONFIG_DIR / "sb3_loss" / "rnn_hn.yml"
    model, callbacks = build_model(conf, "GridNavi-v0", seed=1, policy_kwargs=SMALL_POLICY_KWARGS)
    model.learn(1920, callback=callbacks)
    trained = RecurrentPPO.load(model_path, device="cpu").policy.state_dict()
    for name, value in model.policy.state_dict().items():
        assert th.equal(value, trained[name]), name
    zoo_stats = VecNormalize.load(str(find_vecnormalize(model_path)), model.get_env().venv)
    np.testing.assert_array_equal(zoo_stats.ret_rms.var, model.get_vec_normalize_env().ret_rms.var)


@pytest.mark.parametrize(
    "conf",
    sorted(
        p.relative_to(CONFIG_DIR).as_posix()
        for p in CONFIG_DIR.rglob("*.yml")
        if p.name not in OFFPOLICY_CONFIGS | PEARL_CONFIGS | MAML_CONFIGS
    ),
)
def test_every_zoo_entry_loads_and_builds_its_policy(conf):
    """Every meta-RL entry of every file: rl_zoo3's own preprocessing accepts it, and the policy builds on the env's
    spaces."""
    import gymnasium as gym
    from rl_zoo3.exp_manager import ExperimentManager

    with open(CONFIG_DIR / conf) as file:
        entries = yaml.safe_load(file)
    built = {}
    for env_id in entries:
        algo = CONFIG_ALGOS.get(conf, CONFIG_ALGOS.get(conf.split("/")[-1], "ppo_lstm"))
        hyperparams = load_hyperparams(CONFIG_DIR / conf, env_id, algo)
        assert env_id in gym.registry, env_id
        manager = ExperimentManager(None, algo, env_id, "", config=str(CONFIG_DIR / conf), verbose=0)
        with contextlib.redirect_stdout(io.StringIO()):
            processed, *_ = manager._preprocess_hyperparams(manager.read_hyperparameters()[0])
        assert processed["policy"] is get_class_by_name(hyperparams["policy"])
        assert manager.normalize and manager.normalize_kwargs["norm_reward"] is True
        entry_point = gym.spec(gym.spec(env_id).kwargs["task_env_id"]).entry_point
        if ("mujoco" in entry_point and not HAVE_MUJOCO) or ("metaworld" in entry_point and not HAVE_METAWORLD):
            continue  # optional benchmark not installed (CI installs both through the test extra)
        env = gym.make(env_id, **hyperparams.get("env_kwargs", {}))
        # Entries sharing spaces and policy settings (anchors, task variants) are built once.
        key = (repr(env.observation_space), repr(env.action_space), repr(processed["policy_kwargs"]))
        if key not in built:
            policy = processed["policy"](
                env.observation_space, env.action_space, processed["learning_rate"], **processed["policy_kwargs"]
            )
            built[key] = sum(p.numel() for p in policy.parameters())
    assert built


# ---------------------------------------------------------------------------------------------------------------------
# The sb3_hypernet launcher: rl_zoo3's command lines with MetaRecurrentPPO (--algo meta_ppo_lstm)
# ---------------------------------------------------------------------------------------------------------------------

SMALL_TI_POLICY_KWARGS = SMALL_POLICY_KWARGS.replace(
    "reward_embedding_dim=8, ", "reward_embedding_dim=8, decoder_layers=[8], "
)


@pytest.fixture(scope="module")
def meta_run(tmp_path_factory) -> tuple[Path, Path]:
    """python -m sb3_hypernet.train with TI Naive on GridNavi-v0 (small networks, 2 envs, 2 rollouts)."""
    workdir = tmp_path_factory.mktemp("meta_zoo")
    # No precollection, so that 240 frames train the VAE too.
    params = ["-n", "240", "-params", f"policy_kwargs:{SMALL_TI_POLICY_KWARGS}", "n_envs:2", "precollect_frames:0"]
    return workdir, train_through_zoo(workdir, "sb3_hypernet.train", "meta_ppo_lstm", "ti_naive.yml", params)


def test_launcher_trains_meta_recurrent_ppo_and_the_zoo_tools_load_it(meta_run, capsys):
    workdir, model_path = meta_run
    model = load_meta_model(model_path, device="cpu")
    assert type(model) is MetaRecurrentPPO and type(model.policy) is TINaivePolicy
    assert model.num_timesteps == 240 and model.clip_grad_per_module is True
    assert model.inference_optimizer is not None and model.inference_optimizer.state  # trained and saved
    # The evaluator finds the run and its env keyword arguments (expose_task) without being told.
    capsys.readouterr()
    evaluate_main(["-f", str(workdir / "logs"), "--algo", "meta_ppo_lstm", "--env", "GridNavi-v0", "-n", "4", "--json"])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == str(model_path) and summary["n_meta_episodes"] == 4
    args = ["--algo", "meta_ppo_lstm", "--env", "GridNavi-v0", "--gym-packages", "envs", "-f", "logs/", "--exp-id", "1"]
    result = check(run(["-m", "sb3_hypernet.enjoy", *args, "--no-render", "-n", "60"], workdir))
    assert "Episode Reward" in result.stdout


def test_launcher_trains_vi_hn_with_its_vae_settings_and_the_evaluator_loads_it(tmp_path, capsys):
    kwargs = SMALL_POLICY_KWARGS.replace(
        "reward_embedding_dim=8, ", "reward_embedding_dim=8, reward_decoder_layers=[8], "
    )
    params = ["-n", "240", "-params", f"policy_kwargs:{kwargs}", "n_envs:2", "vae_batch_size:3", "precollect_frames:0"]
    model_path = train_through_zoo(tmp_path, "sb3_hypernet.train", "meta_ppo_lstm", "vi_hn.yml", params)
    model = load_meta_model(model_path, device="cpu")
    assert type(model) is MetaRecurrentPPO and type(model.policy) is VIHNPolicy
    assert (model.vae_buffer_size, model.vae_batch_size, model.vae_updates) == (100_000, 3, 3)
    assert model.inference_optimizer.state  # the VAE trained (2 meta-episodes were complete after the first rollout)
    capsys.readouterr()
    evaluate_main(
        ["-f", str(tmp_path / "logs"), "--algo", "meta_ppo_lstm", "--env", "GridNavi-v0", "-n", "2", "--json"]
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_meta_episodes"] == 2


def test_merged_policy_kwargs_keep_the_entrys_and_add_or_replace_keys():
    entry = load_hyperparams(CONFIG_DIR / "sb3_loss" / "rnn_hn.yml", "GridNavi-v0")
    merged = merge_policy_kwargs(entry["policy_kwargs"], {"hypernet_mode": "materialized", "reward_embedding_dim": 4})
    model, _ = build_model(CONFIG_DIR / "sb3_loss" / "rnn_hn.yml", "GridNavi-v0", n_envs=2, policy_kwargs=merged)
    assert model.policy.mlp_extractor.actor.layers[0].mode == "materialized"  # added
    assert model.policy.history_encoder.reward_embedding[0].out_features == 4  # replaced
    assert model.policy.history_encoder.action_embedding is None  # kept: the entry's action_embedding_dim=0
    assert model.policy.optimizer.defaults["eps"] == 1e-5  # kept: the entry's optimizer_kwargs
    assert merge_policy_kwargs({"a": 1, "b": 2}, {"b": 3}) == {"a": 1, "b": 3}
    assert merge_policy_kwargs(None, {"b": 3}) == "dict(dict(), **{'b': 3})"
    with pytest.raises(TypeError, match="policy_kwargs must be a string or a dict"):
        merge_policy_kwargs(3, {})


def test_build_model_knows_the_added_algorithm():
    model, _ = build_model(
        CONFIG_DIR / "ti_naive.yml", "GridNavi-v0", algo="meta_ppo_lstm", n_envs=2, policy_kwargs=SMALL_TI_POLICY_KWARGS
    )
    assert type(model) is MetaRecurrentPPO and model.inference_learning_rate == 1e-3


def test_build_model_trains_an_entry_with_the_algorithm_it_is_written_for():
    # The papers' entries carry MetaRecurrentPPO's own keys (value_loss, ...); sb3_loss/ is sb3-contrib's RecurrentPPO.
    paper, _ = build_model(CONFIG_DIR / "rnn_hn.yml", "GridNavi-v0", n_envs=2, policy_kwargs=SMALL_POLICY_KWARGS)
    sb3, _ = build_model(
        CONFIG_DIR / "sb3_loss" / "rnn_hn.yml", "GridNavi-v0", n_envs=2, policy_kwargs=SMALL_POLICY_KWARGS
    )
    assert (type(paper), type(sb3)) == (MetaRecurrentPPO, RecurrentPPO)
    with pytest.raises(ValueError, match="unknown hyperparameter 'value_loss'"):
        build_model(CONFIG_DIR / "rnn_hn.yml", "GridNavi-v0", algo="ppo_lstm")
