"""``MetaRecurrentPPO``: sb3-contrib's RecurrentPPO with what the meta-RL methods need beyond its update.

RecurrentPPO's ``train()`` has no hook for auxiliary losses, a second optimiser, another value loss or per-module
gradient clipping, so this subclass overrides it; everything else (rollouts, buffers, schedules,
saving) is RecurrentPPO's. With its defaults it performs exactly RecurrentPPO's update.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.buffers import RecurrentDictRolloutBuffer
from sb3_contrib.common.recurrent.type_aliases import RecurrentDictRolloutBufferSamples
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import explained_variance

from sb3_hypernet.common.buffers import SequenceDictRolloutBuffer, SequenceRolloutBuffer
from sb3_hypernet.common.meta_episode_buffer import MetaEpisodeBuffer, MetaEpisodeRecorder
from sb3_hypernet.common.policy_hooks import MetaPolicyHooks

#: Value losses: SB3's squared error, or the reference implementation's clipped Huber loss.
VALUE_LOSSES = ("mse", "huber_clipped")
#: Where advantages are normalised: per minibatch (SB3) or over the whole rollout (the reference).
ADVANTAGE_NORMALIZATIONS = ("minibatch", "batch")
#: The per-step fields of a minibatch that the loss reads past the policy's evaluation.
_PER_STEP = ("advantages", "old_log_prob", "old_values", "returns")
#: What a minibatch is: whole sequences (RecurrentPPO) or steps drawn from the whole rollout (the reference).
MINIBATCH_SAMPLINGS = ("sequences", "steps")
#: VAE settings when a policy trains on whole meta-episodes and none are given: VariBAD's MuJoCo configuration
#: (Zintgraf et al. 2020, its published config files): 10,000 meta-episodes kept, 10 per VAE step, 1 VAE step per
#: PPO update. Its Grid-World configuration (100,000, 25, 3) is in the zoo entries.
VAE_DEFAULTS = {"vae_buffer_size": 10_000, "vae_batch_size": 10, "vae_updates": 1}


def clipped_huber_value_loss(
    values: th.Tensor, old_values: th.Tensor, returns: th.Tensor, clip_range: float, mask: th.Tensor
) -> th.Tensor:
    """The reference implementation's value loss (VariBAD's PPO), averaged over the real steps of ``mask``.

    ``0.5 * max(Huber(v - R), Huber(v_old + clip(v - v_old, -eps, eps) - R))`` with ``eps`` the PPO clip range and
    Huber the smooth L1 loss with threshold 1.
    """
    clipped = old_values + th.clamp(values - old_values, -clip_range, clip_range)
    unclipped_loss = F.smooth_l1_loss(values, returns, reduction="none")
    clipped_loss = F.smooth_l1_loss(clipped, returns, reduction="none")
    return 0.5 * th.max(unclipped_loss, clipped_loss)[mask].mean()


def _to_floats(logged: dict[str, list[th.Tensor]]) -> dict[str, list[float]]:
    """Scalar tensors of each logged term as floats, copied from the device in one transfer."""
    names = [name for name, values in logged.items() if values]
    if not names:
        return {}
    flat = th.stack([value for name in names for value in logged[name]]).cpu().tolist()
    out, start = {}, 0
    for name in names:
        out[name], start = flat[start : start + len(logged[name])], start + len(logged[name])
    return out


def _progress_bars(callback: BaseCallback) -> list[Any]:
    """The tqdm bars of the ProgressBarCallbacks in a callback tree."""
    if isinstance(callback, CallbackList):
        return [bar for child in callback.callbacks for bar in _progress_bars(child)]
    return [callback.pbar] if isinstance(callback, ProgressBarCallback) and hasattr(callback, "pbar") else []


class MetaRecurrentPPO(RecurrentPPO):
    """RecurrentPPO for meta-RL policies: auxiliary losses, the reference's value loss, per-module gradient clipping.

    NeurIPS 2023, section 3.3 and appendix 8.1-8.3. Differences from ``RecurrentPPO.train``:

    - the policy's auxiliary losses (:meth:`~sb3_hypernet.MetaRecurrentPolicy.evaluate_actions_and_losses`, e.g.
      task inference) join the loss, each logged as ``train/aux_<name>``; the policy's
      :meth:`~sb3_hypernet.MetaRecurrentPolicy.inference_parameters` are stepped by their own Adam (eps 1e-8) at
      ``inference_learning_rate``, the rest by the policy's optimiser. Which loss reaches which parameters is the
      policy's business (its stop-gradients); the algorithm only sums, steps and logs.
    - ``value_loss="huber_clipped"``: :func:`clipped_huber_value_loss` instead of SB3's squared error;
    - ``separate_encoder_optimizer=True`` (end-to-end policies): the trajectory encoder on its own Adam (eps 1e-8)
      at the policy's learning rate, as the reference's RL2-style models;
    - ``advantage_normalization="batch"``: advantages normalised over the whole rollout once per update;
    - ``precollect_frames=N``: no update, PPO's or the VAE's, before N frames;
    - ``minibatch_sampling="steps"``: minibatches of steps drawn from the whole rollout, the GRU re-run over all of
      it for each, as the reference's PPO;
    - ``clip_grad_per_module=True``: the gradient norm of each of the policy's
      :meth:`~sb3_hypernet.MetaRecurrentPolicy.gradient_groups` (encoder, actor-critic) is clipped to
      ``max_grad_norm`` separately instead of one global norm.

    - ``pretrain_updates=N``: the first N PPO updates (rollout + training) train the policy as the multi-task
      policy of its pre-training phase (TI, TI++, TI+HN, TI++HN; NeurIPS 3.3, 8.2: 100 on the Grid-Worlds, 563 on
      MuJoCo), inside the same frame budget; then the policy switches to meta-training
      (:meth:`~sb3_hypernet.task_inference.TaskInferencePolicy.end_pretraining`). ``pretrain/updates`` and
      ``pretrain/active`` are logged, the phase labels the progress bar (``progress_bar=True``), and the switch is
      printed with ``verbose >= 1``. The count is saved with the
      model and the phase with the policy, so a checkpoint resumes in the phase it was saved in.
    - policies that train on whole meta-episodes (``trains_on_meta_episodes``: VI, VI+HN) get a
      :class:`~sb3_hypernet.common.meta_episode_buffer.MetaEpisodeBuffer` of the ``vae_buffer_size`` most recent
      ones, filled during rollouts; after each PPO update, ``vae_updates`` steps of the inference optimiser on
      ``vae_batch_size`` meta-episodes drawn from it (``policy.meta_episode_losses``, logged as
      ``train/vae_<name>``). Defaults: :data:`VAE_DEFAULTS`. The buffer is not saved (as the rollout buffer): a
      loaded model refills it.

    Policies without these methods (sb3-contrib's own) train exactly as with RecurrentPPO.

    :param value_loss: ``"mse"`` (SB3) or ``"huber_clipped"`` (reference implementation)
    :param clip_grad_per_module: clip each gradient group's norm separately (reference implementation)
    :param inference_learning_rate: learning rate of the policy's inference module (1e-3 as in NeurIPS 8.2)
    :param pretrain_updates: PPO updates of the multi-task pre-training phase (policies that have one)
    :param vae_buffer_size: meta-episodes kept for the VAE (policies that train on whole meta-episodes). Default
        10,000, VariBAD's MuJoCo setting; its Grid-World setting, 100,000 (every meta-episode of a 4e6-frame run),
        is in the zoo entries. Not tuned here: VariBAD's values, since a larger buffer trades recency for variety
        and the paper's baselines use VariBAD's code.
    :param vae_batch_size: meta-episodes per VAE step (default 10; 25 on the Grid-Worlds, as VariBAD)
    :param vae_updates: VAE steps after each PPO update (default 1; 3 on the Grid-Worlds, as VariBAD). The VAE
        sees 10 meta-episodes per update on MuJoCo and 75 on the grids, where PPO collects 16 per update.
    :param separate_encoder_optimizer: end-to-end policies (RNN, RNN+S, RNN+HN, FiLM): step the trajectory encoder
        with an Adam of its own (eps 1e-8; the policy's learning rate and schedule), as the reference does: its
        RL2-style models train the encoder on the RL loss with the VAE's optimiser, whose learning rate is the
        policy's when the decoder is disabled. False: the encoder is in the policy's optimiser (SB3's way)
    :param advantage_normalization: ``"minibatch"`` (SB3: each minibatch's advantages normalised by its own mean and
        std) or ``"batch"`` (the reference: the whole rollout's, with std + 1e-5, once per update); only with
        ``normalize_advantage=True``
    :param minibatch_sampling: ``"sequences"`` (RecurrentPPO: a minibatch is ``batch_size`` steps of whole
        sequences, so with 16 envs of 60-step meta-episodes and 4 minibatches each holds 4 envs' tasks) or ``"steps"``
        (the reference's ``feed_forward_generator``: every minibatch re-runs the GRU over the whole rollout and takes
        ``batch_size`` steps drawn at random from every env; the head runs on those steps only)
    :param precollect_frames: frames collected before the first update, PPO's and the VAE's (the reference's
        ``precollect_len``, 5000 for the VariBAD-based models and RNN, RNN+S); the frames count against
        ``total_timesteps``
    :param save_optimizer_state: whether :meth:`save` writes the optimisers' states, which resuming training needs
        (about two thirds of a zip: Adam keeps two moments per parameter). ``False`` writes zips for evaluation
        only; a model loaded from one predicts and evaluates identically and refuses to ``learn``
        (``optimizer_state_missing``). ``save(path, optimizer_state=...)`` decides for one save
    :param kwargs: everything RecurrentPPO takes
    """

    def __init__(
        self,
        policy: Any,
        env: Any,
        value_loss: str = "mse",
        clip_grad_per_module: bool = False,
        inference_learning_rate: float = 1e-3,
        separate_encoder_optimizer: bool = False,
        advantage_normalization: str = "minibatch",
        minibatch_sampling: str = "sequences",
        precollect_frames: int = 0,
        pretrain_updates: int = 0,
        vae_buffer_size: int | None = None,
        vae_batch_size: int | None = None,
        vae_updates: int | None = None,
        save_optimizer_state: bool = True,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ):
        if value_loss not in VALUE_LOSSES:
            raise ValueError(f"value_loss must be one of {', '.join(map(repr, VALUE_LOSSES))}, got {value_loss!r}")
        if advantage_normalization not in ADVANTAGE_NORMALIZATIONS:
            raise ValueError(
                f"advantage_normalization must be one of {', '.join(map(repr, ADVANTAGE_NORMALIZATIONS))}, got "
                f"{advantage_normalization!r}"
            )
        if minibatch_sampling not in MINIBATCH_SAMPLINGS:
            raise ValueError(
                f"minibatch_sampling must be one of {', '.join(map(repr, MINIBATCH_SAMPLINGS))}, got "
                f"{minibatch_sampling!r}"
            )
        if isinstance(precollect_frames, bool) or not isinstance(precollect_frames, int) or precollect_frames < 0:
            raise ValueError(f"precollect_frames must be an integer >= 0, got {precollect_frames!r}")
        self.value_loss = value_loss
        self.clip_grad_per_module = bool(clip_grad_per_module)
        self.inference_learning_rate = float(inference_learning_rate)
        self.separate_encoder_optimizer = bool(separate_encoder_optimizer)
        self.advantage_normalization = advantage_normalization
        self.minibatch_sampling = minibatch_sampling
        self.precollect_frames = precollect_frames
        if isinstance(pretrain_updates, bool) or not isinstance(pretrain_updates, int) or pretrain_updates < 0:
            raise ValueError(f"pretrain_updates must be an integer >= 0, got {pretrain_updates!r}")
        self.pretrain_updates = pretrain_updates
        self.pretrain_updates_done = 0
        self.vae_buffer_size, self.vae_batch_size, self.vae_updates = vae_buffer_size, vae_batch_size, vae_updates
        self.save_optimizer_state = bool(save_optimizer_state)
        # True once loaded from a zip saved without optimiser state: the optimisers are fresh, not the trained ones.
        self.optimizer_state_missing = False
        # Saved with the model, so that loading picks this class from what the zip records (meta_ppo.loading).
        self.algorithm_class = type(self).__name__
        self.inference_optimizer: th.optim.Optimizer | None = None
        self.meta_episode_buffer: MetaEpisodeBuffer | None = None
        super().__init__(policy, env, _init_setup_model=False, **kwargs)
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        super()._setup_model()
        self._use_sequence_buffer()
        hooks = self._policy_hooks
        if self.minibatch_sampling == "steps" and hooks is None:
            raise ValueError(
                f"minibatch_sampling='steps' needs an sb3_hypernet policy (evaluate_actions_and_losses with select); "
                f"{type(self.policy).__name__} is not one"
            )
        if self.clip_grad_per_module and hooks is None:
            raise ValueError(
                f"clip_grad_per_module needs a policy with gradient_groups() (an sb3_hypernet policy); "
                f"{type(self.policy).__name__} is not one"
            )
        self._setup_meta_episode_buffer()
        inference = self._inference_parameters()
        learning_rate = self.inference_learning_rate
        if self.separate_encoder_optimizer:
            if hooks is None or not hooks.end_to_end:
                raise ValueError(
                    f"separate_encoder_optimizer is for the end-to-end policies (RNN, RNN+S, RNN+HN, FiLM), whose "
                    f"encoder the RL loss trains; {type(self.policy).__name__} trains its encoder on its own optimiser "
                    "already (inference_learning_rate)"
                )
            learning_rate = self.lr_schedule(1)
            self.policy.optimize_encoder_apart(learning_rate)
            inference = self.policy.encoder_parameters()
        if inference:
            self.inference_optimizer = th.optim.Adam(inference, lr=learning_rate, eps=1e-8)
            # Saved as the policy's (its SB3 optimiser lives there too), where RecurrentPPO.load meets a clear error.
            self.policy.inference_optimizer = self.inference_optimizer
        if self.pretrain_updates:
            if hooks is None or not hooks.pretrains:
                raise ValueError(
                    f"pretrain_updates={self.pretrain_updates}, but {type(self.policy).__name__} has no multi-task "
                    "pre-training phase (TIPolicy, TIPlusPlusPolicy, TIHNPolicy and TIPlusPlusHNPolicy have one)"
                )
            # On load, the saved policy state (loaded after this) restores the phase it was saved in.
            if self.pretrain_updates_done < self.pretrain_updates:
                self.policy.start_pretraining()

    def _use_sequence_buffer(self) -> None:
        """Swap RecurrentPPO's rollout buffer for one that pads minibatches with batched gathers (same samples,
        far fewer host-device copies; :mod:`sb3_hypernet.common.buffers`). RecurrentPPO picks its buffer class inside
        ``_setup_model`` with no argument to change it, so the buffer is rebuilt here with the same settings."""
        old = self.rollout_buffer
        buffer_cls = SequenceDictRolloutBuffer if isinstance(old, RecurrentDictRolloutBuffer) else SequenceRolloutBuffer
        self.rollout_buffer = buffer_cls(
            old.buffer_size,
            old.observation_space,
            old.action_space,
            old.hidden_state_shape,
            old.device,
            gamma=old.gamma,
            gae_lambda=old.gae_lambda,
            n_envs=old.n_envs,
        )

    def _setup_meta_episode_buffer(self) -> None:
        settings = {name: getattr(self, name) for name in VAE_DEFAULTS}
        if self._policy_hooks is None or not self._policy_hooks.trains_on_meta_episodes:
            given = [name for name, value in settings.items() if value is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} set, but {type(self.policy).__name__} does not train on whole meta-episodes "
                    "(VIPolicy and VIHNPolicy do)"
                )
            return
        for name, value in settings.items():
            value = VAE_DEFAULTS[name] if value is None else value
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
            setattr(self, name, value)
        self.meta_episode_buffer = MetaEpisodeBuffer(self.vae_buffer_size, self.observation_space, self.n_envs)

    def _setup_learn(
        self,
        total_timesteps: int,
        callback: MaybeCallback = None,
        reset_num_timesteps: bool = True,
        tb_log_name: str = "run",
        progress_bar: bool = False,
    ) -> tuple[int, BaseCallback]:
        if self.optimizer_state_missing:
            raise ValueError(
                "this model was saved without its optimisers' states (save_optimizer_state=False or "
                "save(path, optimizer_state=False)), for evaluation: training on would restart Adam's moment "
                "estimates. Resume from a zip saved with them, or set model.optimizer_state_missing = False to train "
                "on with fresh optimisers."
            )
        total, callback = super()._setup_learn(
            total_timesteps, callback, reset_num_timesteps, tb_log_name, progress_bar
        )
        rollout = self.n_steps * self.n_envs
        end = self.num_timesteps + math.ceil(max(total - self.num_timesteps, 0) / rollout) * rollout
        if self.verbose >= 1 and end != total:
            print(
                f"Training to {end} frames, not {total}: SB3 collects whole rollouts of n_steps x n_envs = {rollout} "
                "frames"
            )
        if self.pretrain_updates and self.pretrain_updates_done < self.pretrain_updates:
            first_update = max(self.num_timesteps + rollout, math.ceil(self.precollect_frames / rollout) * rollout)
            pretraining_end = first_update + (self.pretrain_updates - self.pretrain_updates_done - 1) * rollout
            if end <= pretraining_end:
                warnings.warn(
                    f"this run ends at {end} frames, inside multi-task pre-training ({self.pretrain_updates} "
                    f"update{'s' if self.pretrain_updates != 1 else ''}, "
                    f"until {pretraining_end} frames): it trains only the multi-task policy, never the meta-trained "
                    f"{type(self.policy).__name__}. Train for more frames or lower pretrain_updates.",
                    stacklevel=4,  # the user's call of learn
                )
        return total, callback

    def _init_callback(self, callback: MaybeCallback, progress_bar: bool = False) -> BaseCallback:
        # The buffer fills from the rollouts: its recorder goes first among the callbacks of learn().
        if self.meta_episode_buffer is not None:
            recorder = MetaEpisodeRecorder(self.meta_episode_buffer)
            others = [] if callback is None else list(callback) if isinstance(callback, list) else [callback]
            callback = [recorder, *others]
        return super()._init_callback(callback, progress_bar)

    def _train_on_meta_episodes(self) -> dict[str, list[float]]:
        """``vae_updates`` steps of the inference optimiser on the policy's meta-episode losses; their terms."""
        terms: dict[str, list[float]] = defaultdict(list)
        if self.meta_episode_buffer is None or not len(self.meta_episode_buffer) or self.policy.inference_frozen:
            return terms
        for _ in range(self.vae_updates):
            batch = self.meta_episode_buffer.sample(self.vae_batch_size, self.device)
            losses = self.policy.meta_episode_losses(batch)
            self.inference_optimizer.zero_grad()
            sum(losses.values()).backward()
            self.inference_optimizer.step()
            for name, term in losses.items():
                terms[f"vae_{name}"].append(term.item())
        return terms

    def _inference_parameters(self) -> list[th.nn.Parameter]:
        return [] if self._policy_hooks is None else self._policy_hooks.inference_parameters()

    @property
    def _policy_hooks(self) -> MetaPolicyHooks | None:
        """The policy, if it declares the hooks this algorithm calls; None for sb3-contrib's own policies."""
        return self.policy if isinstance(self.policy, MetaPolicyHooks) else None

    def _excluded_save_params(self) -> list[str]:
        # Saved as a state dict (below), rebuilt by _setup_model on load.
        # The meta-episode buffer, like the rollout buffer, is not saved.
        return [*super()._excluded_save_params(), "inference_optimizer", "meta_episode_buffer"]

    def save(
        self,
        path: str | os.PathLike | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
        optimizer_state: bool | None = None,
    ) -> None:
        """Save the model as SB3 does, with or without the optimisers' states.

        :param path: where to save (``.zip`` added if missing)
        :param exclude: attributes not to save, as SB3
        :param include: attributes to save that SB3 would leave out
        :param optimizer_state: write the optimisers' states (needed to resume training); ``None``:
            ``save_optimizer_state``. Without them the zip is for evaluation only (a GridNavi RNN+HN zip: about a
            third of the size)
        """
        write = self.save_optimizer_state if optimizer_state is None else bool(optimizer_state)
        missing = self.optimizer_state_missing
        # The zip records whether it holds the optimisers' states; a model loaded without them has none to write.
        self.optimizer_state_missing = missing or not write
        try:
            super().save(path, exclude=exclude, include=include)
        finally:
            self.optimizer_state_missing = missing

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()
        if self.optimizer_state_missing:
            return [name for name in state_dicts if name == "policy"], variables
        if self.inference_optimizer is not None:
            state_dicts = [*state_dicts, "policy.inference_optimizer"]
        return state_dicts, variables

    def set_parameters(
        self,
        load_path_or_dict: str | os.PathLike | dict[str, Any],
        exact_match: bool = True,
        device: th.device | str = "auto",
    ) -> None:
        # Zips saved before 0.2 keep the inference optimiser's state under the algorithm's name.
        if not isinstance(load_path_or_dict, dict):
            _, load_path_or_dict, _ = load_from_zip_file(load_path_or_dict, device=device, load_data=False)
        params = dict(load_path_or_dict)
        if "inference_optimizer" in params:
            params["policy.inference_optimizer"] = params.pop("inference_optimizer")
        super().set_parameters(params, exact_match=exact_match, device=device)

    def _minibatches(self) -> Any:
        """(batch, selected steps or None) per minibatch of an epoch: RecurrentPPO's sequence minibatches, or, with
        ``minibatch_sampling="steps"``, the whole rollout each time with ``batch_size`` of its real steps drawn
        without replacement (the reference's random steps across every env)."""
        if self.minibatch_sampling == "sequences":
            for batch in self.rollout_buffer.get(self.batch_size):
                yield batch, None
            return
        batch = self.rollout_buffer.whole_rollout()
        real = th.nonzero(batch.mask > 1e-8).flatten()
        for select in real[th.randperm(len(real), device=real.device)].split(self.batch_size):
            yield batch, select

    def _minibatch_loss(
        self,
        batch: RecurrentDictRolloutBufferSamples,
        clip_range: float,
        clip_range_vf: float | None,
        select: th.Tensor | None = None,
    ) -> tuple[th.Tensor, dict[str, th.Tensor], th.Tensor]:
        """RecurrentPPO's loss on a minibatch (with this class's value loss and auxiliary terms), its logged
        terms, and the approximate KL divergence for early stopping; the last two as detached tensors, so that a
        minibatch waits on the device only when ``target_kl`` needs the KL (RecurrentPPO reads each with
        ``.item()``). With ``select``, the loss of those steps of ``batch`` only."""
        actions = batch.actions
        if isinstance(self.action_space, spaces.Discrete):
            actions = batch.actions.long().flatten()
        mask = batch.mask > 1e-8
        if select is not None:
            mask = th.zeros_like(mask).index_fill_(0, select, True)  # the auxiliary losses' steps
            values, log_prob, entropy, auxiliary = self.policy.evaluate_actions_and_losses(
                batch.observations, actions, batch.lstm_states, batch.episode_starts, mask, select=select
            )
            batch = batch._replace(**{name: getattr(batch, name)[select] for name in _PER_STEP})
            mask = th.ones_like(select, dtype=th.bool)
        elif self._policy_hooks is not None:
            values, log_prob, entropy, auxiliary = self.policy.evaluate_actions_and_losses(
                batch.observations, actions, batch.lstm_states, batch.episode_starts, mask
            )
        else:
            values, log_prob, entropy = self.policy.evaluate_actions(
                batch.observations, actions, batch.lstm_states, batch.episode_starts
            )
            auxiliary = {}
        values = values.flatten()
        advantages = batch.advantages
        if self.normalize_advantage and self.advantage_normalization == "minibatch":
            advantages = (advantages - advantages[mask].mean()) / (advantages[mask].std() + 1e-8)
        ratio = th.exp(log_prob - batch.old_log_prob)
        policy_loss_1 = advantages * ratio
        policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
        policy_loss = -th.mean(th.min(policy_loss_1, policy_loss_2)[mask])
        if self.value_loss == "huber_clipped":  # differs: the reference's value loss
            value_loss = clipped_huber_value_loss(values, batch.old_values, batch.returns, clip_range, mask)
        else:
            values_pred = values
            if clip_range_vf is not None:
                values_pred = batch.old_values + th.clamp(values - batch.old_values, -clip_range_vf, clip_range_vf)
            value_loss = th.mean(((batch.returns - values_pred) ** 2)[mask])
        entropy_loss = -th.mean(-log_prob[mask]) if entropy is None else -th.mean(entropy[mask])
        loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
        loss = loss + sum(auxiliary.values(), th.zeros((), device=loss.device))  # differs: auxiliary losses
        with th.no_grad():
            log_ratio = log_prob - batch.old_log_prob
            approx_kl_div = th.mean(((th.exp(log_ratio) - 1) - log_ratio)[mask])
            logged = {
                "policy_gradient_loss": policy_loss.detach(),
                "value_loss": value_loss.detach(),
                "entropy_loss": entropy_loss.detach(),
                "clip_fraction": th.mean((th.abs(ratio - 1) > clip_range).float()[mask]),
                **{f"aux_{name}": term.detach() for name, term in auxiliary.items()},
            }
        return loss, logged, approx_kl_div

    def _step(self, loss: th.Tensor) -> None:
        """Backward pass, gradient clipping (global or per module) and both optimisers' steps."""
        optimizers = [self.policy.optimizer, *([self.inference_optimizer] if self.inference_optimizer else [])]
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss.backward()
        if self.clip_grad_per_module:  # differs: each module's norm clipped on its own
            for parameters in self.policy.gradient_groups().values():
                th.nn.utils.clip_grad_norm_(parameters, self.max_grad_norm)
        else:
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
        for optimizer in optimizers:
            optimizer.step()

    def collect_rollouts(self, env: Any, callback: BaseCallback, rollout_buffer: Any, n_rollout_steps: int) -> bool:
        # The one place that sees the callbacks: label SB3's progress bar with the phase.
        if self.pretrain_updates:
            phase = (
                f"pre-training {self.pretrain_updates_done}/{self.pretrain_updates}"
                if self.policy.in_pretraining
                else "meta-training"
            )
            for progress_bar in _progress_bars(callback):
                progress_bar.set_description_str(phase)
        return super().collect_rollouts(env, callback, rollout_buffer, n_rollout_steps)

    def _count_pretraining_update(self) -> None:
        """Count an update of the pre-training phase, switch the policy to meta-training after the last one, and
        log the phase (every update, when the model has a pre-training phase)."""
        if not self.pretrain_updates:
            return
        if self.policy.in_pretraining:
            self.pretrain_updates_done += 1
            if self.pretrain_updates_done >= self.pretrain_updates:
                self.policy.end_pretraining()
                if self.verbose >= 1:
                    print(
                        f"Multi-task pre-training done after {self.pretrain_updates_done} updates "
                        f"({self.num_timesteps} frames): meta-training {type(self.policy).__name__} from now on"
                    )
        self.logger.record("pretrain/updates", self.pretrain_updates_done)
        self.logger.record("pretrain/active", int(self.policy.in_pretraining))

    def train(self) -> None:
        """RecurrentPPO's update with the differences listed in the class docstring."""
        if self.num_timesteps < self.precollect_frames:  # differs: no update before precollect_frames
            return
        if self.normalize_advantage and self.advantage_normalization == "batch":  # differs: over the whole rollout
            advantages = self.rollout_buffer.advantages
            self.rollout_buffer.advantages = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-5)
        self.policy.set_training_mode(True)
        optimizers = [self.policy.optimizer]
        if self.separate_encoder_optimizer:  # differs: the end-to-end encoder's own optimiser follows the schedule
            optimizers.append(self.inference_optimizer)
        self._update_learning_rate(optimizers)
        clip_range = self.clip_range(self._current_progress_remaining)
        clip_range_vf = None if self.clip_range_vf is None else self.clip_range_vf(self._current_progress_remaining)
        logged_steps: dict[str, list[th.Tensor]] = defaultdict(list)
        approx_kl_divs: list[th.Tensor] = []
        loss = th.zeros(())
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            for batch, select in self._minibatches():
                loss, logged, approx_kl_div = self._minibatch_loss(batch, clip_range, clip_range_vf, select)
                for name, value in logged.items():
                    logged_steps[name].append(value)
                approx_kl_divs.append(approx_kl_div)
                if self.target_kl is not None and approx_kl_div.item() > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div.item():.2f}")
                    break
                self._step(loss)
            self._n_updates += 1
            if not continue_training:
                break
        logs = _to_floats({**logged_steps, "approx_kl": approx_kl_divs})  # differs: one device sync per update
        logs.update(self._train_on_meta_episodes())  # differs: VAE steps on whole meta-episodes
        self._count_pretraining_update()

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        for name, values in logs.items():
            self.logger.record(f"train/{name}", np.mean(values))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
