"""MAML's evaluation (Finn et al. 2017, section 5.3; ICML 2021 Fig. 6c): returns on test tasks before adaptation and
after each of k inner steps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.vec_env import VecEnv

from sb3_hypernet.common.evaluation import MetaEvaluation, as_vec_env
from sb3_hypernet.common.task import check_task_env
from sb3_hypernet.maml.adaptation import parameters_of
from sb3_hypernet.maml.maml import MAML


def stage_labels(n_inner_steps: int) -> list[str]:
    """``["pre-adaptation", "after 1 step", "after 2 steps", ...]``."""
    return ["pre-adaptation", *(f"after {k} step{'s' if k > 1 else ''}" for k in range(1, n_inner_steps + 1))]


def evaluate_maml(
    model: MAML,
    env: str | gym.Env | VecEnv | None = None,
    tasks: Sequence[Any] | None = None,
    n_inner_steps: int = 1,
    n_envs: int | None = None,
    seed: int | None = 0,
) -> MetaEvaluation:
    """On each task: the mean return of a batch of episodes (one per env) with the meta-learned parameters, then after
    each of ``n_inner_steps`` inner steps, each on the previous stage's episodes (first order: evaluation needs no
    meta-gradient). Actions are sampled, as MAML's: the policy-gradient step learns nothing from mean actions.

    :param model: a trained :class:`~sb3_hypernet.MAML`
    :param env: a task env (id, env or VecEnv); default: the model's
    :param tasks: the tasks (default: the model's test tasks, or its train tasks when it has none)
    :param n_inner_steps: inner steps after the pre-adaptation stage
    :param n_envs: episodes per stage when ``env`` is an id (default: the model's env's count)
    :param seed: seeds the env and torch's generator; ``None`` leaves them as they are
    :return: one row per task, one column per stage (labelled), as a :class:`~sb3_hypernet.MetaEvaluation`
    """
    if n_inner_steps < 0:
        raise ValueError(f"n_inner_steps must be >= 0, got {n_inner_steps}")
    if env is not None:
        env = as_vec_env(env, n_envs or (model.get_env().num_envs if model.get_env() is not None else 20))
    env = env or model.get_env()
    if env is None:
        raise ValueError("evaluate_maml needs an env: the model has none")
    check_task_env(env)
    tasks = list(tasks if tasks is not None else (model.test_tasks or model.train_tasks))
    if not tasks:
        raise ValueError("no tasks to evaluate on")
    if seed is not None:
        env.seed(seed)
        th.manual_seed(seed)
    returns = np.zeros((len(tasks), n_inner_steps + 1))
    for row, task in enumerate(tasks):
        params = {name: value.detach() for name, value in parameters_of(model.policy).items()}
        for stage in range(n_inner_steps + 1):
            episodes = model.sample_episodes(env, task, params, training=False)
            returns[row, stage] = float(episodes.episode_returns.mean())
            if stage < n_inner_steps:
                params = {name: value.requires_grad_(True) for name, value in params.items()}
                adapted = model.adapt(episodes, model.advantages(episodes), params, first_order=True)
                params = {name: value.detach() for name, value in adapted.items()}
    return MetaEvaluation(returns, tasks=tasks, inner_labels=stage_labels(n_inner_steps))
