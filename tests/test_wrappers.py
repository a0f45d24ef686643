"""MetaEpisodeWrapper semantics (NeurIPS 2023 section 3.1) and seeding, checked on small toy task distributions, and
both env checkers on every registered id."""

from __future__ import annotations

import copy
import importlib.util
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs  # noqa: F401  (registers the gymnasium ids)
from sb3_hypernet.common import meta_episode as meta_episode_module
from sb3_hypernet.common.meta_episode import MetaEpisodeWrapper
from sb3_hypernet.common.task import META_OBS_KEYS, TaskDistribution

# ---------------------------------------------------------------------------------------------------------------------
# Toy environments
# ---------------------------------------------------------------------------------------------------------------------


# The toy task envs terminate by themselves; the no-time-limit warning is tested on its own below.


class CounterTaskEnv(gym.Env, TaskDistribution):
    """Task: an integer ``c``. Observation ``[c, t]`` with ``t`` the step count inside the inner episode.

    Reward of step ``t`` (1-based) is ``10 * c + t``. Inner episode ``i`` (counted over resets) terminates after
    ``lengths[i % len(lengths)]`` steps; with ``lengths=None`` it never terminates (a time limit must end it).
    ``success_steps``: 1-based steps at which ``info["success"]`` is True, per inner episode (``None``: no key).
    """

    def __init__(
        self,
        lengths: tuple[int, ...] | None = (3,),
        action_space: spaces.Space | None = None,
        success_steps: tuple[tuple[int, ...], ...] | None = None,
        bad_reward: float | None = None,
    ):
        self.lengths = lengths
        self.success_steps = success_steps
        self.bad_reward = bad_reward
        self.action_space = spaces.Discrete(3) if action_space is None else action_space
        self.observation_space = spaces.Box(0.0, 1000.0, (2,), np.float32)
        self.task_space = spaces.Box(0.0, 1000.0, (1,), np.float32)
        self._task = 0
        self._t = 0
        self.n_resets = 0
        self.set_task_calls: list[Any] = []
        self.sample_task_calls = 0
        self.reset_options: list[Any] = []
        self.actions: list[Any] = []

    def sample_task(self, rng: np.random.Generator) -> int:
        self.sample_task_calls += 1
        return int(rng.integers(1, 1000))

    def set_task(self, task: Any) -> None:
        self.set_task_calls.append(task)
        self._task = int(task)

    def task_descriptor(self) -> np.ndarray:
        return np.array([self._task], np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.n_resets += 1
        self.reset_options.append(options)
        self._t = 0
        return self._obs(), {}

    def step(self, action: Any):
        self.actions.append(action)
        self._t += 1
        reward = 10.0 * self._task + self._t
        if self.bad_reward is not None and self._t == 2:
            reward = self.bad_reward
        episode = self.n_resets - 1
        terminated = self.lengths is not None and self._t >= self.lengths[episode % len(self.lengths)]
        info: dict[str, Any] = {}
        if self.success_steps is not None:
            info["success"] = self._t in self.success_steps[episode % len(self.success_steps)]
        return self._obs(), reward, terminated, False, info

    def _obs(self) -> np.ndarray:
        return np.array([self._task, self._t], np.float32)


class PlainEnv(gym.Env):
    """A gym env without the task-distribution interface."""

    def __init__(self):
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action):
        return np.zeros(1, np.float32), 0.0, False, False, {}


def run_meta_episode(env: MetaEpisodeWrapper, actions=None, **reset_kwargs):
    """Reset and step until the meta-episode ends; returns (reset obs, reset info, list of step tuples)."""
    obs, info = env.reset(**reset_kwargs)
    steps = []
    for i in range(10_000):
        action = env.action_space.sample() if actions is None else actions[i % len(actions)]
        step = env.step(action)
        steps.append(step)
        if step[2] or step[3]:
            return obs, info, steps
    raise AssertionError("meta-episode did not end")


# ---------------------------------------------------------------------------------------------------------------------
# Inner episodes and the meta-episode end
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_episodes", [1, 2, 3, 5])
def test_meta_episode_terminates_exactly_after_kth_inner_episode(n_episodes):
    lengths = (3, 1, 4)
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=lengths), n_episodes=n_episodes)
    _, _, steps = run_meta_episode(env, actions=[0], seed=0)
    expected = [lengths[i % 3] for i in range(n_episodes)]
    assert len(steps) == sum(expected)
    assert [s[2] for s in steps] == [False] * (len(steps) - 1) + [True]
    assert not any(s[3] for s in steps)
    assert steps[-1][4]["inner_lengths"] == expected


