"""MuJoCo task families: rewards against the simulator, task effects, splits, seeding, and a short training each."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("mujoco")

from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env

import envs  # noqa: F401
from sb3_hypernet import RNNHNPolicy, evaluate_meta_policy

META_IDS = {
    "CheetahDir-v0": 1,
    "CheetahVel-v0": 1,
    "CheetahVelMedium-v0": 1,
    "AntDir-v0": 1,
    "AntDirFwdBack-v0": 1,
    "AntDirUniform-v0": 1,
    "AntVel-v0": 1,
    "WalkerRandParams-v0": 2,
    "HumanoidDir-v0": 2,
}


def task_env(env_id: str, **kwargs) -> gym.Env:
    return gym.make(env_id, **kwargs).unwrapped


def step_with_velocity(env, action, body: str | None = None):
    """Step and return (reward, info, velocity measured from the simulator's positions over the step)."""
    before = env.data.qpos[:1].copy() if body is None else env.data.body(body).xpos[:2].copy()
    _, reward, terminated, _, info = env.step(action)
    after = env.data.qpos[:1].copy() if body is None else env.data.body(body).xpos[:2].copy()
    return reward, info, (after - before) / env.dt, terminated


@pytest.mark.parametrize("direction", [-1.0, 1.0])
def test_cheetah_dir_reward_is_direction_times_velocity_minus_control(direction):
    env = task_env("CheetahDirTask-v0")
    env.set_task(direction)
    env.reset(seed=0)
    action = np.linspace(-0.8, 0.8, 6)
    reward, _, velocity, _ = step_with_velocity(env, action)
    assert reward == pytest.approx(direction * velocity[0] - 0.05 * np.sum(action**2), abs=1e-8)


def test_cheetah_dir_reward_flips_sign_with_the_task():
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 6))
    rewards = {}
    for direction in (-1.0, 1.0):
        env = task_env("CheetahDirTask-v0")
        env.set_task(direction)
        env.reset(seed=3)
        rewards[direction] = np.array([env.step(action)[1] for action in actions])
    # Same physics, so r(+1) = v - c and r(-1) = -v - c for the same velocities v and control costs c.
    control = 0.05 * np.sum(actions**2, axis=1)
    np.testing.assert_allclose(rewards[1.0] + rewards[-1.0], -2 * control, atol=1e-8)
    assert np.abs(rewards[1.0] - rewards[-1.0]).max() > 0.01


def test_cheetah_vel_reward_and_splits():
    env = task_env("CheetahVelTask-v0")
    env.set_task(1.7)
    env.reset(seed=0)
    action = np.full(6, 0.3)
    reward, _, velocity, _ = step_with_velocity(env, action)
    assert reward == pytest.approx(-abs(velocity[0] - 1.7) - 0.05 * np.sum(action**2), abs=1e-8)
    rng = np.random.default_rng(0)
    assert all(0.0 <= env.sample_task(rng) <= 3.0 for _ in range(200))

    train = task_env("CheetahVelMediumTask-v0")
    test = task_env("CheetahVelMediumTask-v0", split="test")
    train_tasks = [train.sample_task(rng) for _ in range(500)]
    test_tasks = [test.sample_task(rng) for _ in range(500)]
    assert max(train_tasks) <= 2.5 <= min(test_tasks) and max(test_tasks) <= 3.0
    assert set(train_tasks).isdisjoint(test_tasks)
    meta_test = gym.make("CheetahVelMedium-v0", split="test")
    meta_test.reset(seed=1)
    assert 2.5 <= meta_test.unwrapped.target_velocity <= 3.0
    with pytest.raises(ValueError, match="splits"):
        task_env("CheetahVelTask-v0", split="test")  # Cheetah-Vel has no test split


@pytest.mark.parametrize("angle", [1.0, -1.0, 2.5])
def test_ant_dir_reward_is_velocity_along_the_direction_plus_ant_terms(angle):
    env = task_env("AntDirTask-v0")
    env.set_task(angle)
    env.reset(seed=0)
    action = np.full(8, 0.2)
    reward, info, velocity, terminated = step_with_velocity(env, action, body="torso")
    direction = np.array([np.cos(angle), np.sin(angle)])
    expected = velocity @ direction + 1.0 * (not terminated) - 0.5 * np.sum(action**2) + info["reward_contact"]
    assert reward == pytest.approx(expected, abs=1e-6)
    np.testing.assert_allclose(env.task_descriptor(), direction, atol=1e-6)


def test_ant_dir_variants_sample_their_directions():
    rng = np.random.default_rng(0)
    assert {task_env("AntDirTask-v0").sample_task(rng) for _ in range(100)} == {-1.0, 1.0}
    assert {task_env("AntDirFwdBackTask-v0").sample_task(rng) for _ in range(100)} == {0.0, np.pi}
    uniform = [task_env("AntDirUniformTask-v0").sample_task(rng) for _ in range(200)]
    assert min(uniform) >= 0.0 and max(uniform) < 2 * np.pi and len(set(uniform)) == 200
    assert task_env("AntDirTask-v0").observation_space.shape == (27,)
    with pytest.raises(ValueError, match="directions"):
        task_env("AntDirTask-v0", directions="diagonal")


