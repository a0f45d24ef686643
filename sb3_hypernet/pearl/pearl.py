"""PEARL: off-policy meta-RL with probabilistic context variables (Rakelly et al. 2019), and Hyper-PEARL (Sarafian
et al., ICML 2021, section 4), as an SB3 algorithm built on SB3's SAC.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl
from stable_baselines3.common.type_aliases import GymEnv, MaybeCallback, Schedule
from stable_baselines3.common.utils import polyak_update

from sb3_hypernet.common.task import check_task_env, draw_task_split
from sb3_hypernet.pearl.buffers import TaskReplayBuffer, context_of
from sb3_hypernet.pearl.encoder import kl_to_standard_normal
from sb3_hypernet.pearl.policies import LATENT_KEY, OBS_KEY, HyperPEARLPolicy, PEARLPolicy, latent_observation_space

#: Tensor shapes: T tasks of a meta-batch, B transitions per task, L = latent_dim.


class PEARL(SAC):
    """PEARL (Rakelly et al. 2019) with SB3's SAC as the RL algorithm, and Hyper-PEARL (ICML 2021, section 4) with
    ``policy="HyperPolicy"`` (:class:`~sb3_hypernet.pearl.HyperPEARLPolicy`).

    The policy and the critics condition on a latent task variable z; a context encoder infers the posterior over z
    from transitions of the task (:mod:`sb3_hypernet.pearl.encoder`) and is trained through the critics' loss and a
    KL bottleneck to the prior N(0, I), never through the actor's loss (z reaches the actor detached).

    The environment is a task env (one env, a :class:`~sb3_hypernet.TaskDistribution`: the project's ``<Name>Task-v0``
    ids or a user's own); ``n_train_tasks`` and ``n_test_tasks`` are drawn from it with ``task_seed``
    (:func:`draw_task_split`) and set through the VecEnv (``set_task``). ``learn(total_timesteps)`` counts environment
    steps and runs PEARL's iterations until the budget is spent:

    1. once, ``initial_steps`` steps on every train task with z from the prior (again for a model loaded without its
       buffers; :meth:`save_replay_buffer` saves both);
    2. on each of ``tasks_per_iteration`` sampled train tasks: the task's encoder buffer is cleared, then
       ``prior_steps`` steps with z from the prior and ``posterior_steps`` with z from the posterior go to both
       buffers, and ``extra_posterior_steps`` with z from the posterior to the RL buffer only (z resampled every
       ``posterior_update_interval`` episodes from a context of the task's encoder buffer); collection runs whole
       episodes;
    3. ``gradient_steps`` updates, each on a meta-batch of ``meta_batch_size`` train tasks: per task, a context of
       ``context_batch_size`` transitions from its encoder buffer and ``batch_size`` transitions from its RL buffer.

    Differences from the reference's SAC (kept from SB3, tested): twin Q-networks with target Q-networks instead of
    SAC v1's extra V-network and target V (Haarnoja et al. 2018b, SB3's and every current SAC's form); the entropy
    coefficient ``ent_coef`` (1.0, fixed, with rewards multiplied by ``reward_scale``: the reference's objective, or
    ``"auto"``). As the reference: the critic loss is the sum of the two mean squared errors (the encoder's gradient
    from it, against ``kl_weight`` x KL, keeps the reference's scale), the actor's loss adds ``policy_mean_reg`` x
    mean^2 and ``policy_std_reg`` x log-std^2, and the KL is summed over the meta-batch's tasks.

    :param policy: ``"MlpPolicy"`` (PEARL), ``"HyperPolicy"`` (Hyper-PEARL) or a policy class
    :param env: a task env (id, env or one-env VecEnv)
    :param learning_rate: the actor's learning rate (and the critics', unless the policy sets its own)
    :param buffer_size: transitions kept per task in the RL buffer (1e6)
    :param batch_size: RL transitions per task in a gradient step (256)
    :param tau: soft update coefficient of the target critics (0.005)
    :param gamma: discount factor (0.99)
    :param ent_coef: entropy coefficient (1.0 with ``reward_scale``), or ``"auto"`` as SB3's SAC
    :param reward_scale: rewards are multiplied by this in the critics' targets (5)
    :param latent_dim: size of z (5)
    :param kl_weight: weight of the KL to the prior in the encoder's loss (0.1)
    :param n_train_tasks: train tasks (100 on Cheetah-Vel and Ant-Vel)
    :param n_test_tasks: test tasks (30); 0 tests on the train tasks
    :param task_seed: seed of the task split (default: ``seed``, else 0)
    :param train_tasks: the train tasks themselves instead of a draw (the two-task Fwd-Back families: ``[1.0, -1.0]``);
        ``n_train_tasks`` is then their number
    :param test_tasks: the test tasks themselves, with ``train_tasks`` (default: none, testing on the train tasks)
    :param meta_batch_size: tasks per gradient step (16)
    :param context_batch_size: context transitions per task in a gradient step (100)
    :param initial_steps: steps collected on every train task before training (2000)
    :param tasks_per_iteration: train tasks collected on per iteration (5)
    :param prior_steps: steps per task and iteration with z from the prior (400)
    :param posterior_steps: steps with z from the posterior that also feed the encoder buffer (0)
    :param extra_posterior_steps: steps with z from the posterior for the RL buffer only (600)
    :param gradient_steps: gradient steps per iteration (2000)
    :param posterior_update_interval: episodes between posterior samples during posterior collection (1)
    :param encoder_buffer_size: transitions kept per task in the encoder buffer (default: ``buffer_size``)
    :param policy_mean_reg: weight of the actor's mean^2 regulariser (1e-3)
    :param policy_std_reg: weight of the actor's log-std^2 regulariser (1e-3)
    :param target_update_interval: gradient steps between target updates (1)
    :param stats_window_size: episodes averaged for the rollout logs
    :param tensorboard_log: TensorBoard log folder
    :param policy_kwargs: keyword arguments of the policy (encoder sizes and learning rate among them)
    :param verbose: 0 silent, 1 logs per iteration
    :param seed: seed of the networks, the sampling and (by default) the task split
    :param device: torch device
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {"MlpPolicy": PEARLPolicy, "HyperPolicy": HyperPEARLPolicy}
    policy: PEARLPolicy

    def __init__(
        self,
        policy: str | type[PEARLPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        buffer_size: int = 1_000_000,
        batch_size: int = 256,
        tau: float = 0.005,
        gamma: float = 0.99,
        ent_coef: str | float = 1.0,
        reward_scale: float = 5.0,
        latent_dim: int = 5,
        kl_weight: float = 0.1,
        n_train_tasks: int = 100,
        n_test_tasks: int = 30,
        task_seed: int | None = None,
        train_tasks: Sequence[Any] | None = None,
        test_tasks: Sequence[Any] | None = None,
        meta_batch_size: int = 16,
        context_batch_size: int = 100,
        initial_steps: int = 2000,
        tasks_per_iteration: int = 5,
        prior_steps: int = 400,
        posterior_steps: int = 0,
        extra_posterior_steps: int = 600,
        gradient_steps: int = 2000,
        posterior_update_interval: int = 1,
        encoder_buffer_size: int | None = None,
        policy_mean_reg: float = 1e-3,
        policy_std_reg: float = 1e-3,
        target_update_interval: int = 1,
        stats_window_size: int = 100,
        tensorboard_log: str | None = None,
        policy_kwargs: dict[str, Any] | None = None,
        verbose: int = 0,
        seed: int | None = None,
        device: th.device | str = "auto",
        _init_setup_model: bool = True,
    ):
        if train_tasks is not None:
            train_tasks, test_tasks = list(train_tasks), list(test_tasks or [])
            n_train_tasks, n_test_tasks = len(train_tasks), len(test_tasks)
        elif test_tasks is not None:
            raise ValueError("test_tasks needs train_tasks (or neither: both drawn with task_seed)")
        counts = dict(n_train_tasks=n_train_tasks, meta_batch_size=meta_batch_size, batch_size=batch_size,
                      context_batch_size=context_batch_size, latent_dim=latent_dim,
                      tasks_per_iteration=tasks_per_iteration,
                      posterior_update_interval=posterior_update_interval)  # fmt: skip
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        steps = dict(n_test_tasks=n_test_tasks, initial_steps=initial_steps, prior_steps=prior_steps,
                     posterior_steps=posterior_steps, extra_posterior_steps=extra_posterior_steps,
                     gradient_steps=gradient_steps)  # fmt: skip
        for name, value in steps.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if prior_steps + posterior_steps + extra_posterior_steps == 0:
            raise ValueError("prior_steps, posterior_steps and extra_posterior_steps are all 0: nothing to collect")
        if not reward_scale > 0 or kl_weight < 0:
            raise ValueError(f"reward_scale must be > 0 and kl_weight >= 0, got {reward_scale} and {kl_weight}")
        self.reward_scale, self.latent_dim, self.kl_weight = float(reward_scale), int(latent_dim), float(kl_weight)
        self.n_train_tasks, self.n_test_tasks = int(n_train_tasks), int(n_test_tasks)
        self.task_seed = task_seed
        self.meta_batch_size, self.context_batch_size = int(meta_batch_size), int(context_batch_size)
        self.initial_steps, self.tasks_per_iteration = int(initial_steps), int(tasks_per_iteration)
        self.prior_steps, self.posterior_steps = int(prior_steps), int(posterior_steps)
        self.extra_posterior_steps = int(extra_posterior_steps)
        self.posterior_update_interval = int(posterior_update_interval)
        self.encoder_buffer_size = encoder_buffer_size
        self.policy_mean_reg, self.policy_std_reg = float(policy_mean_reg), float(policy_std_reg)
        # Saved with the model, so that the evaluator loads it as what it is.
        self.algorithm_class = type(self).__name__
        self.train_tasks: list[Any] = train_tasks or []
        self.test_tasks: list[Any] = test_tasks or []
        self.iterations = 0
        self.encoder_buffer: TaskReplayBuffer | None = None
        self.latent = np.zeros(self.latent_dim, np.float32)
        super().__init__(
            policy, env, learning_rate=learning_rate, buffer_size=buffer_size, learning_starts=0,
            batch_size=batch_size, tau=tau, gamma=gamma, gradient_steps=gradient_steps, ent_coef=ent_coef,
            target_update_interval=target_update_interval, stats_window_size=stats_window_size,
            tensorboard_log=tensorboard_log, policy_kwargs=policy_kwargs, verbose=verbose, seed=seed, device=device,
            _init_setup_model=False,
        )  # fmt: skip
        if self.env is not None and self.env.num_envs != 1:
            raise ValueError(f"PEARL collects on one task at a time: give it one env, got {self.env.num_envs}")
        if _init_setup_model:
            self._setup_model()

    # -- set-up ------------------------------------------------------------------------------------------------
    def _setup_model(self) -> None:
        obs_dim = int(np.prod(self.observation_space.shape))
        action_dim = int(np.prod(self.action_space.shape))
        self.replay_buffer = TaskReplayBuffer(self.n_train_tasks, self.buffer_size, obs_dim, action_dim, self.device)
        self.encoder_buffer = TaskReplayBuffer(
            self.n_train_tasks, self.encoder_buffer_size or self.buffer_size, obs_dim, action_dim, self.device
        )
        # SB3 builds the policy from self.observation_space; the policy sees {latent, obs}, the env only obs.
        env_space = self.observation_space
        self.observation_space = latent_observation_space(env_space, self.latent_dim)
        try:
            super()._setup_model()
        finally:
            self.observation_space = env_space
        self._rng = np.random.default_rng(self.seed)
        if self.env is not None:
            check_task_env(self.env)
        if self.env is not None and not self.train_tasks:
            seed = self.task_seed if self.task_seed is not None else (self.seed or 0)
            self.train_tasks, self.test_tasks = draw_task_split(self.env, self.n_train_tasks, self.n_test_tasks, seed)

    @property
    def encoder(self) -> th.nn.Module:
        """The policy's context encoder."""
        return self.policy.encoder

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "encoder_buffer", "_rng"]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        return [*state_dicts, "policy.encoder.optimizer"], variables

    # -- latent variable ---------------------------------------------------------------------------------------
    def posterior(self, context: np.ndarray | th.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of the posterior over z given context transitions ``(n, context_dim)`` of one task
        (the prior for ``n = 0``)."""
        context = th.as_tensor(np.asarray(context, np.float32), device=self.device).reshape(
            1, -1, self.policy.context_dim
        )
        with th.no_grad():
            mean, variance = self.encoder(context)
        return mean[0].cpu().numpy(), variance[0].cpu().numpy()

    def sample_latent(self, context: np.ndarray | th.Tensor | None = None) -> np.ndarray:
        """Set and return :attr:`latent`: z drawn from the posterior given ``context``, or from the prior."""
        if context is None or len(context) == 0:
            mean, variance = np.zeros(self.latent_dim), np.ones(self.latent_dim)
        else:
            mean, variance = self.posterior(context)
        self.latent = (mean + np.sqrt(variance) * self._rng.standard_normal(self.latent_dim)).astype(np.float32)
        return self.latent

    def _policy_observation(self, observation: np.ndarray, latent: np.ndarray | None = None) -> dict[str, np.ndarray]:
        observation = np.asarray(observation, np.float32)
        batch = observation.reshape(-1, *self.observation_space.shape)
        z = np.broadcast_to(self.latent if latent is None else latent, (len(batch), self.latent_dim))
        return {LATENT_KEY: np.array(z, np.float32), OBS_KEY: batch}

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Actions for environment observations, conditioned on :attr:`latent` (set it with :meth:`sample_latent`);
        a ``{"latent", "obs"}`` dict is passed on as it is."""
        if isinstance(observation, dict):
            return self.policy.predict(observation, state, episode_start, deterministic)
        single = np.shape(observation) == self.observation_space.shape
        actions, state = self.policy.predict(self._policy_observation(observation), state, episode_start, deterministic)
        return (actions[0] if single else actions), state

    # -- collection --------------------------------------------------------------------------------------------
    def _context_of_task(self, task_index: int) -> np.ndarray | None:
        if self.encoder_buffer.size(task_index) == 0:
            return None
        context = self.encoder_buffer.sample_context([task_index], self.context_batch_size, self._rng,
                                                     self.policy.context_next_obs)  # fmt: skip
        return context[0].cpu().numpy()

    def _collect(
        self, task_index: int, n_steps: int, posterior: bool, to_encoder: bool, callback: BaseCallback
    ) -> bool:
        """Whole episodes on train task ``task_index`` until ``n_steps`` steps; False if a callback stopped."""
        if n_steps == 0:
            return True
        self.env.env_method("set_task", self.train_tasks[task_index], indices=[0])
        obs = self.env.reset()
        steps, episodes = 0, 0
        self.sample_latent(self._context_of_task(task_index) if posterior else None)
        while True:
            with th.no_grad():
                observation, _ = self.policy.obs_to_tensor(self._policy_observation(obs))
                scaled = self.actor(observation, deterministic=False).cpu().numpy()
            new_obs, rewards, dones, infos = self.env.step(self.policy.unscale_action(scaled))
            self.num_timesteps += 1
            steps += 1
            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            done = bool(dones[0])
            next_obs = infos[0]["terminal_observation"] if done else new_obs[0]
            terminated = float(done and not infos[0].get("TimeLimit.truncated", False))
            transition = (obs[0], scaled[0], rewards[:1], next_obs, [terminated])
            self.replay_buffer.add(task_index, *transition)
            if to_encoder:
                self.encoder_buffer.add(task_index, *transition)
            obs = new_obs
            if done:
                episodes += 1
                self._episode_num += 1
                if steps >= n_steps:
                    return True
                if not posterior:
                    self.sample_latent(None)
                elif episodes % self.posterior_update_interval == 0:
                    self.sample_latent(self._context_of_task(task_index))

    def _collect_iteration(self, callback: BaseCallback) -> bool:
        """PEARL's data collection of one iteration (class docstring, steps 1 and 2)."""
        # At the start, and after loading a model without its buffers: every task needs data before an update.
        for task_index in range(self.n_train_tasks):
            empty = self.replay_buffer.size(task_index) == 0 or self.encoder_buffer.size(task_index) == 0
            if empty and not self._collect(task_index, max(self.initial_steps, 1), False, True, callback):
                return False
        for _ in range(self.tasks_per_iteration):
            task_index = int(self._rng.integers(self.n_train_tasks))
            self.encoder_buffer.clear(task_index)
            phases = ((self.prior_steps, False, True), (self.posterior_steps, True, True),
                      (self.extra_posterior_steps, True, False))  # fmt: skip
            for n_steps, posterior, to_encoder in phases:
                if not self._collect(task_index, n_steps, posterior, to_encoder, callback):
                    return False
        return True

    # -- training ----------------------------------------------------------------------------------------------
    def train(self, gradient_steps: int, batch_size: int = 256) -> None:
        """``gradient_steps`` PEARL updates (class docstring, step 3)."""
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        logged: dict[str, list[float]] = {key: [] for key in ("critic_loss", "actor_loss", "kl_divergence", "ent_coef",
                                                              "z_mean", "z_variance")}  # fmt: skip
        for _ in range(gradient_steps):
            tasks = self._rng.integers(self.n_train_tasks, size=self.meta_batch_size)
            context = self.encoder_buffer.sample_context(tasks, self.context_batch_size, self._rng,
                                                         self.policy.context_next_obs)  # fmt: skip
            batch = self.replay_buffer.sample(tasks, batch_size, self._rng)
            losses, actor_inputs = self._critic_losses(context, batch)
            self.policy.encoder.optimizer.zero_grad()
            self.critic.optimizer.zero_grad()
            (losses["critic_loss"] + self.kl_weight * losses["kl_divergence"]).backward()
            self.critic.optimizer.step()
            self.policy.encoder.optimizer.step()
            if self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                losses["ent_coef_loss"].backward()
                self.ent_coef_optimizer.step()
            # After the critic's step, as SAC: the actor's loss reads the updated critics.
            losses["actor_loss"] = self._actor_loss(*actor_inputs)
            self.actor.optimizer.zero_grad()
            losses["actor_loss"].backward()
            self.actor.optimizer.step()
            self._n_updates += 1
            if self._n_updates % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
            for key in logged:
                logged[key].append(float(losses[key].detach()))
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        for key, values in logged.items():
            if values:
                self.logger.record(f"train/{key}", float(np.mean(values)))

    def _critic_losses(
        self, context: th.Tensor, batch: dict[str, th.Tensor]
    ) -> tuple[dict[str, th.Tensor], tuple[th.Tensor, ...]]:
        """The critics' loss, the KL and the entropy coefficient's loss of one gradient step on a meta-batch
        (``context`` ``(T, C, context_dim)``, ``batch`` tensors ``(T, B, dim)``), and the actor's inputs for
        :meth:`_actor_loss`. The critics' loss reaches the encoder through z; the actor and the entropy coefficient
        see z detached."""
        mean, variance = self.encoder(context)  # (T, L)
        z = mean + variance.sqrt() * th.randn_like(mean)
        n_tasks, n_transitions = batch["observations"].shape[:2]
        z = z[:, None].expand(n_tasks, n_transitions, self.latent_dim).reshape(n_tasks * n_transitions, -1)
        flat = {name: value.reshape(n_tasks * n_transitions, -1) for name, value in batch.items()}
        observation = {LATENT_KEY: z, OBS_KEY: flat["observations"]}
        detached = {LATENT_KEY: z.detach(), OBS_KEY: flat["observations"]}
        following = {LATENT_KEY: z.detach(), OBS_KEY: flat["next_observations"]}

        mean_actions, log_std, _ = self.actor.get_action_dist_params(detached)
        actions_pi, log_prob = self.actor.action_dist.log_prob_from_params(mean_actions, log_std)
        log_prob = log_prob.reshape(-1, 1)
        losses: dict[str, th.Tensor] = {}
        if self.ent_coef_optimizer is not None:
            ent_coef = th.exp(self.log_ent_coef.detach())
            losses["ent_coef_loss"] = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
        else:
            ent_coef = self.ent_coef_tensor
        with th.no_grad():
            next_actions, next_log_prob = self.actor.action_log_prob(following)
            next_q = th.min(th.cat(self.critic_target(following, next_actions), dim=1), dim=1, keepdim=True).values
            next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
            target = self.reward_scale * flat["rewards"] + (1 - flat["dones"]) * self.gamma * next_q
        current = self.critic(observation, flat["actions"])
        losses["critic_loss"] = sum(F.mse_loss(q, target) for q in current)
        losses["kl_divergence"] = kl_to_standard_normal(mean, variance).sum()
        losses["ent_coef"] = ent_coef.detach()
        losses["z_mean"] = mean.detach().abs().mean()
        losses["z_variance"] = variance.detach().mean()
        return losses, (detached, actions_pi, log_prob, mean_actions, log_std, ent_coef)

    def _actor_loss(
        self,
        observation: dict[str, th.Tensor],
        actions_pi: th.Tensor,
        log_prob: th.Tensor,
        mean_actions: th.Tensor,
        log_std: th.Tensor,
        ent_coef: th.Tensor,
    ) -> th.Tensor:
        """SAC's actor loss with PEARL's regularisers of the mean and log-std."""
        q_pi = th.min(th.cat(self.critic(observation, actions_pi), dim=1), dim=1, keepdim=True).values
        regulariser = self.policy_mean_reg * mean_actions.pow(2).mean() + self.policy_std_reg * log_std.pow(2).mean()
        return (ent_coef * log_prob - q_pi).mean() + regulariser

    def learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        log_interval: int = 1,
        tb_log_name: str = "PEARL",
        reset_num_timesteps: bool = True,
        progress_bar: bool = False,
    ) -> PEARL:
        """Run PEARL's iterations (collection, then ``gradient_steps`` updates) until ``total_timesteps`` environment
        steps; ``log_interval``: iterations between log dumps."""
        if not self.train_tasks:
            raise ValueError("PEARL has no tasks: give it an env (set_env) before learn")
        total_timesteps, callback = self._setup_learn(total_timesteps, callback, reset_num_timesteps, tb_log_name,
                                                      progress_bar)  # fmt: skip
        callback.on_training_start(locals(), globals())
        while self.num_timesteps < total_timesteps:
            callback.on_rollout_start()
            going = self._collect_iteration(callback)
            callback.on_rollout_end()
            if not going:
                break
            self.train(self.gradient_steps, self.batch_size)
            self.iterations += 1
            self.logger.record("train/iterations", self.iterations)
            if log_interval and self.iterations % log_interval == 0:
                self.dump_logs()
        callback.on_training_end()
        return self

    def save_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Save the RL and encoder buffers (one pickle), to train on after :meth:`load`."""
        save_to_pkl(path, {"replay_buffer": self.replay_buffer, "encoder_buffer": self.encoder_buffer}, self.verbose)

    def load_replay_buffer(self, path: str | pathlib.Path | io.BufferedIOBase, truncate_last_traj: bool = True) -> None:
        """Load the buffers saved by :meth:`save_replay_buffer`."""
        buffers = load_from_pkl(path, self.verbose)
        if not isinstance(buffers, dict) or set(buffers) != {"replay_buffer", "encoder_buffer"}:
            raise ValueError(f"{path} does not hold PEARL's buffers (saved by PEARL.save_replay_buffer)")
        self.replay_buffer, self.encoder_buffer = buffers["replay_buffer"], buffers["encoder_buffer"]
        for buffer in (self.replay_buffer, self.encoder_buffer):
            buffer.device = self.device

    def set_env(self, env: GymEnv, force_reset: bool = True) -> None:
        super().set_env(env, force_reset)
        if self.env.num_envs != 1:
            raise ValueError(f"PEARL collects on one task at a time: give it one env, got {self.env.num_envs}")
        check_task_env(self.env)

    def task_context(self, transitions: Sequence[dict[str, np.ndarray]]) -> np.ndarray:
        """Context transitions ``(n, context_dim)`` from dicts with ``observations``, ``actions`` (scaled to the
        policy's [-1, 1]), ``rewards`` and ``next_observations``."""
        batch = {name: th.as_tensor(np.stack([np.asarray(t[name], np.float32).reshape(-1) for t in transitions]))
                 for name in ("observations", "actions", "rewards", "next_observations")}  # fmt: skip
        return context_of(batch, self.policy.context_next_obs).numpy()