def test_inner_boundaries_never_end_the_meta_episode():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2,)), n_episodes=3)
    _, _, steps = run_meta_episode(env, actions=[1], seed=0)
    boundaries = [i for i, s in enumerate(steps) if s[0]["episode_done"][0] == 1.0]
    assert boundaries == [1, 3]
    for i in boundaries:
        assert steps[i][2] is False and steps[i][3] is False


def test_inner_termination_ends_only_that_inner_episode():
    inner = CounterTaskEnv(lengths=(1, 2))
    env = MetaEpisodeWrapper(inner, n_episodes=2)
    env.reset(seed=0)
    obs, _, terminated, truncated, info = env.step(0)  # inner env terminates here
    assert (terminated, truncated) == (False, False)
    assert obs["episode_done"][0] == 1.0
    assert inner.n_resets == 2  # reset in place
    _, _, terminated, _, info = env.step(0)
    assert not terminated and info["inner_episode"] == 1
    _, _, terminated, _, info = env.step(0)
    assert terminated and info["inner_lengths"] == [1, 2]


def test_inner_truncation_from_max_episode_steps_ends_only_that_inner_episode():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=None), n_episodes=3, max_episode_steps=4)
    _, _, steps = run_meta_episode(env, actions=[0], seed=0)
    assert len(steps) == 12
    assert [i for i, s in enumerate(steps) if s[0]["episode_done"][0] == 1.0] == [3, 7]
    assert steps[-1][4]["inner_lengths"] == [4, 4, 4]


def test_inner_truncation_from_an_existing_time_limit_ends_only_that_inner_episode():
    inner = gym.wrappers.TimeLimit(CounterTaskEnv(lengths=None), max_episode_steps=5)
    env = MetaEpisodeWrapper(inner, n_episodes=2)
    _, _, steps = run_meta_episode(env, actions=[0], seed=0)
    assert len(steps) == 10
    assert not any(s[2] or s[3] for s in steps[:-1])
    assert steps[-1][4]["inner_lengths"] == [5, 5]


def test_a_new_meta_episode_restarts_the_inner_episode_count():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2,)), n_episodes=2)
    env.reset(seed=0)
    env.step(0)
    env.step(0)  # inner boundary, mid meta-episode
    _, info = env.reset()
    assert info["inner_episode"] == 0
    _, _, steps = run_meta_episode(env, actions=[0])
    assert len(steps) == 4
    assert steps[-1][4]["inner_lengths"] == [2, 2]


# ---------------------------------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------------------------------


def test_task_is_set_once_and_constant_within_a_meta_episode():
    inner = CounterTaskEnv(lengths=(2, 3))
    env = MetaEpisodeWrapper(inner, n_episodes=3, expose_task=True)
    obs, _, steps = run_meta_episode(env, actions=[0], seed=5)
    assert len(inner.set_task_calls) == 1
    task = inner.set_task_calls[0]
    assert env.task == task
    np.testing.assert_array_equal(obs["task"], [task])
    for step_obs, *_ in steps:
        np.testing.assert_array_equal(step_obs["task"], [task])
        assert step_obs["obs"][0] == task  # the inner env ran the same task throughout
    np.testing.assert_array_equal(inner.task_descriptor(), [task])


def test_a_new_task_is_sampled_at_every_meta_reset():
    inner = CounterTaskEnv(lengths=(1,))
    env = MetaEpisodeWrapper(inner, n_episodes=1)
    tasks = []
    for i in range(6):
        env.reset(seed=0 if i == 0 else None)
        tasks.append(env.task)
        env.step(0)
    assert inner.sample_task_calls == 6
    assert inner.set_task_calls == tasks
    assert len(set(tasks)) > 1


def _task_sequence(seed: int, n: int = 6) -> list[int]:
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(1,)), n_episodes=1)
    tasks = []
    for i in range(n):
        env.reset(seed=seed if i == 0 else None)
        tasks.append(env.task)
    return tasks


def test_task_sampling_is_reproducible_under_reset_seed():
    assert _task_sequence(123) == _task_sequence(123)


def test_task_sampling_differs_across_seeds():
    assert _task_sequence(1) != _task_sequence(2)


def test_reseeding_restarts_the_task_sequence():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(1,)), n_episodes=1)
    first = []
    for seed in (7, None, None, 7, None, None):
        env.reset(seed=seed)
        first.append(env.task)
    assert first[:3] == first[3:]


