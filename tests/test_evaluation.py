"""Meta-episode evaluation (NeurIPS 2023 section 4): bootstrap intervals, evaluate_meta_policy with scripted and
trained policies, MetaEvaluation summaries, and loading / checking saved models."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv

import envs  # noqa: F401  (registers the gymnasium ids)
from sb3_hypernet import MetaEpisodeWrapper, RNNHNPolicy, RNNPolicy, TaskDistribution
from sb3_hypernet.common.evaluation import (
    MetaEvaluation,
    RandomPolicy,
    bootstrap_ci,
    check_model_fits_env,
    evaluate_meta_policy,
)
from sb3_hypernet.meta_ppo.loading import load_meta_model

GRID_SIZE = 5
INNER_STEPS = 15
N_INNER = 4
SMALL_POLICY_KWARGS = dict(gru_hidden_size=16, net_arch=[16, 8], state_embedding_dim=16, latent_embedding_dim=4)


def gridnavi_optimum(goal: Any) -> float:
    """Return of one inner episode that walks straight to ``goal`` from (0, 0) and stays there (known goal)."""
    distance = int(np.abs(np.asarray(goal)).sum())
    return -0.1 * (distance - 1) + 1.0 * (INNER_STEPS - distance + 1)


# ---------------------------------------------------------------------------------------------------------------------
# Scripted policies
# ---------------------------------------------------------------------------------------------------------------------


class ScriptedPolicy:
    """The recurrent ``predict`` interface, with the spaces of ``env_id`` (or of ``env``)."""

    def __init__(self, env_id: str | None = None, env: gym.Env | None = None, **env_kwargs: Any):
        if env is None:
            env = gym.make(env_id, **env_kwargs)
        self.observation_space = env.observation_space
        self.action_space = env.action_space

    def act(self, obs: dict[str, np.ndarray], episode_start: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        n = len(obs["obs"]) if isinstance(obs, dict) else len(obs)
        if episode_start is None:
            episode_start = np.zeros(n, dtype=bool)
        return self.act(obs, np.asarray(episode_start, dtype=bool)), state


class StayPolicy(ScriptedPolicy):
    def act(self, obs, episode_start):
        return np.zeros(len(episode_start), dtype=np.int64)


class GoalOracle(ScriptedPolicy):
    """Walks straight to the goal and stays there. Reads the goal from the ``task`` key of the observation
    (``expose_task=True``), or, given ``vec_env``, from each env itself (``env.unwrapped._goal``). Records
    ``(env index, goal)`` at the start of every meta-episode it sees (per step, in env order)."""

    def __init__(self, vec_env: DummyVecEnv | None = None):
        if vec_env is None:
            super().__init__("GridNavi-v0", expose_task=True)
        else:
            super().__init__(env=vec_env)
        self.vec_env = vec_env
        self.seen: list[tuple[int, tuple[float, float]]] = []

    @property
    def seen_tasks(self) -> list[tuple[float, float]]:
        return [task for _, task in self.seen]

    def goals(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.vec_env is None:
            return obs["task"]
        return np.stack([env.unwrapped._goal for env in self.vec_env.envs])

    def act(self, obs, episode_start):
        actions = np.zeros(len(obs["obs"]), dtype=np.int64)
        for i, (pos, goal) in enumerate(zip(obs["obs"], self.goals(obs), strict=True)):
            if episode_start[i]:
                self.seen.append((i, tuple(float(v) for v in goal)))
            x, y = pos
            gx, gy = goal
            if x < gx:
                actions[i] = 2
            elif x > gx:
                actions[i] = 4
            elif y < gy:
                actions[i] = 1
            elif y > gy:
                actions[i] = 3
        return actions


# ---------------------------------------------------------------------------------------------------------------------
# A toy task distribution that reports success
# ---------------------------------------------------------------------------------------------------------------------


class CoinTask(gym.Env, TaskDistribution):
    """Task: a coin side c in {0, 1}. Two-step episodes; action == c gives reward 1 and ``info["success"]``."""

    def __init__(self):
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.task_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self._task = 0
        self._t = 0

    def sample_task(self, rng: np.random.Generator) -> int:
        return int(rng.integers(2))

    def set_task(self, task: Any) -> None:
        self._task = int(task)

    def task_descriptor(self) -> np.ndarray:
        return np.array([self._task], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self._t += 1
        success = int(action) == self._task
        return np.zeros(1, np.float32), float(success), self._t >= 2, False, {"success": success}


COIN_INNER = 3


def make_coin_env() -> MetaEpisodeWrapper:
    return MetaEpisodeWrapper(CoinTask(), n_episodes=COIN_INNER)


class SwitchPolicy(ScriptedPolicy):
    """Action 0 in the first inner episode and 1 in the later ones (tracks inner episodes via ``episode_done``)."""

    def __init__(self, env: gym.Env):
        super().__init__(env=env)
        self.inner: np.ndarray | None = None

    def act(self, obs, episode_start):
        if self.inner is None:
            self.inner = np.zeros(len(obs["obs"]), dtype=int)
        self.inner[episode_start] = 0
        self.inner += obs["episode_done"][:, 0].astype(int)
        return (self.inner >= 1).astype(np.int64)


# ---------------------------------------------------------------------------------------------------------------------
# bootstrap_ci
# ---------------------------------------------------------------------------------------------------------------------


def test_bootstrap_ci_contains_sample_mean():
    values = np.random.default_rng(1).normal(3.0, 2.0, size=50)
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high


def test_bootstrap_ci_narrower_for_more_data():
    rng = np.random.default_rng(2)
    small_low, small_high = bootstrap_ci(rng.normal(size=20))
    large_low, large_high = bootstrap_ci(rng.normal(size=2000))
    assert large_high - large_low < 0.5 * (small_high - small_low)


def test_bootstrap_ci_reproducible_for_fixed_seed():
    values = np.random.default_rng(3).exponential(size=30)
    assert bootstrap_ci(values, seed=7) == bootstrap_ci(values, seed=7)
    assert bootstrap_ci(values, seed=7) != bootstrap_ci(values, seed=8)


@pytest.mark.parametrize("value", [2.5, -1.5, 0.1])
def test_bootstrap_ci_of_constant_data(value):
    low, high = bootstrap_ci(np.full(12, value))
    assert low == pytest.approx(value, abs=1e-12)
    assert high == pytest.approx(value, abs=1e-12)


def test_bootstrap_ci_single_value():
    assert bootstrap_ci([4.0]) == (4.0, 4.0)


@pytest.mark.parametrize("empty", [[], np.array([]), np.zeros((0, 3))])
def test_bootstrap_ci_raises_on_empty(empty):
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci(empty)


def test_bootstrap_ci_68_is_about_two_standard_errors_wide():
    values = np.random.default_rng(4).normal(0.0, 1.0, size=400)
    standard_error = values.std(ddof=1) / np.sqrt(values.size)
    low, high = bootstrap_ci(values, confidence=0.68, n_resamples=4000)
    assert high - low == pytest.approx(2 * standard_error, rel=0.15)
    # A wider confidence gives a wider interval.
    low95, high95 = bootstrap_ci(values, confidence=0.95, n_resamples=4000)
    assert high95 - low95 == pytest.approx(2 * 1.96 * standard_error, rel=0.15)


# ---------------------------------------------------------------------------------------------------------------------
# evaluate_meta_policy with scripted policies
# ---------------------------------------------------------------------------------------------------------------------


def test_stay_policy_gets_step_penalty_in_every_inner_episode():
    result = evaluate_meta_policy(StayPolicy("GridNavi-v0"), "GridNavi-v0", n_meta_episodes=6, n_envs=3)
    assert result.inner_returns.shape == (6, N_INNER)
    np.testing.assert_allclose(result.inner_returns, -1.5, atol=1e-9)
    np.testing.assert_allclose(result.meta_returns, -6.0, atol=1e-9)
    assert result.inner_successes is None


@pytest.mark.parametrize("n_meta_episodes, n_envs", [(1, 8), (3, 8), (4, 4), (5, 2), (7, 3), (10, 4), (9, 1)])
def test_returns_exactly_n_meta_episodes_rows(n_meta_episodes, n_envs):
    result = evaluate_meta_policy(
        StayPolicy("GridNavi-v0"), "GridNavi-v0", n_meta_episodes=n_meta_episodes, n_envs=n_envs
    )
    assert result.inner_returns.shape == (n_meta_episodes, N_INNER)
    assert len(result.tasks) == n_meta_episodes
    assert result.summary()["n_meta_episodes"] == n_meta_episodes


def test_n_meta_episodes_must_be_positive():
    with pytest.raises(ValueError, match="n_meta_episodes"):
        evaluate_meta_policy(StayPolicy("GridNavi-v0"), "GridNavi-v0", n_meta_episodes=0)


@pytest.mark.parametrize("n_meta_episodes, n_envs", [(8, 4), (6, 6)])
def test_oracle_reaches_known_goal_optimum_and_tasks_are_those_run(n_meta_episodes, n_envs):
    oracle = GoalOracle()
    result = evaluate_meta_policy(
        oracle, "GridNavi-v0", n_meta_episodes=n_meta_episodes, n_envs=n_envs, env_kwargs={"expose_task": True}
    )
    assert result.inner_returns.shape == (n_meta_episodes, N_INNER)
    tasks = [tuple(float(v) for v in task) for task in result.tasks]
    # All envs run in lockstep (60-step meta-episodes, equal quotas), so the oracle saw exactly these tasks, in order.
    assert tasks == oracle.seen_tasks
    for task, row in zip(tasks, result.inner_returns, strict=True):
        gx, gy = task
        assert 0 <= gx < GRID_SIZE and 0 <= gy < GRID_SIZE and (gx >= 2 or gy >= 2), task
        np.testing.assert_allclose(row, gridnavi_optimum(task), atol=1e-9)
    np.testing.assert_allclose(result.meta_returns, [N_INNER * gridnavi_optimum(t) for t in tasks], atol=1e-9)
    assert len(set(tasks)) > 1  # tasks are sampled, not fixed


def test_oracle_reading_goals_from_the_envs_with_unequal_quotas():
    # 5 meta-episodes on 2 envs built here (quotas 2 and 3); the oracle reads each env's goal through the wrappers.
    vec_env = DummyVecEnv([lambda: gym.make("GridNavi-v0") for _ in range(2)])
    oracle = GoalOracle(vec_env)
    result = evaluate_meta_policy(oracle, vec_env, n_meta_episodes=5, seed=11)
    assert result.inner_returns.shape == (5, N_INNER)
    per_env = {i: [task for j, task in oracle.seen if j == i] for i in range(2)}
    # Env 0 runs a third meta-episode alongside env 1's third one, but only its first two count.
    assert [len(per_env[0]), len(per_env[1])] == [3, 3]
    expected = [per_env[0][0], per_env[1][0], per_env[0][1], per_env[1][1], per_env[1][2]]
    assert [tuple(float(v) for v in task) for task in result.tasks] == expected
    for task, row in zip(result.tasks, result.inner_returns, strict=True):
        np.testing.assert_allclose(row, gridnavi_optimum(task), atol=1e-9)


def test_evaluate_on_a_single_gym_env():
    env = gym.make("GridNavi-v0", expose_task=True)
    result = evaluate_meta_policy(GoalOracle(), env, n_meta_episodes=3, seed=5)
    assert result.inner_returns.shape == (3, N_INNER)
    for task, row in zip(result.tasks, result.inner_returns, strict=True):
        np.testing.assert_allclose(row, gridnavi_optimum(task), atol=1e-9)


def test_same_seed_same_tasks_and_returns_different_seed_different_tasks():
    def run(seed: int) -> MetaEvaluation:
        return evaluate_meta_policy(
            GoalOracle(), "GridNavi-v0", n_meta_episodes=12, n_envs=4, seed=seed, env_kwargs={"expose_task": True}
        )

    first, again, other = run(3), run(3), run(4)
    np.testing.assert_array_equal(np.stack(first.tasks), np.stack(again.tasks))
    np.testing.assert_array_equal(first.inner_returns, again.inner_returns)
    assert not np.array_equal(np.stack(first.tasks), np.stack(other.tasks))


def test_successes_are_collected_from_inner_info():
    vec_env = DummyVecEnv([make_coin_env for _ in range(3)])
    policy = SwitchPolicy(make_coin_env())
    result = evaluate_meta_policy(policy, vec_env, n_meta_episodes=12, seed=0)
    assert result.inner_successes is not None
    assert result.inner_successes.shape == (12, COIN_INNER)
    tasks = np.array([int(task[0]) for task in result.tasks])
    assert set(tasks) == {0, 1}, "seed 0 should give both tasks among 12 meta-episodes"
    # Action 0 in inner episode 1, then action 1: success exactly where the action matches the coin.
    expected = np.stack([tasks == 0, tasks == 1, tasks == 1], axis=1).astype(float)
    np.testing.assert_array_equal(result.inner_successes, expected)
    np.testing.assert_array_equal(result.inner_returns, 2.0 * expected)

    summary = result.summary()
    assert [s["mean"] for s in summary["inner_successes"]] == pytest.approx(expected.mean(axis=0))
    # A meta-episode succeeds if its last inner episode does.
    assert summary["success_rate"]["mean"] == pytest.approx(np.mean(tasks == 1))


def test_evaluate_on_an_env_factory_of_a_user_defined_task_family():
    def run(env: Any) -> MetaEvaluation:
        return evaluate_meta_policy(SwitchPolicy(make_coin_env()), env, n_meta_episodes=8, n_envs=3, seed=4)

    result = run(make_coin_env)
    assert result.inner_returns.shape == (8, COIN_INNER)
    assert result.inner_successes is not None and result.inner_successes.shape == (8, COIN_INNER)
    assert len(result.tasks) == 8
    again = run(make_coin_env)
    np.testing.assert_array_equal(result.inner_returns, again.inner_returns)
    np.testing.assert_array_equal(np.stack(result.tasks), np.stack(again.tasks))
    # A factory is what make_vec_env takes: the same envs as a DummyVecEnv built from it by hand.
    by_hand = run(DummyVecEnv([make_coin_env] * 3))
    np.testing.assert_array_equal(result.inner_returns, by_hand.inner_returns)
    np.testing.assert_array_equal(np.stack(result.tasks), np.stack(by_hand.tasks))
    # Both coin sides occur, so the comparisons above compare sampled tasks.
    assert len({int(task[0]) for task in result.tasks}) == 2


def test_env_factory_gets_env_kwargs_and_n_envs_copies():
    calls: list[dict[str, Any]] = []

    def factory(**kwargs: Any) -> gym.Env:
        calls.append(kwargs)
        return gym.make("GridNavi-v0", **kwargs)

    policy = StayPolicy("GridNavi-v0", expose_task=True)
    result = evaluate_meta_policy(policy, factory, n_meta_episodes=3, n_envs=3, env_kwargs={"expose_task": True})
    assert calls == [{"expose_task": True}] * 3
    np.testing.assert_allclose(result.inner_returns, -1.5, atol=1e-9)


def test_env_factory_of_a_registered_id_gives_the_results_of_the_id(tiny_model):
    by_factory = evaluate_meta_policy(tiny_model, lambda: gym.make("GridNavi-v0"), n_meta_episodes=6, n_envs=3, seed=2)
    by_id = evaluate_meta_policy(tiny_model, "GridNavi-v0", n_meta_episodes=6, n_envs=3, seed=2)
    assert by_factory.inner_returns.shape == (6, N_INNER)
    np.testing.assert_array_equal(by_factory.inner_returns, by_id.inner_returns)
    np.testing.assert_array_equal(np.stack(by_factory.tasks), np.stack(by_id.tasks))
    assert len({tuple(task) for task in by_id.tasks}) > 1


@pytest.mark.parametrize("env", [3, None, ["GridNavi-v0"]], ids=["int", "None", "list"])
def test_an_env_of_another_kind_raises_a_type_error_naming_the_accepted_kinds(env):
    with pytest.raises(TypeError, match=r"env id .*gym\.Env.*VecEnv.*env factory") as error:
        evaluate_meta_policy(StayPolicy("GridNavi-v0"), env, n_meta_episodes=1)
    assert type(env).__name__ in str(error.value)


def test_an_env_factory_returning_something_else_raises_a_type_error():
    with pytest.raises(TypeError, match=r"returned a str, not a gym\.Env"):
        evaluate_meta_policy(StayPolicy("GridNavi-v0"), lambda: "GridNavi-v0", n_meta_episodes=1)


def test_non_meta_env_is_rejected():
    policy = StayPolicy(env=gym.make("GridNaviTask-v0"))
    vec_env = DummyVecEnv([lambda: gym.make("GridNaviTask-v0")])
    with pytest.raises(ValueError, match="MetaEpisodeWrapper"):
        evaluate_meta_policy(policy, vec_env, n_meta_episodes=1)


# ---------------------------------------------------------------------------------------------------------------------
# MetaEvaluation.summary
# ---------------------------------------------------------------------------------------------------------------------


def test_summary_keys_and_shapes_without_successes():
    inner = np.arange(20, dtype=float).reshape(5, 4)
    summary = MetaEvaluation(inner).summary()
    assert set(summary) == {"n_meta_episodes", "confidence", "inner_returns", "meta_return"}
    assert summary["n_meta_episodes"] == 5
    assert summary["confidence"] == 0.68
    assert len(summary["inner_returns"]) == 4
    for stats, column in zip(summary["inner_returns"], inner.T, strict=True):
        assert set(stats) == {"mean", "ci_low", "ci_high"}
        assert stats["mean"] == pytest.approx(column.mean())
        assert stats["ci_low"] <= stats["mean"] <= stats["ci_high"]
    assert summary["meta_return"]["mean"] == pytest.approx(sum(s["mean"] for s in summary["inner_returns"]))
    assert summary["meta_return"]["mean"] == pytest.approx(inner.sum(axis=1).mean())
    json.dumps(summary)  # plain Python numbers


def test_summary_with_successes():
    inner = np.ones((4, 3))
    successes = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0]], dtype=float)
    summary = MetaEvaluation(inner, successes).summary(confidence=0.9)
    assert summary["confidence"] == 0.9
    assert len(summary["inner_successes"]) == 3
    assert [s["mean"] for s in summary["inner_successes"]] == pytest.approx([0.25, 0.5, 0.5])
    assert summary["success_rate"]["mean"] == pytest.approx(0.5)
    assert 0.0 <= summary["success_rate"]["ci_low"] <= summary["success_rate"]["ci_high"] <= 1.0
    json.dumps(summary)


# ---------------------------------------------------------------------------------------------------------------------
# Trained models: loading, checking, evaluating
# ---------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model() -> RecurrentPPO:
    env = make_vec_env("GridNavi-v0", n_envs=4, seed=0)
    model = RecurrentPPO(
        RNNHNPolicy, env, n_steps=60, batch_size=240, n_epochs=1, policy_kwargs=SMALL_POLICY_KWARGS, seed=0
    )
    return model.learn(480)


def test_check_model_fits_env_names_the_mismatching_space(tiny_model):
    check_model_fits_env(tiny_model, gym.make("GridNavi-v0"))  # fits
    with pytest.raises(ValueError, match="observation space") as error:
        check_model_fits_env(tiny_model, gym.make("GridNavi-v0", expose_task=True), "GridNavi-v0 with task")
    assert "does not fit GridNavi-v0 with task" in str(error.value)
    with pytest.raises(ValueError, match="does not fit"):
        check_model_fits_env(tiny_model, DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    other_actions = SimpleNamespace(observation_space=tiny_model.observation_space, action_space=spaces.Discrete(3))
    with pytest.raises(ValueError, match="action space"):
        check_model_fits_env(tiny_model, other_actions)


def test_evaluate_rejects_a_model_of_other_spaces(tiny_model):
    with pytest.raises(ValueError, match="does not fit GridNaviShow"):
        evaluate_meta_policy(tiny_model, "GridNaviShow-v0", n_meta_episodes=1, env_kwargs={"expose_task": True})


def test_load_meta_model_rejects_non_recurrent_zip(tmp_path):
    from stable_baselines3 import PPO

    PPO("MlpPolicy", "CartPole-v1").save(tmp_path / "ppo")
    with pytest.raises(ValueError, match="RecurrentPPO"):
        load_meta_model(tmp_path / "ppo.zip")


def test_load_meta_model_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        load_meta_model(tmp_path / "missing.zip")
    with pytest.raises(FileNotFoundError):
        load_meta_model(tmp_path / "missing")


def test_load_meta_model_loads_recurrent_zip_with_or_without_suffix(tiny_model, tmp_path):
    tiny_model.save(tmp_path / "model.zip")
    obs = tiny_model.get_env().reset()
    start = np.ones(tiny_model.get_env().num_envs, dtype=bool)
    expected, _ = tiny_model.predict(obs, episode_start=start, deterministic=True)
    for path in (tmp_path / "model.zip", tmp_path / "model", str(tmp_path / "model")):
        loaded = load_meta_model(path, device="cpu")
        assert isinstance(loaded, RecurrentPPO)
        assert isinstance(loaded.policy, RNNHNPolicy)
        actions, _ = loaded.predict(obs, episode_start=start, deterministic=True)
        np.testing.assert_array_equal(actions, expected)


def test_trained_model_evaluation_is_deterministic(tiny_model):
    first = evaluate_meta_policy(tiny_model, "GridNavi-v0", n_meta_episodes=6, n_envs=3, seed=2)
    second = evaluate_meta_policy(tiny_model, "GridNavi-v0", n_meta_episodes=6, n_envs=3, seed=2)
    assert first.inner_returns.shape == (6, N_INNER)
    assert np.all(np.isfinite(first.inner_returns))
    np.testing.assert_array_equal(first.inner_returns, second.inner_returns)
    np.testing.assert_array_equal(np.stack(first.tasks), np.stack(second.tasks))
    # Returns lie between always missing the goal and the known-goal optimum.
    for task, row in zip(first.tasks, first.inner_returns, strict=True):
        assert np.all(row >= -0.1 * INNER_STEPS - 1e-9)
        assert np.all(row <= gridnavi_optimum(task) + 1e-9)


def test_random_policy_baseline_on_gridnavi():
    result = evaluate_meta_policy(RandomPolicy.for_env("GridNavi-v0"), "GridNavi-v0", n_meta_episodes=200, seed=0)
    # Mostly -0.1 per step with occasional goal visits: well below 0, above the always-stay -6.
    assert -6.0 < result.meta_returns.mean() < -3.0
    again = evaluate_meta_policy(RandomPolicy.for_env("GridNavi-v0"), "GridNavi-v0", n_meta_episodes=200, seed=0)
    np.testing.assert_array_equal(result.inner_returns, again.inner_returns)


class ImageTask(gym.Env, TaskDistribution):
    """Image observations (10x10x3 uint8) whose colour is the task; 3-step episodes."""

    def __init__(self):
        self.observation_space = spaces.Box(0, 255, (10, 10, 3), np.uint8)
        self.action_space = spaces.Discrete(2)
        self.task_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.task, self.t = 0, 0

    def sample_task(self, rng):
        return int(rng.integers(2))

    def set_task(self, task):
        self.task = int(task)

    def task_descriptor(self):
        return np.array([self.task], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.full((10, 10, 3), 255 * self.task, np.uint8), {}

    def step(self, action):
        self.t += 1
        obs = np.full((10, 10, 3), 255 * self.task, np.uint8)
        return obs, float(action == self.task), self.t >= 3, False, {}


def test_image_observations_are_transposed_as_in_training():
    def make():
        return MetaEpisodeWrapper(ImageTask(), n_episodes=2)

    model = RecurrentPPO(RNNPolicy, make_vec_env(make, n_envs=2, seed=0), n_steps=12, batch_size=12,
                         policy_kwargs=dict(gru_hidden_size=8, net_arch=[8]), seed=0)  # fmt: skip
    assert model.observation_space["obs"].shape == (3, 10, 10)  # SB3 trains channels-first
    result = evaluate_meta_policy(model, DummyVecEnv([make, make]), n_meta_episodes=4)
    assert result.inner_returns.shape == (4, 2)


def test_n_envs_must_be_positive():
    with pytest.raises(ValueError, match="n_envs"):
        evaluate_meta_policy(RandomPolicy.for_env("GridNavi-v0"), "GridNavi-v0", n_meta_episodes=2, n_envs=0)
