"""Meta-RL benchmark environments, registered with gymnasium (``--gym-packages envs`` for rl_zoo3).

Each benchmark is registered twice: ``<Name>Task-v0`` is the raw single-task environment (it implements
:class:`sb3_hypernet.TaskDistribution`; its task changes only through ``set_task``), and ``<Name>-v0`` is the
meta-episode environment (:class:`sb3_hypernet.MetaEpisodeWrapper` around it, a new task every meta-episode).
"""

from importlib.util import find_spec

from gymnasium.envs.registration import register

_META = "sb3_hypernet.common.meta_episode:make_meta_env"

# Grid-Worlds: 15-step episodes, 4 episodes per meta-episode (NeurIPS 2023 section 4.1).
register(id="GridNaviTask-v0", entry_point="envs.gridworld:GridNavi", max_episode_steps=15)
register(
    id="GridNaviShowTask-v0", entry_point="envs.gridworld:GridNavi", max_episode_steps=15, kwargs={"show_goal": True}
)
register(id="GridNaviDenseTask-v0", entry_point="envs.gridworld:GridNavi", max_episode_steps=15, kwargs={"dense": True})
register(id="GridNavi-v0", entry_point=_META, kwargs={"task_env_id": "GridNaviTask-v0", "n_episodes": 4})
register(id="GridNaviShow-v0", entry_point=_META, kwargs={"task_env_id": "GridNaviShowTask-v0", "n_episodes": 4})
register(id="GridNaviDense-v0", entry_point=_META, kwargs={"task_env_id": "GridNaviDenseTask-v0", "n_episodes": 4})

# 2-D point robot (PEARL's and VariBAD's; ICML 2021's PEARL on a CPU budget): 20-step episodes, goals on the upper
# unit half circle, sparse reward within 0.2 of the goal (and a dense variant); 3 episodes per meta-episode (PEARL's
# evaluation: the return of each of 3 trajectories as the posterior sharpens).
register(id="PointRobotTask-v0", entry_point="envs.point_robot:PointRobot", max_episode_steps=20)
register(id="PointRobotDenseTask-v0", entry_point="envs.point_robot:PointRobot", max_episode_steps=20,
         kwargs={"dense": True})  # fmt: skip
register(id="PointRobot-v0", entry_point=_META, kwargs={"task_env_id": "PointRobotTask-v0", "n_episodes": 3})
register(id="PointRobotDense-v0", entry_point=_META, kwargs={"task_env_id": "PointRobotDenseTask-v0", "n_episodes": 3})
# MAML's 2-D navigation (Finn et al. 2017): goals in [-0.5, 0.5]^2, dense cost, 100-step episodes; 2 episodes per
# meta-episode (before and after adaptation).
register(id="Navigation2DTask-v0", entry_point="envs.point_robot:Navigation2D", max_episode_steps=100)
register(id="Navigation2D-v0", entry_point=_META, kwargs={"task_env_id": "Navigation2DTask-v0", "n_episodes": 2})

# MC-LS, the MineCraft long-short memory maze, and its variants (NeurIPS 2023 section 4.3): at most 200 steps per
# episode, 2 episodes per meta-episode with the same signal.
for _variant in ("LS", "LSN", "LSO", "LSH"):
    register(
        id=f"MC{_variant}Task-v0",
        entry_point="envs.mc_ls:LongShortMemoryMaze",
        max_episode_steps=200,
        kwargs={"variant": _variant},
    )
    register(id=f"MC{_variant}-v0", entry_point=_META, kwargs={"task_env_id": f"MC{_variant}Task-v0", "n_episodes": 2})

# MC-LS in real Minecraft, only where minerl is importable (it is not on the machines this package is tested on):
# gym.make("MCLSMineRLTask-v0", env_id=<a minerl env id with a chat action and a flat world>); see envs/mc_ls_minerl.py.
if find_spec("minerl") is not None:
    register(id="MCLSMineRLTask-v0", entry_point="envs.mc_ls_minerl:MineRLLongShortMemory", max_episode_steps=200)
    register(id="MCLSMineRL-v0", entry_point=_META, kwargs={"task_env_id": "MCLSMineRLTask-v0", "n_episodes": 2})