def test_reset_task_option_runs_the_given_task():
    inner = CounterTaskEnv(lengths=(2,))
    env = MetaEpisodeWrapper(inner, n_episodes=2, expose_task=True)
    obs, _, steps = run_meta_episode(env, actions=[0], seed=0, options={"task": 42})
    assert env.task == 42
    assert inner.set_task_calls == [42]
    assert inner.sample_task_calls == 0
    np.testing.assert_array_equal(obs["task"], [42.0])
    assert [s[1] for s in steps] == [421.0, 422.0, 421.0, 422.0]


def test_reset_task_option_accepts_a_falsy_task():
    inner = CounterTaskEnv(lengths=(2,))
    env = MetaEpisodeWrapper(inner, n_episodes=1)
    env.reset(seed=0, options={"task": 0})
    assert env.task == 0
    assert inner.set_task_calls == [0]
    assert inner.sample_task_calls == 0


def test_reset_task_option_is_not_forwarded_but_other_options_are():
    inner = CounterTaskEnv(lengths=(2,))
    env = MetaEpisodeWrapper(inner, n_episodes=1)
    env.reset(seed=0, options={"task": 3, "other": 1})
    assert inner.reset_options[-1] == {"other": 1}
    env.reset(options={"task": 3})
    assert not inner.reset_options[-1]


# ---------------------------------------------------------------------------------------------------------------------
# Observations
# ---------------------------------------------------------------------------------------------------------------------


def test_observation_keys_and_space():
    env = MetaEpisodeWrapper(CounterTaskEnv(), n_episodes=2)
    assert tuple(env.observation_space.spaces) == META_OBS_KEYS
    obs, _ = env.reset(seed=0)
    assert tuple(obs) == META_OBS_KEYS
    assert env.observation_space.contains(obs)
    assert env.observation_space["prev_action"].shape == (3,)
    assert env.observation_space["prev_reward"].shape == (1,)
    assert env.observation_space["episode_done"].shape == (1,)


def test_meta_reset_observation_has_zero_prev_action_and_reward():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2,)), n_episodes=2)
    for seed in (0, None):  # also after a finished meta-episode with nonzero actions and rewards
        obs, info = env.reset(seed=seed)
        np.testing.assert_array_equal(obs["obs"], [env.task, 0])
        np.testing.assert_array_equal(obs["prev_action"], np.zeros(3, np.float32))
        np.testing.assert_array_equal(obs["prev_reward"], np.zeros(1, np.float32))
        np.testing.assert_array_equal(obs["episode_done"], np.zeros(1, np.float32))
        assert info["inner_episode"] == 0
        run_meta_episode(env, actions=[2])


def test_boundary_observation_is_the_new_first_obs_with_the_ending_steps_action_and_reward():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2, 3)), n_episodes=2)
    env.reset(options={"task": 4})
    obs, reward, *_ = env.step(0)
    np.testing.assert_array_equal(obs["obs"], [4, 1])
    np.testing.assert_array_equal(obs["episode_done"], [0.0])
    obs, reward, terminated, _, _ = env.step(2)  # ends inner episode 0
    assert reward == 42.0 and not terminated
    np.testing.assert_array_equal(obs["obs"], [4, 0])  # first observation of inner episode 1
    np.testing.assert_array_equal(obs["prev_action"], [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(obs["prev_reward"], [42.0])
    np.testing.assert_array_equal(obs["episode_done"], [1.0])
    obs, reward, *_ = env.step(1)
    np.testing.assert_array_equal(obs["obs"], [4, 1])
    np.testing.assert_array_equal(obs["prev_action"], [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(obs["prev_reward"], [41.0])
    np.testing.assert_array_equal(obs["episode_done"], [0.0])


def test_episode_done_is_one_only_on_the_first_step_of_inner_episodes_2_to_k():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2, 1, 3)), n_episodes=3)
    obs, _, steps = run_meta_episode(env, actions=[0], seed=0)
    flags = [obs["episode_done"][0]] + [s[0]["episode_done"][0] for s in steps]
    # observations: reset, then after steps 1..6; inner episodes start at reset, after step 2 and after step 3
    assert flags == [0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_step_reward_and_prev_reward_match_the_inner_reward():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(3,)), n_episodes=2)
    _, _, steps = run_meta_episode(env, actions=[0], options={"task": 2})
    assert [s[1] for s in steps] == [21.0, 22.0, 23.0] * 2
    np.testing.assert_array_equal([s[0]["prev_reward"][0] for s in steps], [21, 22, 23] * 2)


