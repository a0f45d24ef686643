"""MAML for RL (Finn et al. 2017) with a TRPO outer step, and its context and hypernetwork forms (Sarafian et al.,
ICML 2021, section 4), as an SB3 algorithm."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback
from stable_baselines3.common.vec_env import VecEnv
from torch.distributions import Normal, kl_divergence

from sb3_hypernet.common.task import check_task_env, draw_task_split
from sb3_hypernet.maml.adaptation import forward_with, inner_step, parameters_of
from sb3_hypernet.maml.baseline import LinearFeatureBaseline
from sb3_hypernet.maml.policies import (
    CONTEXT_KEY,
    OBS_KEY,
    ContextMAMLPolicy,
    HyperMAMLPolicy,
    MAMLPolicy,
    context_observation_space,
)
from sb3_hypernet.maml.trpo import trpo_step


@dataclass
class Episodes:
    """A batch of episodes of one task, time-major: ``(T, N, ...)`` for T steps of N episodes, ``mask`` 1 on the
    steps that exist."""

    observations: th.Tensor
    actions: th.Tensor
    rewards: th.Tensor
    mask: th.Tensor
    context: th.Tensor  # (N, context_dim)

    def policy_input(self) -> dict[str, th.Tensor]:
        """The policies' observation for every step."""
        context = self.context.unsqueeze(0).expand(self.mask.shape[0], -1, -1)
        return {OBS_KEY: self.observations, CONTEXT_KEY: context}

    def returns(self, gamma: float) -> th.Tensor:
        """Discounted returns from each step (``(T, N)``)."""
        returns, running = th.zeros_like(self.rewards), th.zeros_like(self.rewards[0])
        for t in range(len(self.rewards) - 1, -1, -1):
            running = (self.rewards[t] + gamma * running) * self.mask[t]
            returns[t] = running
        return returns

    @property
    def episode_returns(self) -> th.Tensor:
        """The undiscounted return of each episode (``(N,)``)."""
        return (self.rewards * self.mask).sum(dim=0)


def weighted_mean(values: th.Tensor, mask: th.Tensor) -> th.Tensor:
    """Mean of ``values`` over the steps that exist."""
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def gae_advantages(episodes: Episodes, values: th.Tensor, gamma: float, gae_lambda: float) -> th.Tensor:
    """GAE advantages (Schulman et al. 2016) of the episodes given baseline ``values`` (``(T, N)``), normalised to
    mean 0 and std 1 over the steps that exist (MAML's ``weighted_normalize``)."""
    values = values * episodes.mask
    following = th.cat([values[1:], th.zeros_like(values[:1])])
    deltas = episodes.rewards + gamma * following - values
    advantages, running = th.zeros_like(deltas), th.zeros_like(deltas[0])
    for t in range(len(deltas) - 1, -1, -1):
        running = (deltas[t] + gamma * gae_lambda * running) * episodes.mask[t]
        advantages[t] = running
    mean = weighted_mean(advantages, episodes.mask)
    std = weighted_mean((advantages - mean) ** 2, episodes.mask).sqrt()
    return (advantages - mean) / (std + 1e-8) * episodes.mask


