"""Array-stepped meta-episode VecEnvs: N envs of one task family stepped as arrays in one call.

:class:`MetaEpisodeWrapper` steps one env at a time in Python; at hundreds or thousands of envs (a GPU's batch) that
per-env stepping becomes the bottleneck. :class:`ArrayMetaEpisodeVecEnv` is SB3's ``VecEnv`` with the wrapper's
meta-episode logic on arrays (a task per env, inner episodes, previous action and reward, ``episode_done``,
auto-reset with ``terminal_observation``, the inner returns in ``info`` at each meta-episode's end, seeding); a task
family supplies its dynamics on arrays (``envs/vector/``). Given the same seeds (or tasks) and actions it is the same
MDP, observation for observation, as ``DummyVecEnv`` over the family's registered meta-episode id (tested step by step).
"""

from __future__ import annotations

import abc
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from sb3_hypernet.common.task import EPISODE_STATISTICS_KEY, INNER_TERMINAL_KEY, TASK_KEY


class ArrayMetaEpisodeVecEnv(VecEnv, abc.ABC):
    """``num_envs`` meta-episode envs of one task family, stepped as arrays (see the module docstring).

    Subclasses give the family's dynamics on arrays: :meth:`_sample_task` (one env's task from its generator, exactly
    as the single env's ``sample_task`` so that the same seed gives the same tasks), :meth:`_set_tasks`,
    :meth:`_reset_inner` (start inner episodes of the envs in a mask), :meth:`_step_inner` (rewards, inner ends and
    per-env info entries for an action array), :meth:`_observe` and :meth:`_task_descriptors`. The meta-episode
    logic here follows :class:`~sb3_hypernet.MetaEpisodeWrapper` and ``Monitor`` line by line: ``info`` on every step
    has ``inner_episode``; at an inner end that is not the last, ``inner_terminal_observation``; at a meta-episode's
    end ``inner_returns``, ``inner_lengths``, ``task_descriptor``, ``episode`` (Monitor's ``r``, ``l``, ``t``) and
    ``terminal_observation`` (and ``inner_successes`` / ``inner_statistics`` where the family reports ``success`` /
    ``episode_statistics``), after which the env starts its next meta-episode on a new task. :meth:`_observe` may be
    called several times per step and must return the same observation each time (families with observation noise
    draw it once per step).

    Seeding as ``DummyVecEnv``: ``seed(s)`` gives env ``i`` the seed ``s + i`` at the next reset, which, as
    ``MetaEpisodeWrapper.reset(seed=s + i)``, seeds its task generator with the first of two streams spawned from
    ``SeedSequence(s + i)``. ``set_options({"task": ...})`` (or a list, one per env) runs given tasks at the next reset.

    :param num_envs: number of envs
    :param obs_space: the inner observation space
    :param n_actions: the number of discrete actions (previous actions are one-hot)
    :param task_space: the task descriptor's space
    :param n_episodes: inner episodes per meta-episode
    :param expose_task: add the task descriptor to the observation under ``task``
    """

    #: What the single env's ``reset`` puts in ``info`` (the wrapper adds ``inner_episode``).
    reset_info: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        num_envs: int,
        obs_space: spaces.Box,
        n_actions: int,
        task_space: spaces.Box,
        n_episodes: int,
        expose_task: bool = False,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if n_episodes < 1:
            raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
        self.n_episodes = int(n_episodes)
        self.expose_task = bool(expose_task)
        self.n_actions = int(n_actions)
        self.task_space = task_space
        observation = OrderedDict(
            obs=obs_space,
            prev_action=spaces.Box(0.0, 1.0, (self.n_actions,), np.float32),
            prev_reward=spaces.Box(-np.inf, np.inf, (1,), np.float32),
            episode_done=spaces.Box(0.0, 1.0, (1,), np.float32),
        )
        if self.expose_task:
            observation[TASK_KEY] = task_space
        self.render_mode = None
        super().__init__(int(num_envs), spaces.Dict(observation), spaces.Discrete(self.n_actions))
        n = self.num_envs
        self._task_rngs = [np.random.default_rng() for _ in range(n)]
        self.tasks: list[Any] = [None] * n
        self._episode_index = np.zeros(n, np.int64)
        self._episode_return = np.zeros(n, np.float64)
        self._episode_length = np.zeros(n, np.int64)
        self._returns = np.zeros((n, self.n_episodes), np.float64)
        self._lengths = np.zeros((n, self.n_episodes), np.int64)
        # As the wrapper: an inner episode succeeds if any step reports success (NaN: it reported none).
        self._episode_success = np.full(n, np.nan)
        self._successes = np.full((n, self.n_episodes), np.nan)
        self._statistics: list[list[dict[str, float] | None]] = [[None] * self.n_episodes for _ in range(n)]
        self._prev_action = np.zeros((n, self.n_actions), np.float32)
        self._prev_reward = np.zeros((n, 1), np.float32)
        self._episode_done = np.zeros((n, 1), np.float32)
        self._actions = np.zeros(n, np.int64)
        self._started = time.time()

    # -- what a task family provides ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _sample_task(self, rng: np.random.Generator) -> Any:
        """One env's task drawn from ``rng``, as the single env's ``sample_task(rng)`` draws it."""

    @abc.abstractmethod
    def _set_tasks(self, indices: np.ndarray, tasks: Sequence[Any]) -> None:
        """Make ``tasks`` the tasks of the envs ``indices`` (``ValueError`` for an invalid one)."""

    @abc.abstractmethod
    def _reset_inner(self, mask: np.ndarray) -> None:
        """Start a new inner episode in the envs where ``mask`` is set."""

    @abc.abstractmethod
    def _step_inner(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]] | None]:
        """Step every env: (rewards, inner episode ended, per-env info entries or None)."""

    @abc.abstractmethod
    def _observe(self) -> np.ndarray:
        """The inner observations of all envs, of shape ``(num_envs, *obs_shape)``."""

    @abc.abstractmethod
    def _task_descriptors(self) -> np.ndarray:
        """The task descriptors of all envs, of shape ``(num_envs, *task_shape)``."""

    def _seed_inner(self, index: int, seed: int) -> None:
        """Seed env ``index``'s own randomness as ``env.reset(seed=seed)`` would (default: it has none)."""

    def reference_returns(self) -> tuple[str, list[float]] | None:
        """The benchmark's known reference per inner episode, as ``MetaEpisodeWrapper.reference_returns``."""
        return None

    # -- VecEnv ----------------------------------------------------------------------------------------------
    def reset(self) -> VecEnvObs:
        everyone = np.ones(self.num_envs, dtype=bool)
        for i, seed in enumerate(self._seeds):
            if seed is not None:
                # As MetaEpisodeWrapper.reset(seed=seed): sibling streams for the tasks and for the inner env.
                task_seq, env_seq = np.random.SeedSequence(seed).spawn(2)
                self._task_rngs[i] = np.random.default_rng(task_seq)
                self._seed_inner(i, int(env_seq.generate_state(1)[0]))
        self._start_meta_episodes(everyone, [options.get(TASK_KEY) for options in self._options])
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = [{**self.reset_info, "inner_episode": 0} for _ in range(self.num_envs)]
        return self._observation()

    def step_async(self, actions: np.ndarray) -> None:
        actions = np.asarray(actions).reshape(self.num_envs)
        if not np.issubdtype(actions.dtype, np.integer):
            if not np.all(np.equal(np.mod(actions, 1), 0)):
                raise ValueError(f"{type(self).__name__}: actions must be integers in [0, {self.n_actions})")
            actions = actions.astype(np.int64)
        if actions.min() < 0 or actions.max() >= self.n_actions:
            raise ValueError(f"{type(self).__name__}: actions must be integers in [0, {self.n_actions}), got {actions}")
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        actions = self._actions
        rewards, inner_done, inner_infos = self._step_inner(actions)
        if not np.all(np.isfinite(rewards)):
            raise ValueError(f"{type(self).__name__} produced non-finite rewards: {rewards}")
        self._episode_return += rewards
        self._episode_length += 1
        infos: list[dict[str, Any]] = inner_infos or [{} for _ in range(self.num_envs)]  # one dict per env: in place
        for info, episode in zip(infos, self._episode_index.tolist(), strict=True):
            info["inner_episode"] = episode
            # A meta-episode ends by termination, never by truncation (nothing to bootstrap), as DummyVecEnv says.
            info["TimeLimit.truncated"] = False
        self._prev_action = np.zeros((self.num_envs, self.n_actions), np.float32)
        self._prev_action[np.arange(self.num_envs), actions] = 1.0
        self._prev_reward = rewards.astype(np.float32).reshape(-1, 1)

        if inner_infos:
            for i, info in enumerate(inner_infos):
                if "success" in info:
                    self._episode_success[i] = max(np.nan_to_num(self._episode_success[i]), float(info["success"]))
        ended = np.flatnonzero(inner_done)
        self._returns[ended, self._episode_index[ended]] = self._episode_return[ended]
        self._lengths[ended, self._episode_index[ended]] = self._episode_length[ended]
        self._successes[ended, self._episode_index[ended]] = self._episode_success[ended]
        for i in ended:
            statistics = inner_infos[i].get(EPISODE_STATISTICS_KEY) if inner_infos else None
            self._statistics[i][self._episode_index[i]] = statistics
        self._episode_index[ended] += 1
        meta_done = np.zeros(self.num_envs, dtype=bool)
        meta_done[ended] = self._episode_index[ended] >= self.n_episodes
        inner_only = inner_done & ~meta_done
        if inner_only.any():
            terminal = self._observe()
            for i in np.flatnonzero(inner_only):
                infos[i][INNER_TERMINAL_KEY] = terminal[i].copy()
            self._reset_inner(inner_only)
            self._episode_return[inner_only] = 0.0
            self._episode_length[inner_only] = 0
            self._episode_success[inner_only] = np.nan
        self._episode_done = inner_only.astype(np.float32).reshape(-1, 1)
        if meta_done.any():
            # The observation that ends the meta-episode; the env then starts its next one (auto-reset).
            final = self._observation()
            descriptors = self._task_descriptors()
            elapsed = round(time.time() - self._started, 6)
            for i in np.flatnonzero(meta_done):
                returns = [float(value) for value in self._returns[i]]
                lengths = [int(value) for value in self._lengths[i]]
                infos[i].update(
                    inner_returns=returns,
                    inner_lengths=lengths,
                    task_descriptor=np.asarray(descriptors[i]),
                    episode={"r": round(sum(returns), 6), "l": sum(lengths), "t": elapsed},
                    terminal_observation={key: value[i] for key, value in final.items()},
                )
                successes = self._successes[i]
                if not np.isnan(successes).all():
                    infos[i]["inner_successes"] = [float(value) for value in np.nan_to_num(successes)]
                if all(statistics is not None for statistics in self._statistics[i]):
                    infos[i]["inner_statistics"] = list(self._statistics[i])
            self._start_meta_episodes(meta_done, [None] * self.num_envs)
            for i in np.flatnonzero(meta_done):
                self.reset_infos[i] = {**self.reset_info, "inner_episode": 0}
        return self._observation(), rewards.astype(np.float32), meta_done, infos

    def _start_meta_episodes(self, mask: np.ndarray, given: list[Any]) -> None:
        indices = np.flatnonzero(mask)
        tasks = [given[i] if given[i] is not None else self._sample_task(self._task_rngs[i]) for i in indices]
        self._set_tasks(indices, tasks)
        for i, task in zip(indices, tasks, strict=True):
            self.tasks[i] = task
        self._reset_inner(mask)
        self._episode_index[mask] = 0
        self._episode_return[mask] = 0.0
        self._episode_length[mask] = 0
        self._returns[mask] = 0.0
        self._lengths[mask] = 0
        self._episode_success[mask] = np.nan
        self._successes[mask] = np.nan
        for i in indices:
            self._statistics[i] = [None] * self.n_episodes
        self._prev_action[mask] = 0.0
        self._prev_reward[mask] = 0.0
        self._episode_done[mask] = 0.0

    def _observation(self) -> OrderedDict[str, np.ndarray]:
        out = OrderedDict(
            obs=self._observe(),
            prev_action=self._prev_action.copy(),
            prev_reward=self._prev_reward.copy(),
            episode_done=self._episode_done.copy(),
        )
        if self.expose_task:
            out[TASK_KEY] = self._task_descriptors().astype(self.task_space.dtype)
        return out

    def close(self) -> None:
        pass

    def _indices(self, indices: int | Sequence[int] | None) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        return [indices] if isinstance(indices, int) else list(indices)

    def get_attr(self, attr_name: str, indices: int | Sequence[int] | None = None) -> list[Any]:
        """The attribute of this VecEnv, once per index (the envs share it)."""
        return [getattr(self, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: int | Sequence[int] | None = None) -> None:
        """Set an attribute of this VecEnv (the envs share it)."""
        setattr(self, attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: int | Sequence[int] | None = None, **method_kwargs: Any
    ) -> list[Any]:
        """Call a method of this VecEnv once per index (``reference_returns`` for evaluators)."""
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: int | Sequence[int] | None = None) -> list[bool]:
        return [False for _ in self._indices(indices)]