@pytest.mark.parametrize("action", [0, 1, 2, 3])
def test_prev_action_is_one_hot_for_discrete(action):
    env = MetaEpisodeWrapper(CounterTaskEnv(action_space=spaces.Discrete(4)), n_episodes=1)
    env.reset(seed=0)
    obs, *_ = env.step(np.int64(action))
    np.testing.assert_array_equal(obs["prev_action"], np.eye(4, dtype=np.float32)[action])
    assert obs["prev_action"].dtype == np.float32


def test_prev_action_one_hot_respects_discrete_start():
    env = MetaEpisodeWrapper(CounterTaskEnv(action_space=spaces.Discrete(3, start=1)), n_episodes=1)
    env.reset(seed=0)
    obs, *_ = env.step(3)  # the last action of {1, 2, 3}
    np.testing.assert_array_equal(obs["prev_action"], [0.0, 0.0, 1.0])


def test_prev_action_is_the_action_for_box():
    box = spaces.Box(-1.0, 1.0, (2,), np.float32)
    env = MetaEpisodeWrapper(CounterTaskEnv(action_space=box), n_episodes=1)
    assert env.observation_space["prev_action"].shape == (2,)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs["prev_action"], np.zeros(2, np.float32))
    obs, *_ = env.step(np.array([0.25, -0.5], np.float32))
    np.testing.assert_array_equal(obs["prev_action"], np.array([0.25, -0.5], np.float32))


def test_prev_action_is_clipped_to_the_box_bounds():
    box = spaces.Box(-1.0, 1.0, (2,), np.float32)
    inner = CounterTaskEnv(action_space=box)
    env = MetaEpisodeWrapper(inner, n_episodes=1)
    env.reset(seed=0)
    obs, *_ = env.step(np.array([2.0, -0.5], np.float32))
    np.testing.assert_array_equal(obs["prev_action"], np.array([1.0, -0.5], np.float32))
    assert env.observation_space.contains(obs)


def test_observations_stay_in_the_observation_space():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2, 3)), n_episodes=3, expose_task=True)
    env.action_space.seed(0)
    obs, _, steps = run_meta_episode(env, seed=0)
    for o in [obs] + [s[0] for s in steps]:
        assert env.observation_space.contains(o)


# ---------------------------------------------------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------------------------------------------------


def test_inner_episode_index_is_in_every_info():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2, 1, 3)), n_episodes=3)
    _, info, steps = run_meta_episode(env, actions=[0], seed=0)
    assert info["inner_episode"] == 0
    assert [s[4]["inner_episode"] for s in steps] == [0, 0, 1, 2, 2, 2]


def test_inner_returns_and_lengths_are_reported_only_at_the_meta_episode_end():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2, 1, 3)), n_episodes=3)
    _, _, steps = run_meta_episode(env, actions=[0], options={"task": 1})
    for *_, info in steps[:-1]:
        assert "inner_returns" not in info and "inner_lengths" not in info
    info = steps[-1][4]
    assert info["inner_lengths"] == [2, 1, 3]
    assert info["inner_returns"] == pytest.approx([11 + 12, 11, 11 + 12 + 13])


def test_inner_returns_equal_the_sums_of_step_rewards():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(4, 2, 5)), n_episodes=3)
    _, _, steps = run_meta_episode(env, actions=[0], seed=3)
    sums = [0.0, 0.0, 0.0]
    for _, reward, _, _, info in steps:
        sums[info["inner_episode"]] += reward
    assert steps[-1][4]["inner_returns"] == pytest.approx(sums)
    assert sum(steps[-1][4]["inner_lengths"]) == len(steps)


def test_inner_successes_count_an_episode_as_success_if_any_step_succeeds():
    # success only on a middle step of episode 0, never in episode 1, on the last step of episode 2
    inner = CounterTaskEnv(lengths=(3,), success_steps=((2,), (), (3,)))
    env = MetaEpisodeWrapper(inner, n_episodes=3)
    _, _, steps = run_meta_episode(env, actions=[0], seed=0)
    assert steps[-1][4]["inner_successes"] == [1.0, 0.0, 1.0]
    assert all("inner_successes" not in s[4] for s in steps[:-1])


def test_no_inner_successes_without_a_success_key():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2,)), n_episodes=2)
    _, _, steps = run_meta_episode(env, actions=[0], seed=0)
    assert "inner_returns" in steps[-1][4]
    assert "inner_successes" not in steps[-1][4]