def test_ant_vel_reward():
    env = task_env("AntVelTask-v0")
    env.set_task(2.0)
    env.reset(seed=0)
    action = np.full(8, -0.1)
    reward, info, velocity, terminated = step_with_velocity(env, action, body="torso")
    expected = -abs(velocity[0] - 2.0) + 1.0 * (not terminated) - 0.5 * np.sum(action**2) + info["reward_contact"]
    assert reward == pytest.approx(expected, abs=1e-6)


def test_humanoid_dir_reward_uses_centre_of_mass_velocity_with_weight_quarter():
    env = task_env("HumanoidDirTask-v0")
    env.set_task(0.7)
    env.reset(seed=0)
    action = np.full(17, 0.1)

    def mass_centre():
        mass = env.model.body_mass[:, None]
        return (mass * env.data.xipos).sum(0)[:2] / mass.sum()

    before = mass_centre()
    _, reward, terminated, _, _ = env.step(action)
    velocity = (mass_centre() - before) / env.dt
    direction = np.array([np.cos(0.7), np.sin(0.7)])
    contact = min(5e-7 * np.sum(env.data.cfrc_ext**2), 10.0)
    expected = 0.25 * velocity @ direction + 5.0 * (not terminated) - 0.1 * np.sum(action**2) - contact
    assert reward == pytest.approx(expected, abs=1e-6)


# Both env checkers run on every registered id, raw and meta, in test_wrappers.py (test_*_check_env).


@pytest.mark.parametrize("env_id", sorted(META_IDS))
def test_registered_envs_are_seeded(env_id):
    trajectories = []
    for _ in range(2):
        env = gym.make(env_id)
        env.action_space.seed(5)
        obs, _ = env.reset(seed=11)
        steps = [obs["obs"]]
        for _ in range(10):
            obs, reward, *_ = env.step(env.action_space.sample())
            steps.append(np.append(obs["obs"], reward))
        trajectories.append((env.unwrapped.task_descriptor(), steps))
    np.testing.assert_array_equal(trajectories[0][0], trajectories[1][0])
    for a, b in zip(trajectories[0][1], trajectories[1][1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert gym.spec(env_id.replace("-v0", "Task-v0")).max_episode_steps == 200
    assert gym.make(env_id).get_wrapper_attr("n_episodes") == META_IDS[env_id]


@pytest.mark.parametrize("env_id", sorted(META_IDS))
def test_short_rnn_hn_training_saves_loads_and_evaluates(env_id, tmp_path):
    env = make_vec_env(env_id, n_envs=2, seed=0)
    kwargs = dict(gru_hidden_size=16, net_arch=[16], latent_embedding_dim=4, state_embedding_dim=16)
    model = RecurrentPPO(RNNHNPolicy, env, n_steps=16, batch_size=32, n_epochs=1, seed=0, policy_kwargs=kwargs)
    model.learn(32)
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip")
    result = evaluate_meta_policy(loaded, env_id, n_meta_episodes=1, n_envs=1)
    assert result.inner_returns.shape == (1, META_IDS[env_id])
    assert np.isfinite(result.inner_returns).all()


# The paper's PPO settings (NeurIPS 2023 appendix 8.2) per MuJoCo benchmark:
# (n_steps, epochs, minibatches, clip, gamma, gae lambda, entropy, frames).
PAPER_SETTINGS = {
    "CheetahDir-v0": (400, 2, 4, 0.1, 0.97, 0.9, 0.01, 75e6),
    "CheetahVel-v0": (400, 2, 4, 0.1, 0.97, 0.9, 0.01, 75e6),
    "AntDir-v0": (200, 2, 1, 0.1, 0.97, 0.9, 0.01, 75e6),
    "WalkerRandParams-v0": (200, 2, 2, 0.05, 0.97, 0.9, 0.01, 75e6),
    "HumanoidDir-v0": (800, 4, 2, 0.1, 0.99, 0.9, 0.001, 1e8),
}


@pytest.mark.parametrize(
    "method",
    [
        "rnn",
        "rnn_s",
        "rnn_hn",
        "ti_naive",
        "ti",
        "ti_plus_plus",
        "ti_hn",
        "ti_plus_plus_hn",
        "multi_hn",
        "bi_plus_plus_hn",
    ],
)
def test_zoo_entries_for_every_mujoco_env_have_the_spec_settings(method):
    from pathlib import Path

    from sb3_hypernet.experiments.zoo import load_hyperparams

    conf = Path(__file__).resolve().parents[1] / "zoo_configs" / f"{method}.yml"
    algo = "meta_ppo_lstm"
    for env_id in META_IDS:
        load_hyperparams(conf, env_id, algo)  # every registered MuJoCo meta env has an entry
    for env_id, (n_steps, epochs, minibatches, clip, gamma, gae, ent, frames) in PAPER_SETTINGS.items():
        h = load_hyperparams(conf, env_id, algo)
        assert (h["n_envs"], h["n_steps"], h["n_epochs"], h["batch_size"]) == (
            16,
            n_steps,
            epochs,
            16 * n_steps // minibatches,
        )
        assert (h["clip_range"], h["gamma"], h["gae_lambda"], h["ent_coef"], h["n_timesteps"]) == (
            clip,
            gamma,
            gae,
            ent,
            frames,
        )
        assert "eps=1e-8" in h["policy_kwargs"] and "norm_reward=True" in h["normalize"]
