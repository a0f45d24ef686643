"""Meta-RL benchmark environments, registered with gymnasium (``--gym-packages envs`` for rl_zoo3).

Each benchmark is registered twice: ``<Name>Task-v0`` is the raw single-task environment (it implements
:class:`sb3_hypernet.TaskDistribution`; its task changes only through ``set_task``), and ``<Name>-v0`` is the
meta-episode environment (:class:`sb3_hypernet.MetaEpisodeWrapper` around it, a new task every meta-episode).
"""

from gymnasium.envs.registration import register

_META = "sb3_hypernet.wrappers:make_meta_env"

# Grid-Worlds: 15-step episodes, 4 episodes per meta-episode (SPEC 1, 5).
register(id="GridNaviTask-v0", entry_point="envs.gridworld:GridNavi", max_episode_steps=15)
register(
    id="GridNaviShowTask-v0", entry_point="envs.gridworld:GridNavi", max_episode_steps=15, kwargs={"show_goal": True}
)
register(id="GridNaviDenseTask-v0", entry_point="envs.gridworld:GridNavi", max_episode_steps=15, kwargs={"dense": True})
register(id="GridNavi-v0", entry_point=_META, kwargs={"task_env_id": "GridNaviTask-v0", "n_episodes": 4})
register(id="GridNaviShow-v0", entry_point=_META, kwargs={"task_env_id": "GridNaviShowTask-v0", "n_episodes": 4})
register(id="GridNaviDense-v0", entry_point=_META, kwargs={"task_env_id": "GridNaviDenseTask-v0", "n_episodes": 4})