def test_success_bookkeeping_restarts_with_each_meta_episode():
    inner = CounterTaskEnv(lengths=(2,), success_steps=((1,), ()))
    env = MetaEpisodeWrapper(inner, n_episodes=1)
    _, _, steps = run_meta_episode(env, actions=[0], seed=0)  # inner episode 0: success
    assert steps[-1][4]["inner_successes"] == [1.0]
    _, _, steps = run_meta_episode(env, actions=[0])  # inner episode 1 (of the env): no success
    assert steps[-1][4]["inner_successes"] == [0.0]
    assert steps[-1][4]["inner_returns"] == pytest.approx([sum(s[1] for s in steps)])


# ---------------------------------------------------------------------------------------------------------------------
# expose_task
# ---------------------------------------------------------------------------------------------------------------------


def test_expose_task_adds_the_task_descriptor():
    inner = CounterTaskEnv(lengths=(2,))
    env = MetaEpisodeWrapper(inner, n_episodes=2, expose_task=True)
    assert "task" in env.observation_space.spaces
    assert env.observation_space["task"] == inner.task_space
    obs, _, steps = run_meta_episode(env, actions=[0], options={"task": 9})
    for o in [obs] + [s[0] for s in steps]:
        np.testing.assert_array_equal(o["task"], inner.task_descriptor())
        assert o["task"].dtype == np.float32
    # a new task changes it
    obs, _ = env.reset(options={"task": 11})
    np.testing.assert_array_equal(obs["task"], [11.0])


def test_no_task_key_without_expose_task():
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(2,)), n_episodes=2)
    assert "task" not in env.observation_space.spaces
    obs, _, steps = run_meta_episode(env, actions=[0], seed=0)
    assert "task" not in obs
    assert all("task" not in s[0] for s in steps)


# ---------------------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_reward_raises_value_error(bad):
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=(5,), bad_reward=bad), n_episodes=1)
    env.reset(seed=0)
    env.step(0)
    with pytest.raises(ValueError, match="non-finite reward"):
        env.step(0)


def test_env_without_task_interface_raises_type_error_naming_the_missing_methods():
    with pytest.raises(TypeError) as excinfo:
        MetaEpisodeWrapper(PlainEnv(), n_episodes=2)
    message = str(excinfo.value)
    for name in ("sample_task", "set_task", "task_descriptor", "task_space"):
        assert name in message


def test_wrapped_env_without_task_interface_raises_type_error():
    with pytest.raises(TypeError, match="sample_task"):
        MetaEpisodeWrapper(gym.wrappers.TimeLimit(PlainEnv(), 10), n_episodes=1)


@pytest.mark.parametrize("n_episodes", [0, -1])
def test_non_positive_n_episodes_raises_value_error(n_episodes):
    with pytest.raises(ValueError, match="n_episodes"):
        MetaEpisodeWrapper(CounterTaskEnv(), n_episodes=n_episodes)


@pytest.mark.parametrize(
    "action_space", [spaces.MultiBinary(3), spaces.MultiDiscrete([2, 3])], ids=["MultiBinary", "MultiDiscrete"]
)
def test_unsupported_action_space_raises_type_error(action_space):
    with pytest.raises(TypeError, match=type(action_space).__name__):
        MetaEpisodeWrapper(CounterTaskEnv(action_space=action_space), n_episodes=1)


# ---------------------------------------------------------------------------------------------------------------------
# Registered ids
# ---------------------------------------------------------------------------------------------------------------------

META_IDS = ["GridNavi-v0", "GridNaviShow-v0", "GridNaviDense-v0"]
RAW_IDS = ["GridNaviTask-v0", "GridNaviShowTask-v0", "GridNaviDenseTask-v0"]
MUJOCO_META_IDS = [
    "CheetahDir-v0",
    "CheetahVel-v0",
    "CheetahVelMedium-v0",
    "AntDir-v0",
    "AntDirFwdBack-v0",
    "AntDirUniform-v0",
    "AntVel-v0",
    "WalkerRandParams-v0",
    "HumanoidDir-v0",
]
META_ENTRY_POINT = "sb3_hypernet.common.meta_episode:make_meta_env"
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
HAS_METAWORLD = importlib.util.find_spec("metaworld") is not None


def _is_meta(env_id: str) -> bool:
    return gym.spec(env_id).entry_point == META_ENTRY_POINT


def _task_entry_point(env_id: str) -> str:
    task_id = gym.spec(env_id).kwargs["task_env_id"] if _is_meta(env_id) else env_id
    return str(gym.spec(task_id).entry_point)


