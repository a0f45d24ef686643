"""Label-based task-inference policies and the multi-task upper bound (NeurIPS 2023, section 3.3 and appendix 8.1,
Table 1).

In the reference implementation these are VariBAD models with a task decoder added (``decode_task``): the belief
(:mod:`~sb3_hypernet.common.belief`) trains, as VariBAD's VAE encoder on whole meta-episodes, on the reward
reconstruction and the KL plus a target term: ``||decoder(z_j) - target||^2`` averaged over the target's dimensions
(``vae.py: compute_task_reconstruction_loss``), summed over the latents j and over the meta-episodes of the batch.
Task labels reach the VAE through the meta-episode buffer (the observation's ``task`` key, ``expose_task=True``);
the acting policy never reads them, except while it is the multi-task policy of a pre-training phase.

Multi-task pre-training (TI, TI++, TI+HN, TI++HN, BI++HN; NeurIPS 3.3 and 8.2): for the first ``pretrain_updates``
PPO updates of :class:`~sb3_hypernet.MetaRecurrentPPO` the policy is ``pi'(a | s, g(c))``, conditioned on a learned
task embedding ``g(c) = tanh(Linear(normalise(c)))`` of the size of ``phi``; the inference target is then ``g(c)``
with a stop-gradient, computed with the current ``g`` at each VAE step. At the switch to meta-training the policy
conditions on ``phi`` instead and either re-initialises everything but ``g`` (TI, TI+HN: their VAE does not train
during pre-training) or keeps the multi-task parameters (the ++ variants, whose VAE also trains on the pre-training
trajectories).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule

from sb3_hypernet.common.belief import BeliefPolicy, TaskEmbedding, check_layers, check_loss_weight, mlp, observed_task
from sb3_hypernet.common.heads import HyperNetworkHead
from sb3_hypernet.common.policies import MetaRecurrentPolicy
from sb3_hypernet.common.policy_keywords import check_task_key
from sb3_hypernet.common.task import TASK_KEY


class TaskInferencePolicy(BeliefPolicy):
    """Base of the label-based task-inference policies: VariBAD's belief with a task decoder that predicts a target
    from ``z`` (:meth:`inference_target`); subclasses choose the head and the target.

    :param decoder_layers: hidden layers (ReLU) of the task decoder: ``[32, 32]`` on the Grid-Worlds, ``[64, 32]``
        on MuJoCo (the reference's)
    :param task_loss_weight: weight of the target term (the reference's ``task_loss_coeff`` / ``ti_coeff``, 1)
    :param kwargs: everything :class:`~sb3_hypernet.common.belief.BeliefPolicy` takes (the VAE's reward decoder,
        KL weight, ...), :class:`~sb3_hypernet.MetaRecurrentPolicy` and the head take
    """

    #: Whether the method starts with a multi-task pre-training phase (and infers g(c) instead of c).
    pretrains: ClassVar[bool] = False
    #: ++: keep the multi-task parameters at the switch and train inference during pre-training too.
    reuse: ClassVar[bool] = False

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        decoder_layers: list[int] | tuple[int, ...] = (32, 32),
        task_loss_weight: float = 1.0,
        **kwargs: Any,
    ):
        check_task_key(observation_space, type(self).__name__)
        self._decoder_layers = check_layers("decoder_layers", decoder_layers)
        self._task_loss_weight = check_loss_weight("task_loss_weight", task_loss_weight)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        # Also called again by the hard reset at the end of pre-training (_build): g survives it.
        super()._build_mlp_extractor()
        if self.pretrains and not hasattr(self, "task_embedding"):
            task_dim = int(spaces.flatdim(self.observation_space[TASK_KEY]))
            self.task_embedding = TaskEmbedding(task_dim, self._head_spec.condition_dim, self._config["activation_fn"])
            # The phase is part of the state, so a checkpoint resumes in the phase it was saved in.
            self.register_buffer("pretraining", th.tensor(False))

    @property
    def in_pretraining(self) -> bool:
        """True while the policy is the multi-task policy of the pre-training phase."""
        return self.pretrains and bool(self.pretraining)

    @property
    def inference_frozen(self) -> bool:
        """True while the VAE must not train: TI and TI+HN during pre-training (the reference's
        ``freeze_vae_during_warmup`` with a hard reset)."""
        return self.in_pretraining and not self.reuse

    def start_pretraining(self) -> None:
        """Act as the multi-task policy ``pi'(a | s, g(c))`` until :meth:`end_pretraining`."""
        if not self.pretrains:
            raise ValueError(f"{type(self).__name__} has no multi-task pre-training phase")
        self.pretraining.fill_(True)

    def end_pretraining(self) -> None:
        """Switch to meta-training: condition on ``phi``; re-initialise everything but ``g``, the VAE and the input
        statistics (TI, TI+HN) or keep the multi-task parameters (++)."""
        self.pretraining.fill_(False)
        if not self.reuse:
            learning_rate = self.optimizer.param_groups[0]["lr"]
            # The state statistics describe the states, not the policy: they survive the reset.
            normalizer = getattr(self.mlp_extractor, "state_normalizer", None)
            statistics = None if normalizer is None else normalizer.state_dict()
            self._build(self._dummy_schedule)  # head, belief projection, output layers, log std: freshly drawn
            if statistics is not None:
                self.mlp_extractor.state_normalizer.load_state_dict(statistics)
            self.to(self.device)
            self._build_optimizer(learning_rate)

    def _build_inference_module(self) -> None:
        super()._build_inference_module()
        self.task_decoder = mlp([self._config["latent_dim"], *self._decoder_layers, self.inference_target_dim()])

    def inference_target_dim(self) -> int:
        """Size of the inference target."""
        return (
            self._head_spec.condition_dim if self.pretrains else int(spaces.flatdim(self.observation_space[TASK_KEY]))
        )

    def inference_target(self, task: th.Tensor) -> th.Tensor:
        """What the task decoder predicts for tasks (B, task_dim): the task descriptor (TI Naive), or the multi-task
        policy's task embedding ``g(c)`` with a stop-gradient (the pre-trained methods)."""
        task = task.flatten(1).float()
        if not self.pretrains:
            return task
        with th.no_grad():
            return self.task_embedding(task)

    def belief_target_losses(self, z: th.Tensor, real: th.Tensor, batch: dict[str, Any]) -> dict[str, th.Tensor]:
        """The ``task`` term: squared error of the decoded target averaged over its dimensions, summed over the
        latents and the meta-episodes (the reference's ``compute_loss``)."""
        target = self.inference_target(batch["task"].to(z.device))
        error = (self.task_decoder(z) - target[:, None]).pow(2).mean(-1)
        return {"task": self._task_loss_weight * (error * real.float()).sum()}

    def _head_inputs(self, obs: PyTorchObs, features: th.Tensor, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        if self.in_pretraining:  # the multi-task policy acts on the true task
            return self.task_embedding(observed_task(obs)), features[:, : self.features_extractor.obs_dim]
        return super()._head_inputs(obs, features, latent)

    def _observe_rollout_step(self, obs: PyTorchObs, latent: th.Tensor) -> None:
        # As the reference, which passes the task to these policies throughout: both statistics always update.
        super()._observe_rollout_step(obs, latent)
        if self.pretrains:
            self.task_embedding.normalizer.observe(observed_task(obs))

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            "decoder_layers": self._decoder_layers,
            "task_loss_weight": self._task_loss_weight,
        }


class TINaivePolicy(TaskInferencePolicy):
    """TI Naive (NeurIPS 2023, section 3.3): infers the given task descriptor ``c_M`` (the ``task`` key); the
    policy is an MLP on the state embedding and ``phi`` (RNN+S's head). No pre-training.

    :param state_embedding_dim: size of the state embedding (256)
    :param normalize_state: running mean/std normalisation of the state input (True)
    """


class TIPolicy(TaskInferencePolicy):
    """TI (NeurIPS 2023, section 3.3): infers the task embedding ``g(c)`` of a multi-task policy pre-trained first;
    hard reset of everything but ``g`` at the switch. Policy: RNN+S's MLP on the state embedding and ``phi``.
    Train with ``MetaRecurrentPPO(pretrain_updates=...)``.

    :param state_embedding_dim: size of the state embedding (256)
    :param normalize_state: running mean/std normalisation of the state input (True)
    """

    pretrains = True


class TIPlusPlusPolicy(TIPolicy):
    """TI++ (NeurIPS 2023, appendix 8.1): TI that keeps the multi-task policy's parameters for meta-training and
    trains inference on the pre-training trajectories too."""

    reuse = True


class TIHNPolicy(TIPolicy):
    """TI+HN (NeurIPS 2023, appendix 8.1): TI with the policy generated by a hypernetwork from ``phi``
    (Bias-HyperInit).

    :param hyper_init: initialisation of the hypernetwork heads (``"bias"``)
    :param hypernet_layers: hidden layers of the hypernetwork (none)
    :param hypernet_mode: ``"factorized"`` or ``"materialized"`` generated layers
    """

    head_class = HyperNetworkHead


class TIPlusPlusHNPolicy(TIHNPolicy):
    """TI++HN (NeurIPS 2023, section 3.3): TI+HN whose meta-policy hypernetwork starts from the multi-task one,
    with inference also trained on the pre-training trajectories."""

    reuse = True


class MultiTaskHNPolicy(MetaRecurrentPolicy):
    """Multi+HN (NeurIPS 2023, appendix 8.2, Figure 14): a hypernetwork policy conditioned on the true task's
    embedding ``g(c) = tanh(Linear(normalise(c)))`` alone, the upper bound the task-inference methods approach. It
    reads the observation's ``task`` entry (``expose_task=True``); the recurrent encoder is not used.

    :param latent_embedding_dim: size of ``g(c)`` (25; 10 on Ant-Dir)
    :param hyper_init: initialisation of the hypernetwork heads (``"bias"``)
    """

    head_class = HyperNetworkHead
    end_to_end = False

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule, **kwargs):
        check_task_key(observation_space, type(self).__name__)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _head_condition(self, latent_dim: int, latent_embedding_dim: int) -> tuple[int, int | None]:
        return latent_embedding_dim, None

    def _build_mlp_extractor(self) -> None:
        super()._build_mlp_extractor()
        task_dim = int(spaces.flatdim(self.observation_space[TASK_KEY]))
        self.task_embedding = TaskEmbedding(task_dim, self._head_spec.condition_dim, self._config["activation_fn"])

    def _head_inputs(self, obs: PyTorchObs, features: th.Tensor, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.task_embedding(observed_task(obs)), features[:, : self.features_extractor.obs_dim]

    def _observe_rollout_step(self, obs: PyTorchObs, latent: th.Tensor) -> None:
        self.task_embedding.normalizer.observe(observed_task(obs))


class BIPlusPlusHNPolicy(TIPlusPlusHNPolicy):
    """BI++HN (NeurIPS 2023, appendix 8.1): TI++HN that infers the base network instead of the task embedding: the
    target is every weight and bias that the policy's hypernetworks generate from the true task's embedding,
    ``phi'(g(c))``, with a stop-gradient, computed with the current hypernetworks at each VAE step, as the reference's
    ``task_bn_params`` does (during pre-training they are the multi-task hypernetworks; afterwards the meta-policy's,
    which started from them). The decoder's output has one unit per generated parameter: far more compute than
    TI++HN.
    """

    def inference_target_dim(self) -> int:
        return sum(layer.n_generated for network in (self.mlp_extractor.actor, self.mlp_extractor.critic)
                   for layer in network.layers)  # fmt: skip

    def inference_target(self, task: th.Tensor) -> th.Tensor:
        """The base-network parameters the hypernetworks generate for the true tasks (B, task_dim), flattened."""
        with th.no_grad():
            condition = self.task_embedding(task.flatten(1).float())
            generated = []
            for network in (self.mlp_extractor.actor, self.mlp_extractor.critic):
                z = network.hypernet_trunk(condition)
                for layer in network.layers:
                    weights, biases = layer.generate(z)
                    generated += [weights.flatten(1), biases]
            return th.cat(generated, dim=1)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        # Models saved before the target came from the current hypernetworks kept a frozen copy: not needed now.
        for key in [key for key in state_dict if key.startswith(f"{prefix}target_hypernetworks.")]:
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
