"""Meta-World ML1 / ML10 as meta-episode envs: train and test tasks kept apart on the actual envs, seeded
determinism, the 500-step limit, success bookkeeping per inner episode, both env checkers on every id, errors.
The benchmark objects are built once per test session (envs.metaworld.benchmark caches them per process)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401

metaworld_envs = pytest.importorskip("envs.metaworld", reason="needs the metaworld extra")

META_IDS = ["ML1-v0", "ML1PickPlace-v0", "ML1Push-v0", "ML1Reach-v0", "ML10-v0"]
TASK_IDS = ["ML1Task-v0", "ML1PickPlaceTask-v0", "ML1PushTask-v0", "ML1ReachTask-v0", "ML10Task-v0"]
N_CLASSES = {"ML1": 1, "ML10": 15}


def in_env(env) -> tuple:
    """The task the actual Meta-World env runs after a reset: its class and its object and goal positions."""
    return (type(env.current).__name__, *np.round(env.current._last_rand_vec, 6))


def goals(env_id: str, split: str) -> set[tuple]:
    """Every task of a split as the actual env runs it."""
    env = gym.make(env_id, split=split).unwrapped
    seen = set()
    for index in range(len(env.tasks)):
        env.set_task(index)
        env.reset(seed=0)
        seen.add(in_env(env))
    return seen


@pytest.mark.parametrize("env_id", ["ML1PickPlaceTask-v0", "ML1ReachTask-v0", "ML10Task-v0"])
def test_no_test_task_reaches_a_training_env(env_id):
    train, test = goals(env_id, "train"), goals(env_id, "test")
    ml10 = env_id.startswith("ML10")
    assert (len(train), len(test)) == ((500, 250) if ml10 else (50, 50))  # every task distinct
    assert not train & test
    if ml10:
        train_classes, test_classes = {task[0] for task in train}, {task[0] for task in test}
        assert len(train_classes) == 10 and len(test_classes) == 5
        assert not train_classes & test_classes  # the 5 held-out classes
    # And the meta-episode env, over many meta-episodes, only ever runs training tasks.
    env = gym.make(env_id.replace("Task", ""))
    env.reset(seed=1)
    drawn = set()
    for _ in range(40):
        env.reset()
        drawn.add(in_env(env.unwrapped))
    assert drawn <= train and len(drawn) > 20


def test_the_descriptor_names_the_class_and_the_goal():
    env = gym.make("ML10Task-v0").unwrapped
    for index in (0, 123, 499):
        env.set_task(index)
        descriptor = env.task_descriptor()
        assert descriptor.shape == (15 + 6,) and env.task_space.contains(descriptor)
        one_hot = descriptor[:15]
        assert one_hot.sum() == 1.0 and env.class_names[int(one_hot.argmax())] == env.tasks[index].env_name
        rand_vec = env._rand_vecs[index]
        np.testing.assert_allclose(descriptor[15 : 15 + len(rand_vec)], rand_vec, rtol=1e-6)


def rollout(env_id: str, seed: int, steps: int = 1000) -> tuple[np.ndarray, np.ndarray, dict]:
    env = gym.make(env_id)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    observations, rewards = [obs["obs"]], []
    info = {}
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        observations.append(obs["obs"])
        rewards.append(reward)
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), info


def test_same_seed_same_tasks_and_rollouts_and_the_limit_never_raises():
    first, second, other = rollout("ML10-v0", 3), rollout("ML10-v0", 3), rollout("ML10-v0", 4)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0][:50], other[0][:50])
    # Two 500-step inner episodes and no error at the limit (Meta-World raises if stepped past it).
    assert len(first[1]) == 1000 and first[2]["inner_lengths"] == [500, 500]


def test_success_is_kept_per_inner_episode():
    """A scripted reach toward the (hidden) goal succeeds in the first inner episode; standing still fails in the
    second."""
    env = gym.make("ML1Reach-v0")
    obs, _ = env.reset(seed=0)
    info = {}
    for t in range(1000):
        action = np.zeros(4, np.float32)
        if t < 500:
            action[:3] = np.clip(10 * (env.unwrapped.current._target_pos - obs["obs"][:3]), -1, 1)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    assert info["inner_successes"] == [1.0, 0.0]
    assert info["inner_lengths"] == [500, 500]


@pytest.mark.parametrize("env_id", META_IDS + TASK_IDS)
def test_both_env_checkers_pass(env_id):
    with pytest.warns(UserWarning):  # gymnasium warns about the unbounded Box; nothing else may fail
        gym_check_env(gym.make(env_id).unwrapped if env_id in TASK_IDS else gym.make(env_id), skip_render_check=True)
    sb3_check_env(gym.make(env_id))


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="unknown ML1 task 'no-such-v3'"):
        gym.make("ML1Task-v0", task_name="no-such-v3")
    with pytest.raises(ValueError, match="split must be"):
        gym.make("ML1ReachTask-v0", split="validation")
    env = gym.make("ML1ReachTask-v0").unwrapped
    with pytest.raises(ValueError, match="index into the 50 train tasks"):
        env.set_task(50)


def test_a_short_rnn_hn_run_on_ml1_saves_loads_and_evaluates(tmp_path):
    from sb3_hypernet.common.evaluation import evaluate_meta_policy
    from sb3_hypernet.experiments.zoo import build_model
    from sb3_hypernet.meta_ppo.loading import load_meta_model

    small = "dict(gru_hidden_size=16, net_arch=[16, 8], state_embedding_dim=12, latent_embedding_dim=4)"
    conf = Path(__file__).resolve().parents[1] / "zoo_configs" / "sb3_loss" / "rnn_hn.yml"
    model, _ = build_model(conf, "ML1Reach-v0", seed=0, n_envs=2, n_steps=100, batch_size=100, policy_kwargs=small)
    assert (model.gamma, model.clip_range(1.0), model.ent_coef) == (0.97, 0.1, 0.001)  # the zoo entry's settings
    model.learn(400)
    model.save(tmp_path / "ml1.zip")
    loaded = load_meta_model(tmp_path / "ml1.zip")
    evaluation = evaluate_meta_policy(loaded, "ML1Reach-v0", n_meta_episodes=2, n_envs=2, seed=0)
    summary = evaluation.summary()
    assert len(summary["inner_returns"]) == 2 and summary["n_meta_episodes"] == 2
    assert evaluation.inner_successes.shape == (2, 2) and set(np.unique(evaluation.inner_successes)) <= {0.0, 1.0}
    assert "success_rate" in summary