def _uses_mujoco(env_id: str) -> bool:
    """MuJoCo bodies, the locomotion families and Meta-World's arm alike (unbounded joint observations)."""
    return _task_entry_point(env_id).startswith(("envs.mujoco", "envs.metaworld"))


def _uses_metaworld(env_id: str) -> bool:
    return _task_entry_point(env_id).startswith("envs.metaworld")


# Read from the registry, so that an id registered later is checked without anyone adding it here.
REGISTERED_META_IDS = [env_id for env_id in gym.registry if _is_meta(env_id)]
REGISTERED_RAW_IDS = [env_id for env_id, spec in gym.registry.items() if str(spec.entry_point).startswith("envs.")]
NEEDS_MUJOCO = pytest.mark.skipif(not HAS_MUJOCO, reason="needs the mujoco extra")
NEEDS_METAWORLD = pytest.mark.skipif(not HAS_METAWORLD, reason="needs the metaworld extra")


def _params(env_ids: list[str], *marks_for: tuple[Callable[[str], bool], pytest.MarkDecorator]) -> list[Any]:
    """``env_ids`` as parameters; MuJoCo ids skip without mujoco; ``(predicate, mark)`` pairs add marks per id."""
    params = []
    for env_id in env_ids:
        marks = [NEEDS_MUJOCO] if _uses_mujoco(env_id) else []
        marks += [NEEDS_METAWORLD] if _uses_metaworld(env_id) else []
        marks += [mark for predicate, mark in marks_for if predicate(env_id)]
        params.append(pytest.param(env_id, marks=marks, id=env_id))
    return params


def _env_for_gym_checker(env_id: str) -> gym.Env:
    """The env gymnasium's checker should see: the raw env, or the MetaEpisodeWrapper without gym.make's wrappers."""
    env = gym.make(env_id)
    if not _is_meta(env_id):
        return env.unwrapped
    while not isinstance(env, MetaEpisodeWrapper):
        env = env.env
    return env


@pytest.mark.parametrize("env_id", META_IDS + RAW_IDS)
def test_registered_ids_are_registered(env_id):
    assert env_id in gym.registry


def test_the_registry_scan_finds_every_benchmark_id():
    # The checker and seeding tests below run on these scans: they must not silently lose an id.
    assert set(META_IDS + MUJOCO_META_IDS) <= set(REGISTERED_META_IDS)
    assert {gym.spec(env_id).kwargs["task_env_id"] for env_id in REGISTERED_META_IDS} <= set(REGISTERED_RAW_IDS)


# Findings of the checkers that are not defects; each is ignored only for the ids it occurs on, and every other
# warning fails the checker tests (both checkers report most findings as warnings).
# MuJoCo observations (joint positions and velocities) are unbounded Boxes, and so is every meta observation's
# prev_reward (a reward has no bound); gymnasium flags infinite bounds as "probably" wrong.
UNBOUNDED_OBSERVATIONS = pytest.mark.filterwarnings(
    "ignore:.*A Box observation space (minimum|maximum) value is -?infinity:UserWarning"
)
# A meta id is checked on its MetaEpisodeWrapper on purpose (that is the env the meta-episode semantics live in);
# gymnasium warns whenever the env it checks is not the unwrapped one.
CHECKS_THE_WRAPPER = pytest.mark.filterwarnings("ignore:.*is different from the unwrapped version:UserWarning")
# HumanoidDir keeps Humanoid-v5's action space, the model's torque range Box(-0.4, 0.4) (as the reference code);
# SB3's checker only recommends [-1, 1].
HUMANOID_ACTION_RANGE = pytest.mark.filterwarnings(
    "ignore:We recommend you to use a symmetric and normalized Box action space:UserWarning"
)

# MC-LS observations are images scaled to [-1, 1] as float32 (the reference's scaling) at 10x10 pixels, which
# our policies embed themselves; SB3's checker expects uint8 images of at least 36x36 for its own CnnPolicy.
SCALED_IMAGES = pytest.mark.filterwarnings(
    "ignore:.*is an image but its `dtype` is \\(float32\\):UserWarning",
    "ignore:.*is an image but the upper and lower bounds are not in \\[0, 255\\]:UserWarning",
    "ignore:The minimal resolution for an image is 36x36:UserWarning",
)


def _uses_images(env_id: str) -> bool:
    return _task_entry_point(env_id).startswith("envs.mc_ls")


