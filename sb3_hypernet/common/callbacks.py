"""Callbacks for meta-RL training."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from sb3_hypernet.common.evaluation import evaluate_meta_policy


class MetaEpisodeLogger(BaseCallback):
    """Logs the mean return (and success) of each inner episode of the last meta-episodes to SB3's logger.

    Reads ``info["inner_returns"]`` (and ``inner_successes``) that :class:`~sb3_hypernet.MetaEpisodeWrapper` puts
    in the info of a meta-episode's last step, and records ``rollout/inner_return_<i>`` (i = 1..k) and
    ``rollout/inner_success_<i>`` at the end of each rollout: the adaptation curve next to ``rollout/ep_rew_mean``
    (the meta-episode return) in TensorBoard. In an rl_zoo3 config: ``callback: sb3_hypernet.MetaEpisodeLogger``.

    :param window: number of recent meta-episodes averaged (SB3's ``stats_window_size`` is 100)
    """

    def __init__(self, window: int = 100, verbose: int = 0):
        super().__init__(verbose)
        self.window = window
        self.inner_returns: deque[list[float]] = deque(maxlen=window)
        self.inner_successes: deque[list[float]] = deque(maxlen=window)

    def _on_step(self) -> bool:
        for info, done in zip(self.locals["infos"], self.locals["dones"], strict=True):
            if done and "inner_returns" in info:
                self.inner_returns.append(info["inner_returns"])
                if "inner_successes" in info:
                    self.inner_successes.append(info["inner_successes"])
        return True

    def _on_rollout_end(self) -> None:
        for name, history in (("inner_return", self.inner_returns), ("inner_success", self.inner_successes)):
            if not history:
                continue
            k = min(len(values) for values in history)
            means = np.mean([values[:k] for values in history], axis=0)
            for i, value in enumerate(means, start=1):
                self.logger.record(f"rollout/{name}_{i}", float(value))


class LatentDiagnostics(BaseCallback):
    """Logs how strongly actor and critic depend on the trajectory latent, and the model's parameter counts.

    NeurIPS 2023, section 5 and Figure 11
    (:meth:`~sb3_hypernet.common.policies.MetaRecurrentPolicy.latent_gradient_norms`), measured at the end of every
    rollout on the next observations of all envs:

    - ``diagnostics/value_latent_grad_norm``: mean L2 norm of d(value)/d(latent embedding), what Figure 11 plots;
    - ``diagnostics/actor_latent_grad_norm``: mean Frobenius norm of d(actor output)/d(latent embedding), the actor
      output being the logits or the Gaussian mean.

    At the start of training it records ``params/encoder``, ``params/hypernetwork``, ``params/base_network``
    (generated parameters count per sample) and ``params/total``, and prints them with ``verbose=1``. Works with
    every sb3_hypernet policy.
    """

    def _on_training_start(self) -> None:
        counts = self.model.policy.parameter_counts()
        for name, value in counts.items():
            self.logger.record(f"params/{name}", value)
        if self.verbose:
            print("parameters: " + ", ".join(f"{name} {value:,}" for name, value in counts.items()))

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        policy = self.model.policy
        obs, _ = policy.obs_to_tensor(self.model._last_obs)
        starts = th.as_tensor(self.model._last_episode_starts, dtype=th.float32, device=policy.device)
        norms = policy.latent_gradient_norms(obs, self.model._last_lstm_states.pi, starts)
        for name, value in norms.items():
            self.logger.record(f"diagnostics/{name}_latent_grad_norm", value)


class CheckpointEvaluation(BaseCallback):
    """Evaluates the model at frame checkpoints of a training run, the papers' protocol (NeurIPS 2023, section 4:
    mean deterministic meta-episode return on fresh tasks), and hands each result to ``on_checkpoint``.

    A checkpoint is taken at the first rollout start at or after its frame count (a rollout start follows a completed
    update, so the model has trained on ``num_timesteps`` frames) and, for checkpoints not reached, at the end of
    training. ``on_checkpoint(model, summary, fps)`` receives :meth:`MetaEvaluation.summary`'s dict and the training
    frames/s so far, evaluation time excluded.

    :param env: meta-episode env id to evaluate on
    :param checkpoints: frame counts
    :param on_checkpoint: called with each checkpoint's result
    :param n_eval: meta-episodes per evaluation
    :param eval_seed: seed of the evaluation tasks (the same tasks at every checkpoint)
    :param env_kwargs: keyword arguments of the evaluation env (the training entry's ``env_kwargs``)
    """

    def __init__(
        self,
        env: str,
        checkpoints: list[int],
        on_checkpoint: Callable[[BaseAlgorithm, dict[str, Any], float], None],
        n_eval: int = 100,
        eval_seed: int = 10_000,
        env_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.env = env
        self.pending = sorted(int(c) for c in checkpoints)
        self.on_checkpoint = on_checkpoint
        self.n_eval = n_eval
        self.eval_seed = eval_seed
        self.env_kwargs = env_kwargs or {}
        self.start_frames = 0
        self.start_time = 0.0
        self.excluded = 0.0

    def _on_training_start(self) -> None:
        self.start_frames, self.start_time, self.excluded = self.num_timesteps, time.perf_counter(), 0.0

    def _on_rollout_start(self) -> None:
        if self.pending and self.num_timesteps >= self.pending[0]:
            self.checkpoint()

    def _on_training_end(self) -> None:
        if self.pending:
            self.checkpoint()

    def _on_step(self) -> bool:
        return True

    def checkpoint(self) -> None:
        """Evaluate now and report; drops every checkpoint already passed."""
        while self.pending and self.pending[0] <= self.num_timesteps:
            self.pending.pop(0)
        began = time.perf_counter()
        elapsed = began - self.start_time - self.excluded
        fps = (self.num_timesteps - self.start_frames) / elapsed if elapsed > 0 else float("nan")
        evaluation = evaluate_meta_policy(
            self.model, self.env, self.n_eval, seed=self.eval_seed, env_kwargs=self.env_kwargs
        )
        self.on_checkpoint(self.model, evaluation.summary(), fps)
        self.excluded += time.perf_counter() - began


class BestModelForEvaluationCallback(EvalCallback):
    """SB3's ``EvalCallback`` whose ``best_model.zip`` is saved without optimiser state, for evaluation (a third of
    the size for a GridNavi RNN+HN; a model loaded from it predicts identically and refuses to ``learn``).

    Applies to models with ``save_optimizer_state`` (:class:`~sb3_hypernet.MetaRecurrentPPO`); others save as
    ``EvalCallback`` does. ``python -m sb3_hypernet.train`` uses it in place of rl_zoo3's ``EvalCallback``.
    """

    def _on_step(self) -> bool:
        # EvalCallback saves the best model inside _on_step with model.save(path), which reads this flag.
        keep = getattr(self.model, "save_optimizer_state", None)
        if keep is None:
            return super()._on_step()
        self.model.save_optimizer_state = False
        try:
            return super()._on_step()
        finally:
            self.model.save_optimizer_state = keep
