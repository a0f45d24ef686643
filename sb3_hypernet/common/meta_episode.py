"""Meta-episodes: :class:`MetaEpisodeWrapper` runs several episodes of one task as one episode, and
:func:`make_meta_env` registers such ids (NeurIPS 2023, section 3.1)."""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_hypernet.common.task import (
    EPISODE_STATISTICS_KEY,
    INNER_TERMINAL_KEY,
    TASK_KEY,
    check_task_distribution,
)


class MetaEpisodeWrapper(gym.Wrapper):
    """Runs ``n_episodes`` episodes of one sampled task as a single (meta-)episode.

    NeurIPS 2023, section 3.1: a task is sampled when the meta-episode starts and kept for ``n_episodes``
    consecutive episodes; the recurrent state is reset only between meta-episodes, and the return optimised is
    the sum over the whole meta-episode. For SB3 the meta-episode *is* the episode: inner boundaries never
    produce ``terminated``/``truncated``, so the recurrent state is carried across them and ``Monitor`` logs
    meta-episode returns.

    Observation (a ``Dict``):

    ============  ==========================================================================================
    key           meaning
    ============  ==========================================================================================
    obs           the inner environment's observation
    prev_action   the previous action (one-hot for ``Discrete``), zeros at the start of the meta-episode
    prev_reward   the previous reward, shape (1,), 0 at the start of the meta-episode
    episode_done  shape (1,): 1.0 on the first step of inner episodes 2..k, else 0.0
    task          only with ``expose_task=True``: the task descriptor (a training target, not a policy input)
    ============  ==========================================================================================

    At an inner-episode boundary the inner env is reset with the same task and the returned observation is the
    new episode's first observation, carrying ``prev_action``/``prev_reward`` of the step that ended the episode.
    The step's reward is that last step's reward, so every reward is seen once. An inner ``terminated`` (a fall)
    ends that inner episode only. The meta-episode ends with ``terminated=True`` after the k-th inner episode:
    the meta-RL objective is the finite sum over the meta-episode, so there is nothing to bootstrap beyond it.
    If the inner env has no time limit of its own, ``max_episode_steps`` adds one; without either, the wrapper warns
    once if an inner episode passes :data:`LONG_INNER_EPISODE` steps (an env that ends its own episodes is fine).

    ``info`` on the last step carries ``inner_returns`` and ``inner_lengths`` (lists of length k), the
    ``task_descriptor``, Monitor's ``episode`` entry for the meta-episode (an inner ``Monitor``'s entries are
    removed, so SB3 only ever logs meta-episodes), and
    ``inner_successes`` when the inner env reports ``info["success"]`` (an episode succeeds if any step does), and
    ``inner_statistics`` (a list of dicts) when the inner env reports ``info["episode_statistics"]`` on the last
    step of its episodes.
    Every step's ``info`` has ``inner_episode`` (0-based index of the inner episode the step belongs to); the last
    step of an inner episode that is not the last has ``inner_terminal_observation``, the inner env's final
    observation, which the agent never sees (reconstruction-based inference decodes it).

    Seeding: ``reset(seed=s)`` spawns two independent streams from ``np.random.SeedSequence(s)``, one for the
    wrapper's task generator (passed to ``sample_task``) and one that seeds the inner env (``reset(seed=...)`` with
    an integer drawn from it). The same ``s`` gives the same tasks and trajectories, and the numbers that pick the
    task are never the numbers the env draws itself (seeding both with ``s`` would make them the same PCG64
    stream: a bandit's arm probabilities would equal its next reward draws). ``reset()`` without a seed continues
    both streams. ``reset(options={"task": task})`` runs a given task instead of a sampled one.

    :param env: environment implementing :class:`TaskDistribution`
    :param n_episodes: number of inner episodes k per meta-episode
    :param expose_task: add the task descriptor to the observation under ``task``
    :param max_episode_steps: time limit of each inner episode, for inner envs that have none
    """

    def __init__(
        self,
        env: gym.Env,
        n_episodes: int = 1,
        expose_task: bool = False,
        max_episode_steps: int | None = None,
    ):
        if n_episodes < 1:
            raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
        self.task_env = check_task_distribution(env)
        if max_episode_steps is not None:
            env = gym.wrappers.TimeLimit(env, max_episode_steps)
        # Many task envs end their own episodes; an env without a time limit is warned about only once one of its
        # inner episodes runs unusually long (step()).
        self._time_limited = _has_time_limit(env)
        self._warned_long_episode = False
        super().__init__(env)
        self.n_episodes = int(n_episodes)
        self.expose_task = bool(expose_task)

        action_space = env.action_space
        if isinstance(action_space, spaces.Discrete):
            self._n_actions = int(action_space.n)
            self._action_start = int(action_space.start)
            prev_action_space = spaces.Box(0.0, 1.0, (self._n_actions,), np.float32)
        elif isinstance(action_space, spaces.Box):
            self._n_actions = 0
            prev_action_space = spaces.Box(action_space.low, action_space.high, action_space.shape, np.float32)
        else:
            raise TypeError(
                f"MetaEpisodeWrapper supports Discrete and Box action spaces, got {type(action_space).__name__}"
            )
        obs_spaces: dict[str, spaces.Space] = OrderedDict(
            obs=env.observation_space,
            prev_action=prev_action_space,
            prev_reward=spaces.Box(-np.inf, np.inf, (1,), np.float32),
            episode_done=spaces.Box(0.0, 1.0, (1,), np.float32),
        )
        if self.expose_task:
            obs_spaces[TASK_KEY] = self.task_env.task_space
        self.observation_space = spaces.Dict(obs_spaces)

        self._created = time.time()
        self._task_rng = np.random.default_rng()
        self._task: Any = None
        self._episode_index = 0
        self._returns: list[float] = []
        self._lengths: list[int] = []
        self._successes: list[float | None] = []
        self._statistics: list[dict[str, float] | None] = []
        self._episode_return = 0.0
        self._episode_length = 0
        self._episode_success: float | None = None

    @property
    def task(self) -> Any:
        """The task of the current meta-episode."""
        return self._task

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start a meta-episode: sample (or take ``options["task"]``) a task and reset the inner env.

        ``seed`` seeds the task generator and the inner env with independent streams (see the class docstring).
        """
        env_seed = None
        if seed is not None:
            # gymnasium seeds an env's np_random with PCG64(SeedSequence(seed)): reusing `seed` for the tasks would
            # replay the env's own random numbers as the task, so the two get sibling streams instead.
            task_seq, env_seq = np.random.SeedSequence(seed).spawn(2)
            self._task_rng = np.random.default_rng(task_seq)
            env_seed = int(env_seq.generate_state(1)[0])  # 32 bits: what any env's seeding accepts
        options = dict(options or {})
        task = options.pop(TASK_KEY, None)
        self._task = self.task_env.sample_task(self._task_rng) if task is None else task
        self.task_env.set_task(self._task)
        obs, info = self.env.reset(seed=env_seed, options=options or None)
        self._episode_index = 0
        self._returns, self._lengths, self._successes, self._statistics = [], [], [], []
        self._start_inner_episode()
        info = dict(info, inner_episode=0)
        return self._observation(obs, self._zero_action(), 0.0, False), info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], SupportsFloat, bool, bool, dict[str, Any]]:
        """Step the inner env; reset it in place at inner boundaries and end after the k-th inner episode."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        reward = float(reward)
        if not np.isfinite(reward):
            raise ValueError(
                f"{type(self.task_env).__name__} returned a non-finite reward ({reward}) at step "
                f"{self._episode_length} of inner episode {self._episode_index} (task {self._task!r})."
            )
        self._episode_return += reward
        self._episode_length += 1
        if "success" in info:
            self._episode_success = max(self._episode_success or 0.0, float(info["success"]))
        info = dict(info, inner_episode=self._episode_index)
        # A Monitor inside this wrapper reports inner episodes; SB3 must only see meta-episodes (set below).
        info.pop("episode", None)
        prev_action = self._encode_action(action)

        meta_done = False
        episode_done = terminated or truncated
        if self._episode_length >= LONG_INNER_EPISODE and not (episode_done or self._time_limited):
            self._warn_long_episode()
        if episode_done:
            self._returns.append(self._episode_return)
            self._lengths.append(self._episode_length)
            self._successes.append(self._episode_success)
            self._statistics.append(info.get(EPISODE_STATISTICS_KEY))
            self._episode_index += 1
            if self._episode_index >= self.n_episodes:
                meta_done = True
                info["inner_returns"] = list(self._returns)
                info["inner_lengths"] = list(self._lengths)
                info["task_descriptor"] = np.asarray(self.task_env.task_descriptor())
                # What Monitor reports; a Monitor outside this wrapper overwrites it with the same numbers.
                info["episode"] = {
                    "r": float(sum(self._returns)),
                    "l": int(sum(self._lengths)),
                    "t": round(time.time() - self._created, 6),
                }
                if any(success is not None for success in self._successes):
                    # An episode in which the env never reported success did not succeed.
                    info["inner_successes"] = [success or 0.0 for success in self._successes]
                if all(statistics is not None for statistics in self._statistics):
                    info["inner_statistics"] = list(self._statistics)
            else:
                # Same task, next inner episode: the agent sees its first observation together with the last
                # step's action and reward.
                info[INNER_TERMINAL_KEY] = obs
                obs, _ = self.env.reset()
                self._start_inner_episode()
        return (
            self._observation(obs, prev_action, reward, episode_done and not meta_done),
            reward,
            meta_done,
            False,
            info,
        )

    def reference_returns(self) -> tuple[str, list[float]] | None:
        """The benchmark's known reference for each inner episode, as ``(label, returns)`` (e.g. ``("optimal",
        [13.7, 13.7])`` on MC-LS), from the task env's ``reference_returns(n_episodes)``; ``None`` if it has none."""
        known = getattr(self.task_env, "reference_returns", None)
        return None if known is None else known(self.n_episodes)

    def _warn_long_episode(self) -> None:
        if self._warned_long_episode:
            return
        self._warned_long_episode = True
        warnings.warn(
            f"MetaEpisodeWrapper: inner episode {self._episode_index} of {type(self.task_env).__name__} has run "
            f"{self._episode_length} steps without terminating or truncating, and no time limit was found (no "
            "TimeLimit wrapper, no spec.max_episode_steps, no max_episode_steps argument): if the env never ends its "
            "episodes, the meta-episode never ends either. Pass max_episode_steps, or make the env with gym.make and "
            "max_episode_steps.",
            stacklevel=3,
        )

    def _start_inner_episode(self) -> None:
        self._episode_return = 0.0
        self._episode_length = 0
        self._episode_success = None

    def _zero_action(self) -> np.ndarray:
        space = self.observation_space["prev_action"]
        return np.clip(np.zeros(space.shape, np.float32), space.low, space.high)

    def _encode_action(self, action: Any) -> np.ndarray:
        if self._n_actions:
            one_hot = np.zeros(self._n_actions, np.float32)
            one_hot[int(np.asarray(action).reshape(())) - self._action_start] = 1.0
            return one_hot
        space = self.observation_space["prev_action"]
        return np.clip(np.asarray(action, np.float32).reshape(space.shape), space.low, space.high)

    def _observation(
        self, obs: Any, prev_action: np.ndarray, prev_reward: float, episode_done: bool
    ) -> dict[str, np.ndarray]:
        out = OrderedDict(
            obs=obs,
            prev_action=prev_action,
            prev_reward=np.array([prev_reward], np.float32),
            episode_done=np.array([float(episode_done)], np.float32),
        )
        if self.expose_task:
            out[TASK_KEY] = np.asarray(self.task_env.task_descriptor(), self.task_env.task_space.dtype)
        return out


#: Steps of an inner episode, without a time limit, after which MetaEpisodeWrapper warns that it may never end.
LONG_INNER_EPISODE = 10_000


def _has_time_limit(env: gym.Env) -> bool:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return True
        env = env.env
    return getattr(env.spec, "max_episode_steps", None) is not None


def make_meta_env(
    task_env_id: str,
    n_episodes: int,
    expose_task: bool = False,
    render_mode: str | None = None,
    **task_env_kwargs: Any,
) -> MetaEpisodeWrapper:
    """Entry point of registered meta-episode ids: ``gym.make(task_env_id)`` wrapped in :class:`MetaEpisodeWrapper`.

    Keyword arguments other than ``n_episodes`` and ``expose_task`` go to the task env, so
    ``gym.make("GridNavi-v0", dense=True)`` reaches ``GridNavi(dense=True)``.
    """
    # The outer gym.make checks the meta env; checking the inner one too would only cost time per step.
    inner = gym.make(task_env_id, render_mode=render_mode, disable_env_checker=True, **task_env_kwargs)
    return MetaEpisodeWrapper(inner, n_episodes=n_episodes, expose_task=expose_task)