@pytest.mark.parametrize(
    "env_id",
    _params(
        REGISTERED_META_IDS + REGISTERED_RAW_IDS,
        (_is_meta, CHECKS_THE_WRAPPER),
        # The point robot's position is unbounded as the plane is.
        (
            lambda env_id: _is_meta(env_id) or _uses_mujoco(env_id) or "point_robot" in _task_entry_point(env_id),
            UNBOUNDED_OBSERVATIONS,
        ),
    ),
)
@pytest.mark.filterwarnings("error")  # the per-id ignores above take precedence over this
def test_gymnasium_check_env(env_id):
    gym_check_env(_env_for_gym_checker(env_id), skip_render_check=True)


@pytest.mark.parametrize(
    "env_id",
    _params(
        REGISTERED_META_IDS + REGISTERED_RAW_IDS,
        (lambda env_id: "Humanoid" in env_id, HUMANOID_ACTION_RANGE),
        (_uses_images, SCALED_IMAGES),
    ),
)
@pytest.mark.filterwarnings("error")  # SB3's checker reports problems as warnings
def test_sb3_check_env(env_id):
    sb3_check_env(gym.make(env_id), warn=True)


# ---------------------------------------------------------------------------------------------------------------------
# Seeding: reset(seed=s) must give the task generator and the inner env independent streams
# ---------------------------------------------------------------------------------------------------------------------