# MuJoCo families (need the `mujoco` extra): 200-step episodes; inner episodes per meta-episode as in the papers.
register(id="CheetahDirTask-v0", entry_point="envs.mujoco.cheetah:CheetahDir", max_episode_steps=200)
register(id="CheetahVelTask-v0", entry_point="envs.mujoco.cheetah:CheetahVel", max_episode_steps=200)
register(
    id="CheetahVelMediumTask-v0",
    entry_point="envs.mujoco.cheetah:CheetahVel",
    max_episode_steps=200,
    kwargs={"velocity_range": (0.0, 2.5), "test_velocity_range": (2.5, 3.0)},
)
register(id="AntDirTask-v0", entry_point="envs.mujoco.ant:AntDir", max_episode_steps=200)
register(
    id="AntDirFwdBackTask-v0",
    entry_point="envs.mujoco.ant:AntDir",
    max_episode_steps=200,
    kwargs={"directions": "forward_backward"},
)
register(
    id="AntDirUniformTask-v0",
    entry_point="envs.mujoco.ant:AntDir",
    max_episode_steps=200,
    kwargs={"directions": "uniform"},
)
register(id="AntVelTask-v0", entry_point="envs.mujoco.ant:AntVel", max_episode_steps=200)
register(id="WalkerRandParamsTask-v0", entry_point="envs.mujoco.walker:WalkerRandParams", max_episode_steps=200)
register(id="HumanoidDirTask-v0", entry_point="envs.mujoco.humanoid:HumanoidDir", max_episode_steps=200)
register(id="CheetahDir-v0", entry_point=_META, kwargs={"task_env_id": "CheetahDirTask-v0", "n_episodes": 1})
register(id="CheetahVel-v0", entry_point=_META, kwargs={"task_env_id": "CheetahVelTask-v0", "n_episodes": 1})
register(
    id="CheetahVelMedium-v0", entry_point=_META, kwargs={"task_env_id": "CheetahVelMediumTask-v0", "n_episodes": 1}
)
register(id="AntDir-v0", entry_point=_META, kwargs={"task_env_id": "AntDirTask-v0", "n_episodes": 1})
register(id="AntDirFwdBack-v0", entry_point=_META, kwargs={"task_env_id": "AntDirFwdBackTask-v0", "n_episodes": 1})
register(id="AntDirUniform-v0", entry_point=_META, kwargs={"task_env_id": "AntDirUniformTask-v0", "n_episodes": 1})
register(id="AntVel-v0", entry_point=_META, kwargs={"task_env_id": "AntVelTask-v0", "n_episodes": 1})
register(
    id="WalkerRandParams-v0", entry_point=_META, kwargs={"task_env_id": "WalkerRandParamsTask-v0", "n_episodes": 2}
)
register(id="HumanoidDir-v0", entry_point=_META, kwargs={"task_env_id": "HumanoidDirTask-v0", "n_episodes": 2})

# Meta-World (needs the `metaworld` extra): 500-step episodes, 2 per meta-episode in training (NeurIPS 2023
# appendix 8.4).
# split="test" selects the benchmark's test tasks; ML1-v0 takes any ML1 task as task_name.
_METAWORLD = "envs.metaworld:MetaWorldTasks"
register(id="ML1Task-v0", entry_point=_METAWORLD, max_episode_steps=500, kwargs={"benchmark_name": "ML1"})
register(id="ML1-v0", entry_point=_META, kwargs={"task_env_id": "ML1Task-v0", "n_episodes": 2})
for _name, _task in {"PickPlace": "pick-place-v3", "Push": "push-v3", "Reach": "reach-v3"}.items():
    register(
        id=f"ML1{_name}Task-v0",
        entry_point=_METAWORLD,
        max_episode_steps=500,
        kwargs={"benchmark_name": "ML1", "task_name": _task},
    )
    register(id=f"ML1{_name}-v0", entry_point=_META, kwargs={"task_env_id": f"ML1{_name}Task-v0", "n_episodes": 2})
register(id="ML10Task-v0", entry_point=_METAWORLD, max_episode_steps=500, kwargs={"benchmark_name": "ML10"})
register(id="ML10-v0", entry_point=_META, kwargs={"task_env_id": "ML10Task-v0", "n_episodes": 2})

# The array-stepped VecEnvs of the families above register themselves with the library.
import envs.vector  # noqa: E402, F401