class MAML(BaseAlgorithm):
    """MAML with a TRPO meta-update (Finn et al. 2017, sections 2.2 and 5.3), Context-MAML and Hyper-MAML (ICML 2021,
    section 4; policies ``"MlpPolicy"``, ``"ContextPolicy"``, ``"HyperPolicy"``).

    The environment is a task env (a :class:`~sb3_hypernet.TaskDistribution`) in a VecEnv of ``n_envs`` copies: a
    task's batch of episodes is one episode from every copy (MAML's 20 per task). ``n_train_tasks`` and
    ``n_test_tasks`` are drawn once with ``task_seed``. Each iteration of ``learn``:

    1. for each of ``meta_batch_size`` train tasks: episodes with the current parameters theta; the linear feature
       baseline fitted to their returns; one policy-gradient step (REINFORCE with GAE advantages) on every parameter,
       ``theta' = theta - inner_lr * grad`` (:func:`~sb3_hypernet.maml.inner_step`); episodes with theta';
    2. a TRPO step on theta (:func:`~sb3_hypernet.maml.trpo_step`) for the surrogate loss of the theta' episodes,
       whose gradient flows through the inner step: second order by default, first order with ``first_order=True``
       (the reference code copies the adapted parameters with ``load_state_dict``, which cuts the second-order term,
       so it is first order in effect).

    ``learn(total_timesteps)`` counts environment steps (those of the episodes, pre- and post-adaptation).

    :param policy: ``"MlpPolicy"`` (MAML), ``"ContextPolicy"`` (Context-MAML), ``"HyperPolicy"`` (Hyper-MAML) or a
        policy class
    :param env: a task env (id, env or VecEnv); ``n_envs`` copies give the episodes per task
    :param inner_lr: the inner step's size (0.1 for the MLPs, 5e-5 for the hypernetwork in the reference)
    :param first_order: drop the second-order term of the meta-gradient
    :param gamma: discount factor (0.95)
    :param gae_lambda: GAE's lambda (1.0)
    :param meta_batch_size: tasks per meta-update (40)
    :param n_train_tasks: train tasks (100)
    :param n_test_tasks: test tasks (20); 0 tests on the train tasks
    :param task_seed: seed of the task split (default: ``seed``, else 0)
    :param train_tasks: the train tasks themselves instead of a draw (the two-task Fwd-Back families)
    :param max_kl: TRPO's KL bound (1e-2)
    :param cg_iters: conjugate gradient iterations (10)
    :param cg_damping: damping of the Hessian-vector products (1e-5)
    :param line_search_steps: backtracking steps (20)
    :param backtrack_ratio: backtracking ratio (0.8)
    :param n_envs: copies of ``env`` when it is an id (episodes per task; 20)
    :param tensorboard_log: TensorBoard log folder
    :param policy_kwargs: keyword arguments of the policy
    :param verbose: 0 silent, 1 logs per iteration
    :param seed: seed of the networks, the sampling and (by default) the task split
    :param device: torch device
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MAMLPolicy,
        "ContextPolicy": ContextMAMLPolicy,
        "HyperPolicy": HyperMAMLPolicy,
    }
    policy: MAMLPolicy

    def __init__(
        self,
        policy: str | type[MAMLPolicy],
        env: GymEnv | str,
        inner_lr: float = 0.1,
        first_order: bool = False,
        gamma: float = 0.95,
        gae_lambda: float = 1.0,
        meta_batch_size: int = 40,
        n_train_tasks: int = 100,
        n_test_tasks: int = 20,
        task_seed: int | None = None,
        train_tasks: Sequence[Any] | None = None,
        max_kl: float = 1e-2,
        cg_iters: int = 10,
        cg_damping: float = 1e-5,
        line_search_steps: int = 20,
        backtrack_ratio: float = 0.8,
        n_envs: int = 20,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if train_tasks is not None:
            train_tasks = list(train_tasks)
            n_train_tasks, n_test_tasks = len(train_tasks), 0
        for name, value in dict(meta_batch_size=meta_batch_size, n_train_tasks=n_train_tasks, cg_iters=cg_iters,
                                line_search_steps=line_search_steps).items():  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not inner_lr > 0 or not max_kl > 0 or not 0 < backtrack_ratio < 1:
            raise ValueError(
                f"inner_lr and max_kl must be > 0 and backtrack_ratio in (0, 1), got {inner_lr}, {max_kl}, "
                f"{backtrack_ratio}"
            )
        if isinstance(env, str):
            from stable_baselines3.common.env_util import make_vec_env

            env = make_vec_env(env, n_envs=n_envs, seed=seed)
        self.inner_lr, self.first_order = float(inner_lr), bool(first_order)
        self.gamma, self.gae_lambda = float(gamma), float(gae_lambda)
        self.meta_batch_size = int(meta_batch_size)
        self.n_train_tasks, self.n_test_tasks = int(n_train_tasks), int(n_test_tasks)
        self.task_seed = task_seed
        self.max_kl, self.cg_iters, self.cg_damping = float(max_kl), int(cg_iters), float(cg_damping)
        self.line_search_steps, self.backtrack_ratio = int(line_search_steps), float(backtrack_ratio)
        # Saved with the model, so that the evaluator loads it as what it is.
        self.algorithm_class = type(self).__name__
        self.train_tasks: list[Any] = train_tasks or []
        self.test_tasks: list[Any] = []
        self.iterations = 0
        super().__init__(
            policy, env, learning_rate=inner_lr, policy_kwargs=policy_kwargs, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, verbose=verbose, device=device, support_multi_env=True, seed=seed,
            supported_action_spaces=(spaces.Box,),
        )  # fmt: skip
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        self._setup_lr_schedule()
        self.set_random_seed(self.seed)
        self._rng = np.random.default_rng(self.seed)
        if self.env is not None:
            check_task_env(self.env)
            self._task_low, self._task_high = self._task_bounds(self.env)
        context_dim = len(self._task_low)
        self.policy = self.policy_class(
            context_observation_space(self.observation_space, context_dim), self.action_space, self.lr_schedule,
            **self.policy_kwargs,
        ).to(self.device)  # fmt: skip
        self.baseline = LinearFeatureBaseline(int(np.prod(self.observation_space.shape)))
        if self.env is not None and not self.train_tasks:
            seed = self.task_seed if self.task_seed is not None else (self.seed or 0)
            self.train_tasks, self.test_tasks = draw_task_split(self.env, self.n_train_tasks, self.n_test_tasks, seed)

    @staticmethod
    def _task_bounds(env: VecEnv) -> tuple[np.ndarray, np.ndarray]:
        space = env.get_attr("task_space", indices=[0])[0]
        return np.asarray(space.low, np.float32).reshape(-1), np.asarray(space.high, np.float32).reshape(-1)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "baseline", "_rng"]

    # -- tasks and episodes ------------------------------------------------------------------------------------
    def task_context(self, env: VecEnv) -> np.ndarray:
        """The oracle context of the task set on ``env``: its descriptor rescaled to [0, 1] by the task space."""
        descriptor = np.asarray(env.env_method("task_descriptor", indices=[0])[0], np.float32).reshape(-1)
        span = np.where(self._task_high > self._task_low, self._task_high - self._task_low, 1.0)
        return (descriptor - self._task_low) / span

    def sample_episodes(
        self,
        env: VecEnv,
        task: Any,
        params: Mapping[str, th.Tensor] | None = None,
        deterministic: bool = False,
        callback: BaseCallback | None = None,
        training: bool = True,
    ) -> Episodes | None:
        """One episode of ``task`` from every env of ``env`` with ``params`` (default: the policy's); None if a
        callback stopped training. ``training=False`` (evaluation) leaves the step count and episode logs alone."""
        env.env_method("set_task", task)
        obs = env.reset()
        n_envs = env.num_envs
        context = th.as_tensor(np.broadcast_to(self.task_context(env), (n_envs, len(self._task_low))).copy(),
                               device=self.device)  # fmt: skip
        params = dict(params) if params is not None else parameters_of(self.policy)
        running = np.ones(n_envs, dtype=bool)
        observations, actions, rewards, masks = [], [], [], []
        low, high = self.action_space.low, self.action_space.high
        while running.any():
            observation = th.as_tensor(np.asarray(obs, np.float32), device=self.device)
            with th.no_grad():
                distribution = forward_with(self.policy, params, {OBS_KEY: observation, CONTEXT_KEY: context})
                action = distribution.mean if deterministic else distribution.sample()
            new_obs, reward, dones, infos = env.step(np.clip(action.cpu().numpy(), low, high))
            observations.append(observation)
            actions.append(action)
            rewards.append(th.as_tensor(reward, dtype=th.float32, device=self.device))
            masks.append(th.as_tensor(running, dtype=th.float32, device=self.device))
            if training:
                self.num_timesteps += int(running.sum())
            if training and self.ep_info_buffer is not None:  # (set up by learn)
                self._update_info_buffer([info for info, alive in zip(infos, running, strict=True) if alive],
                                         dones[running])  # fmt: skip
            if callback is not None:
                callback.update_locals(locals())
                if not callback.on_step():
                    return None
            running &= ~dones
            obs = new_obs
        return Episodes(th.stack(observations), th.stack(actions), th.stack(rewards), th.stack(masks), context)

    # -- losses ------------------------------------------------------------------------------------------------
    def _log_prob(self, params: Mapping[str, th.Tensor], episodes: Episodes) -> tuple[th.Tensor, Normal]:
        distribution = forward_with(self.policy, params, episodes.policy_input())
        return distribution.log_prob(episodes.actions).sum(dim=-1), distribution

    def advantages(self, episodes: Episodes, fit: bool = True) -> th.Tensor:
        """GAE advantages (normalised) of the episodes, with the baseline fitted to their returns first (``fit``) or
        as last fitted (the reference's post-adaptation episodes use the fit to the task's pre-adaptation ones)."""
        if fit:
            self.baseline.fit(episodes.observations, episodes.returns(self.gamma), episodes.mask)
        values = self.baseline.predict(episodes.observations, episodes.mask)
        return gae_advantages(episodes, values, self.gamma, self.gae_lambda)

    def adapt(
        self,
        episodes: Episodes,
        advantages: th.Tensor,
        params: Mapping[str, th.Tensor] | None = None,
        first_order: bool | None = None,
    ) -> dict[str, th.Tensor]:
        """The inner step on ``episodes``: REINFORCE with the given advantages, one gradient step of ``inner_lr``."""
        params = dict(params) if params is not None else parameters_of(self.policy)
        log_prob, _ = self._log_prob(params, episodes)
        loss = -weighted_mean(log_prob * advantages, episodes.mask)
        return inner_step(loss, params, self.inner_lr, self.first_order if first_order is None else first_order)

    def train(self, batch: list[tuple[Episodes, th.Tensor, Episodes, th.Tensor]]) -> None:
        """The TRPO meta-update on a meta-batch of (train episodes, their advantages, episodes after adaptation,
        their advantages)."""
        old = []
        for train, train_adv, valid, _ in batch:
            adapted = {k: v.detach() for k, v in self.adapt(train, train_adv, first_order=True).items()}
            with th.no_grad():
                old.append(self._log_prob(adapted, valid))

        def surrogate() -> tuple[th.Tensor, th.Tensor]:
            losses, kls = [], []
            for (train, train_adv, valid, valid_adv), (old_log_prob, old_pi) in zip(batch, old, strict=True):
                with th.enable_grad():
                    adapted = self.adapt(train, train_adv)
                log_prob, pi = self._log_prob(adapted, valid)
                ratio = th.exp(log_prob - old_log_prob)
                losses.append(-weighted_mean(ratio * valid_adv, valid.mask))
                kl = kl_divergence(Normal(old_pi.mean, old_pi.stddev), pi).sum(dim=-1)
                kls.append(weighted_mean(kl, valid.mask))
            return th.stack(losses).mean(), th.stack(kls).mean()

        step = trpo_step(list(self.policy.parameters()), surrogate, self.max_kl, self.cg_iters, self.cg_damping,
                         self.line_search_steps, self.backtrack_ratio)  # fmt: skip
        self.logger.record("train/surrogate_loss", step.loss_before)
        self.logger.record("train/surrogate_loss_after", step.loss_after)
        self.logger.record("train/kl", step.kl)
        self.logger.record("train/step_fraction", step.step_fraction)
        self.logger.record("train/line_search_steps", step.line_search_steps)

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "MAML",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> MAML:
        """Meta-train until ``total_timesteps`` environment steps (class docstring); ``log_interval``: iterations
        between log dumps."""
        if not self.train_tasks:
            raise ValueError("MAML has no tasks: give it an env (set_env) before learn")
        total_timesteps, callback = self._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name,
                                                      progress_bar)  # fmt: skip
        callback.on_training_start(locals(), globals())
        while self.num_timesteps < total_timesteps:
            callback.on_rollout_start()
            batch, before, after = [], [], []
            # Distinct tasks in a meta-batch, as far as there are enough.
            n_tasks = len(self.train_tasks)
            for index in self._rng.choice(n_tasks, self.meta_batch_size, replace=self.meta_batch_size > n_tasks):
                task = self.train_tasks[int(index)]
                train = self.sample_episodes(self.env, task, callback=callback)
                if train is None:
                    break
                train_adv = self.advantages(train)
                adapted = {k: v.detach() for k, v in self.adapt(train, train_adv, first_order=True).items()}
                valid = self.sample_episodes(self.env, task, adapted, callback=callback)
                if valid is None:
                    break
                batch.append((train, train_adv, valid, self.advantages(valid, fit=False)))
                before.append(float(train.episode_returns.mean()))
                after.append(float(valid.episode_returns.mean()))
            else:
                callback.on_rollout_end()
                self.train(batch)
                self.iterations += 1
                self.logger.record("rollout/pre_adaptation_return", float(np.mean(before)))
                self.logger.record("rollout/post_adaptation_return", float(np.mean(after)))
                self.logger.record("train/iterations", self.iterations)
                self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
                if log_interval and self.iterations % log_interval == 0:
                    self.logger.dump(step=self.num_timesteps)
                continue
            break  # a callback stopped training
        callback.on_training_end()
        return self

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        check_task_env(self.env)