def _uniforms(state: dict[str, Any], n: int) -> np.ndarray:
    """The first ``n`` uniforms of a generator restored to the bit-generator ``state``."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator).uniform(size=n)


@pytest.mark.parametrize("env_id", _params(REGISTERED_META_IDS))
def test_reset_seed_gives_tasks_and_the_inner_env_different_random_numbers(env_id, monkeypatch):
    env = gym.make(env_id)
    base = env.unwrapped
    task_states: list[dict[str, Any]] = []
    env_states: list[dict[str, Any]] = []
    sample_task, np_random = base.sample_task, seeding.np_random

    def spy_sample_task(rng: np.random.Generator) -> Any:
        task_states.append(copy.deepcopy(rng.bit_generator.state))
        return sample_task(rng)

    def spy_np_random(seed: int | None = None) -> tuple[np.random.Generator, Any]:
        rng, used = np_random(seed)  # what gym.Env.reset(seed=...) seeds the env's np_random with
        if seed is not None:
            env_states.append(copy.deepcopy(rng.bit_generator.state))
        return rng, used

    monkeypatch.setattr(base, "sample_task", spy_sample_task)
    monkeypatch.setattr(seeding, "np_random", spy_np_random)
    for seed in (0, 123):
        task_states.clear()
        env_states.clear()
        env.reset(seed=seed)
        assert len(task_states) == 1
        assert env_states, "reset(seed=...) must seed the inner env too, or its trajectories are not reproducible"
        task_draws = _uniforms(task_states[0], 16)
        for state in env_states:
            # Not the same stream, nor the same stream shifted by what the env draws before the task is sampled.
            assert not np.isin(task_draws, _uniforms(state, 256)).any(), (env_id, seed)


class BernoulliBandit(gym.Env, TaskDistribution):
    """A user's own task family: a 5-armed Bernoulli bandit whose task is the arms' success probabilities."""

    n_arms = 5

    def __init__(self):
        self.action_space = spaces.Discrete(self.n_arms)
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.task_space = spaces.Box(0.0, 1.0, (self.n_arms,), np.float32)
        self.probabilities = np.full(self.n_arms, 0.5)

    def sample_task(self, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(size=self.n_arms)

    def set_task(self, task: Any) -> None:
        self.probabilities = np.asarray(task, dtype=np.float64)

    def task_descriptor(self) -> np.ndarray:
        return self.probabilities.astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(1, np.float32), {}

    def step(self, action: Any):
        reward = float(self.np_random.uniform() < self.probabilities[int(action)])
        return np.zeros(1, np.float32), reward, False, False, {}


def make_bandit(n_episodes: int = 2, steps: int = 10) -> MetaEpisodeWrapper:
    return MetaEpisodeWrapper(gym.wrappers.TimeLimit(BernoulliBandit(), steps), n_episodes=n_episodes)


def test_bandit_arm_probabilities_are_not_the_envs_next_uniforms():
    env = make_bandit()
    env.reset(seed=123)
    # Were they equal, pulling arm i at step i would compare a number with itself and never pay.
    assert not np.allclose(env.task, env.unwrapped.np_random.uniform(size=BernoulliBandit.n_arms))


def _bandit_run(seed: int) -> tuple[list[np.ndarray], list[float]]:
    """Tasks and rewards of two meta-episodes (the second continues the seeded streams) pulling the arms in turn."""
    env = make_bandit(n_episodes=2, steps=10)
    tasks, rewards = [], []
    for meta_episode in range(2):
        env.reset(seed=seed if meta_episode == 0 else None)
        tasks.append(env.task.copy())
        rewards += [env.step(t % BernoulliBandit.n_arms)[1] for t in range(20)]
    return tasks, rewards


def test_reset_seed_reproduces_tasks_and_rewards_and_other_seeds_give_other_tasks():
    (tasks, rewards), (tasks_again, rewards_again), (other_tasks, _) = _bandit_run(7), _bandit_run(7), _bandit_run(8)
    np.testing.assert_array_equal(np.stack(tasks), np.stack(tasks_again))
    assert rewards == rewards_again
    assert 0 < sum(rewards) < len(rewards)  # the rewards are random draws, so comparing them means something
    assert not np.array_equal(tasks[0], other_tasks[0]) and not np.array_equal(tasks[1], other_tasks[1])


@pytest.mark.parametrize("env_id", META_IDS)
def test_meta_ids_are_meta_episode_wrappers_with_four_episodes(env_id):
    env = _env_for_gym_checker(env_id)
    assert env.n_episodes == 4
    assert isinstance(env.observation_space, spaces.Dict)
    assert tuple(env.observation_space.spaces) == META_OBS_KEYS


def test_make_forwards_task_env_kwargs():
    env = gym.make("GridNavi-v0", dense=True)
    assert env.unwrapped.dense is True
    assert gym.make("GridNavi-v0").unwrapped.dense is False
    env.reset(options={"task": (3, 2)})
    _, reward, *_ = env.step(0)  # stay at (0, 0): Manhattan distance 5
    assert reward == pytest.approx(-1.0)


def test_make_forwards_expose_task():
    env = gym.make("GridNavi-v0", expose_task=True)
    obs, _ = env.reset(options={"task": (4, 1)})
    np.testing.assert_array_equal(obs["task"], np.array([4.0, 1.0], np.float32))


def test_inner_successes_align_with_inner_returns_when_some_episodes_never_report_success():
    class SometimesReportsSuccess(CounterTaskEnv):
        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            if self.n_resets == 2:  # the second inner episode has no "success" key at all
                info.pop("success")
            return obs, reward, terminated, truncated, info

    env = MetaEpisodeWrapper(SometimesReportsSuccess(success_steps=((1,),)), n_episodes=3)
    env.reset(seed=0)
    done, info = False, {}
    while not done:
        _, _, done, _, info = env.step(env.action_space.sample())
    assert len(info["inner_successes"]) == len(info["inner_returns"]) == 3
    assert info["inner_successes"] == [1.0, 0.0, 1.0]


def test_monitor_inside_the_wrapper_reports_meta_episodes_only():
    from stable_baselines3.common.env_util import make_vec_env

    # The bring-your-own-task path: Monitor wraps the raw task env, MetaEpisodeWrapper goes outside it.
    vec_env = make_vec_env("GridNaviTask-v0", n_envs=2, seed=0, wrapper_class=MetaEpisodeWrapper,
                           wrapper_kwargs={"n_episodes": 4})  # fmt: skip
    vec_env.reset()
    episodes = []
    for _ in range(60):
        _, _, dones, infos = vec_env.step(np.zeros(2, dtype=np.int64))
        episodes += [info["episode"] for info in infos if "episode" in info]
    assert dones.all()
    assert len(episodes) == 2
    assert all(episode["l"] == 60 and episode["r"] == pytest.approx(-6.0) for episode in episodes)


def test_an_env_that_ends_its_own_episodes_is_not_warned_about():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = MetaEpisodeWrapper(CounterTaskEnv(lengths=[3, 4]), n_episodes=2)
        env.reset(seed=0)
        for _ in range(7):
            env.step(0)


def test_an_episode_that_never_ends_without_a_time_limit_is_warned_about_once(monkeypatch):
    monkeypatch.setattr(meta_episode_module, "LONG_INNER_EPISODE", 50)
    env = MetaEpisodeWrapper(CounterTaskEnv(lengths=None), n_episodes=2)
    env.reset(seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(120):
            env.step(0)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "has run 50 steps without terminating or truncating, and no time limit was found" in messages[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        limited = MetaEpisodeWrapper(CounterTaskEnv(lengths=None), n_episodes=2, max_episode_steps=60)
        limited.reset(seed=0)
        for _ in range(120):
            limited.step(0)
