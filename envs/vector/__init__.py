"""Array-stepped meta-episode VecEnvs (:class:`sb3_hypernet.common.array_vec_env.ArrayMetaEpisodeVecEnv`), one per
task family that has one, registered for SB3's and rl_zoo3's env construction:

    make_vec_env("GridNavi-v0", n_envs=1024, seed=0, vec_env_cls=array_vec_env)
    make_array_vec_env("GridNaviDense-v0", n_envs=1024, seed=0)
"""

from __future__ import annotations

from envs.vector.gridworld import GridNaviVecEnv
from envs.vector.mc_ls import LongShortMemoryVecEnv
from sb3_hypernet.common.array_vec_env import ARRAY_FAMILIES, array_vec_env, make_array_vec_env, register_array_family

register_array_family("envs.gridworld:GridNavi", GridNaviVecEnv)
register_array_family("envs.mc_ls:LongShortMemoryMaze", LongShortMemoryVecEnv)

__all__ = ["ARRAY_FAMILIES", "GridNaviVecEnv", "LongShortMemoryVecEnv", "array_vec_env", "make_array_vec_env"]
