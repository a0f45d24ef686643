"""Array-stepped meta-episode VecEnvs (:class:`sb3_hypernet.array_vec_env.ArrayMetaEpisodeVecEnv`), one per task family
that has one, and the way in from SB3's and rl_zoo3's env construction:

    make_vec_env("GridNavi-v0", n_envs=1024, seed=0, vec_env_cls=array_vec_env)
    make_array_vec_env("GridNaviDense-v0", n_envs=1024, seed=0)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym

from envs.vector.gridworld import GridNaviVecEnv
from envs.vector.mc_ls import LongShortMemoryVecEnv
from sb3_hypernet.array_vec_env import ArrayMetaEpisodeVecEnv

#: Task env entry point -> its array-stepped meta-episode VecEnv.
ARRAY_FAMILIES: dict[str, type[ArrayMetaEpisodeVecEnv]] = {
    "envs.gridworld:GridNavi": GridNaviVecEnv,
    "envs.mc_ls:LongShortMemoryMaze": LongShortMemoryVecEnv,
}


def make_array_vec_env(
    env_id: str, n_envs: int, seed: int | None = None, env_kwargs: dict[str, Any] | None = None
) -> ArrayMetaEpisodeVecEnv:
    """The array-stepped VecEnv of a registered meta-episode id (``ValueError`` if its family has none), with the
    id's registered settings and ``env_kwargs`` as ``gym.make(env_id, **env_kwargs)`` would apply them."""
    meta_spec = gym.spec(env_id)
    kwargs = {**meta_spec.kwargs, **(env_kwargs or {})}
    task_env_id = kwargs.pop("task_env_id", None)
    if task_env_id is None:
        raise ValueError(f"{env_id} is not a meta-episode id (registered with sb3_hypernet.wrappers:make_meta_env)")
    n_episodes = kwargs.pop("n_episodes")
    expose_task = kwargs.pop("expose_task", False)
    kwargs.pop("render_mode", None)
    task_spec = gym.spec(task_env_id)
    family = ARRAY_FAMILIES.get(str(task_spec.entry_point))
    if family is None:
        known = ", ".join(sorted(ARRAY_FAMILIES))
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