#: Task env entry point (``"module:Class"``) -> its array-stepped meta-episode VecEnv; filled by
#: :func:`register_array_family` (the benchmarks' families register themselves when ``envs`` is imported).
ARRAY_FAMILIES: dict[str, type[ArrayMetaEpisodeVecEnv]] = {}


def register_array_family(entry_point: str, vec_env_class: type[ArrayMetaEpisodeVecEnv]) -> None:
    """Make ``vec_env_class`` the array-stepped VecEnv of the task envs registered with ``entry_point``
    (``"module:Class"``, as in ``gymnasium.register``), for :func:`make_array_vec_env` and ``--vec-env array``."""
    if not (isinstance(vec_env_class, type) and issubclass(vec_env_class, ArrayMetaEpisodeVecEnv)):
        raise TypeError(f"{vec_env_class!r} is not an ArrayMetaEpisodeVecEnv subclass")
    ARRAY_FAMILIES[entry_point] = vec_env_class


def make_array_vec_env(
    env_id: str, n_envs: int, seed: int | None = None, env_kwargs: dict[str, Any] | None = None
) -> ArrayMetaEpisodeVecEnv:
    """The array-stepped VecEnv of a registered meta-episode id (``ValueError`` if its family has none), with the
    id's registered settings and ``env_kwargs`` as ``gym.make(env_id, **env_kwargs)`` would apply them."""
    meta_spec = gym.spec(env_id)
    kwargs = {**meta_spec.kwargs, **(env_kwargs or {})}
    task_env_id = kwargs.pop("task_env_id", None)
    if task_env_id is None:
        raise ValueError(
            f"{env_id} is not a meta-episode id (registered with sb3_hypernet.common.meta_episode:make_meta_env)"
        )
    n_episodes = kwargs.pop("n_episodes")
    expose_task = kwargs.pop("expose_task", False)
    kwargs.pop("render_mode", None)
    task_spec = gym.spec(task_env_id)
    family = ARRAY_FAMILIES.get(str(task_spec.entry_point))
    if family is None:
        known = ", ".join(sorted(ARRAY_FAMILIES)) or "none registered (import envs to register the benchmarks' own)"
        raise ValueError(
            f"{env_id} has no array-stepped VecEnv (task env {task_spec.entry_point}); families with one: {known}"
        )
    vec_env = family(
        n_envs,
        n_episodes=n_episodes,
        max_episode_steps=task_spec.max_episode_steps,
        expose_task=expose_task,
        **{**task_spec.kwargs, **kwargs},
    )
    if seed is not None:
        vec_env.seed(seed)
    return vec_env


def array_vec_env(env_fns: list[Callable[[], gym.Env]], **_: Any) -> ArrayMetaEpisodeVecEnv:
    """A ``vec_env_cls`` for ``make_vec_env`` (and rl_zoo3, whose envs it builds that way): reads the meta-episode id
    and keyword arguments from one env made by ``env_fns[0]``, then steps all ``len(env_fns)`` as arrays. Monitor files
    are not written (the envs are not made one by one); the ``episode`` entries in ``info`` are Monitor's."""
    probe = env_fns[0]()
    try:
        spec = probe.spec
        meta_spec = gym.spec(spec.id)
        env_kwargs = {key: value for key, value in spec.kwargs.items() if meta_spec.kwargs.get(key, object()) != value}
    finally:
        probe.close()
    return make_array_vec_env(spec.id, len(env_fns), env_kwargs=env_kwargs)
