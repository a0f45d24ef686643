"""PEARL's evaluation protocol (Rakelly et al. 2019, section 6; the reference's ``collect_paths``): adaptation on
each test task from an online context, every episode's return reported."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from sb3_hypernet.common.evaluation import MetaEvaluation, as_vec_env
from sb3_hypernet.common.task import check_task_env
from sb3_hypernet.pearl.pearl import PEARL


def evaluate_pearl(
    model: PEARL,
    env: str | gym.Env | VecEnv | None = None,
    tasks: Sequence[Any] | None = None,
    n_episodes: int = 3,
    exploration_episodes: int = 1,
    deterministic: bool = True,
    seed: int | None = 0,
) -> MetaEvaluation:
    """Run PEARL's protocol on each task: the first ``exploration_episodes`` episodes with z drawn once from the
    prior, then, after each episode, z drawn from the posterior given every transition gathered on the task so far;
    the return of each of the ``n_episodes`` episodes is the adaptation curve.

    :param model: a trained :class:`~sb3_hypernet.PEARL`
    :param env: a task env (id, env or one-env VecEnv); default: the model's
    :param tasks: the tasks (default: the model's test tasks, or its train tasks when it has none)
    :param n_episodes: episodes per task
    :param exploration_episodes: episodes with z from the prior before the first posterior (the reference's
        ``num_exp_traj_eval``: 1, 2 on Cheetah-Vel)
    :param deterministic: the policy's mean actions (the reference's evaluation)
    :param seed: seeds the env and the latent samples; ``None`` leaves their generators as they are
    :return: the returns as a :class:`~sb3_hypernet.MetaEvaluation` (one row per task, one column per episode)
    """
    if n_episodes < 1 or not 0 <= exploration_episodes <= n_episodes:
        raise ValueError(
            f"n_episodes must be >= 1 and exploration_episodes in [0, n_episodes], got {n_episodes} and "
            f"{exploration_episodes}"
        )
    env = as_vec_env(env) if env is not None else model.get_env()
    if env is None:
        raise ValueError("evaluate_pearl needs an env: the model has none")
    check_task_env(env)
    if env.num_envs != 1:
        raise ValueError(f"evaluate_pearl runs one task at a time: give it one env, got {env.num_envs}")
    tasks = list(tasks if tasks is not None else (model.test_tasks or model.train_tasks))
    if not tasks:
        raise ValueError("no tasks to evaluate on")
    rng = model._rng
    if seed is not None:
        env.seed(seed)
        model._rng = np.random.default_rng(seed)
    returns = np.zeros((len(tasks), n_episodes))
    successes = np.zeros((len(tasks), n_episodes))
    reports_success = False
    try:
        for row, task in enumerate(tasks):
            env.env_method("set_task", task, indices=[0])
            context: list[np.ndarray] = []
            model.sample_latent(None)
            for episode in range(n_episodes):
                obs = env.reset()
                done = False
                while not done:
                    scaled = model.policy.scale_action(model.predict(obs, deterministic=deterministic)[0])
                    new_obs, rewards, dones, infos = env.step(model.policy.unscale_action(scaled))
                    done = bool(dones[0])
                    next_obs = infos[0]["terminal_observation"] if done else new_obs[0]
                    transition = {"observations": obs[0], "actions": scaled[0], "rewards": rewards[:1],
                                  "next_observations": next_obs}  # fmt: skip
                    context.append(model.task_context([transition])[0])
                    returns[row, episode] += float(rewards[0])
                    if "success" in infos[0]:
                        reports_success = True
                        successes[row, episode] = max(successes[row, episode], float(infos[0]["success"]))
                    obs = new_obs
                if episode + 1 >= exploration_episodes:
                    model.sample_latent(np.stack(context))
    finally:
        model._rng = rng
    reference = None
    if env.has_attr("reference_returns"):
        reference = env.env_method("reference_returns", n_episodes, indices=[0])[0]
    return MetaEvaluation(returns, successes if reports_success else None, tasks, reference=reference)
