"""Task-inference policies (NeurIPS 2023, section 3.3 and appendix 8.1, Table 1; SPEC 3).

The GRU's latent is read as a Gaussian belief ``N(mu, sigma)`` over the task (``[mu, log sigma^2]``, the two linear
projections of the GRU output). An information bottleneck ``z ~ N(mu, sigma)`` feeds a decoder that predicts a
target; the policy conditions on ``phi = ReLU(P_phi(stop_grad([mu, sigma])))``. The inference module (GRU encoder
and decoder) is trained by the inference losses alone, on :class:`~sb3_hypernet.MetaRecurrentPPO`'s inference
optimiser; ``P_phi`` and the actor-critic by the PPO loss alone:

- ``target``: ``||decoder(z) - target||^2``, summed over the target's dimensions;
- ``kl``: ``KL(N(mu_t, sigma_t) || N(mu_{t-1}, sigma_{t-1}))``, the previous step's posterior as prior, ``N(0, I)``
  at the first step of a meta-episode (VariBAD's prior; the ELBO of Zintgraf et al. 2020).

Both average over the real (unpadded) steps of RecurrentPPO's sequences. Task labels reach the losses through the
meta-episode observation's ``task`` key (``expose_task=True``); the acting policy never reads it, except while it is
the multi-task policy of a pre-training phase.

Multi-task pre-training (TI, TI++, TI+HN, TI++HN; NeurIPS 3.3 and 8.2): for the first ``pretrain_updates`` PPO
updates of :class:`~sb3_hypernet.MetaRecurrentPPO` the policy is ``pi'(a | s, g(c))``, conditioned on a learned
task embedding ``g(c) = ReLU(Linear(c))`` of the same size as ``phi``; the inference target is then ``g(c)`` with
a stop-gradient. At the switch to meta-training the policy conditions on ``phi`` instead and either re-initialises
everything but ``g`` (TI, TI+HN; their inference module was frozen during pre-training) or keeps the multi-task
parameters (the ++ variants, whose inference module also trained on the pre-training trajectories).
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_hypernet.heads import HyperNetworkHead, MetaPolicyHead, RNNSHead
from sb3_hypernet.policies import MetaRecurrentPolicy, _check_size, check_task_key
from sb3_hypernet.wrappers import TASK_KEY


def gaussian_kl(mean: th.Tensor, logvar: th.Tensor, prior_mean: th.Tensor, prior_logvar: th.Tensor) -> th.Tensor:
    """``KL(N(mean, exp(logvar)) || N(prior_mean, exp(prior_logvar)))`` of diagonal Gaussians, summed over the last
    dimension."""
    ratio = th.exp(logvar - prior_logvar)
    return 0.5 * (ratio + (mean - prior_mean).pow(2) / th.exp(prior_logvar) - 1.0 - (logvar - prior_logvar)).sum(-1)


def check_layers(name: str, layers: Any) -> list[int]:
    """``layers`` as a list of hidden-layer sizes (``ValueError`` naming ``name`` otherwise)."""
    if not isinstance(layers, (list, tuple)):
        raise ValueError(f"{name} must be a list of layer sizes, got {layers!r}")
    for size in layers:
        _check_size(f"{name} entries", size)
    return list(layers)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with ReLU between them (none after the last): the decoders of SPEC 3."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class TaskEmbedding(nn.Sequential):
    """``g(c) = ReLU(Linear(c, size))``: the learned task embedding the multi-task policy conditions on (NeurIPS 3.3
    and 8.2 project the task to the size of ``phi``; the ReLU is ours, as in ``phi``)."""

    def __init__(self, task_dim: int, size: int):
        super().__init__(nn.Linear(task_dim, size), nn.ReLU())


class BeliefPolicy(MetaRecurrentPolicy):
    """What the task-inference family shares (SPEC 3): the GRU's latent read as a Gaussian belief
    ``N(mu, sigma)``, and a policy on ``phi = ReLU(P_phi(stop_grad([mu, sigma])))``, so the PPO loss never reaches
    the encoder. Subclasses add the inference losses that train it: labels (:class:`TaskInferencePolicy`) or
    meta-episode reconstruction (:class:`~sb3_hypernet.task_inference.VIPolicy`). Train with
    :class:`~sb3_hypernet.MetaRecurrentPPO`.

    :param kl_weight: weight of the KL term to the previous step's posterior
    :param latent_embedding_dim: size of ``phi`` (25; 10 on Ant-Dir)
    :param kwargs: everything :class:`~sb3_hypernet.MetaRecurrentPolicy` and the head take
    """

    head_class: ClassVar[type[MetaPolicyHead]] = RNNSHead
    end_to_end = False

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        kl_weight: float = 1.0,
        **kwargs: Any,
    ):
        self._kl_weight = float(kl_weight)
        if not self._kl_weight >= 0:  # also NaN
            raise ValueError(f"kl_weight must be a number >= 0, got {kl_weight!r}")
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _head_condition(self, latent_dim: int, latent_embedding_dim: int) -> tuple[int, int | None]:
        # The head reads phi as it is; P_phi lives in the policy (belief_projection).
        return latent_embedding_dim, None

    def _build_mlp_extractor(self) -> None:
        super()._build_mlp_extractor()
        belief_size = 2 * self._config["latent_dim"]
        self.belief_projection = nn.Sequential(nn.Linear(belief_size, self._head_spec.condition_dim), nn.ReLU())

    @property
    def in_pretraining(self) -> bool:
        """True while the policy is the multi-task policy of a pre-training phase (never, here)."""
        return False

    @staticmethod
    def belief(latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``(mu, log sigma^2)`` of the belief from the GRU latent."""
        mean, logvar = latent.chunk(2, dim=-1)
        return mean, logvar

    def _head_inputs(self, obs: PyTorchObs, features: th.Tensor, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        mean, logvar = self.belief(latent)
        # stop_grad: the PPO loss must not reach the inference module (NeurIPS 3.3).
        belief = th.cat([mean, th.exp(0.5 * logvar)], dim=-1).detach()
        return self.belief_projection(belief), features[:, : self.features_extractor.obs_dim]

    def evaluate_actions(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__} is trained by inference losses next to PPO's: train it with "
            "sb3_hypernet.MetaRecurrentPPO (rl_zoo3: python -m sb3_hypernet.train), which calls "
            "evaluate_actions_and_losses; RecurrentPPO would never train its task inference."
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "kl_weight": self._kl_weight}


class TaskInferencePolicy(BeliefPolicy):
    """Base of the label-based task-inference policies: the belief is trained to predict a target from the
    task label (:meth:`inference_target`); subclasses choose the head and the target.

    :param decoder_layers: hidden layers (ReLU) of the decoder from ``z`` to the target: ``[32, 32]`` on the
        Grid-Worlds, ``[64, 32]`` on MuJoCo (SPEC 3)
    :param kl_weight: weight of the KL term
    :param latent_embedding_dim: size of ``phi`` (25; 10 on Ant-Dir)
    :param kwargs: everything :class:`~sb3_hypernet.MetaRecurrentPolicy` and the head take
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
        **kwargs: Any,
    ):
        check_task_key(observation_space, type(self).__name__)
        self._decoder_layers = check_layers("decoder_layers", decoder_layers)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build_mlp_extractor(self) -> None:
        # Also called again by the hard reset at the end of pre-training (_build): g survives it.
        super()._build_mlp_extractor()
        if self.pretrains and not hasattr(self, "task_embedding"):
            task_dim = int(spaces.flatdim(self.observation_space[TASK_KEY]))
            self.task_embedding = TaskEmbedding(task_dim, self._head_spec.condition_dim)
            # The phase is part of the state, so a checkpoint resumes in the phase it was saved in.
            self.register_buffer("pretraining", th.tensor(False))

    @property
    def in_pretraining(self) -> bool:
        """True while the policy is the multi-task policy of the pre-training phase."""
        return self.pretrains and bool(self.pretraining)

    def start_pretraining(self) -> None:
        """Act as the multi-task policy ``pi'(a | s, g(c))`` until :meth:`end_pretraining`."""
        if not self.pretrains:
            raise ValueError(f"{type(self).__name__} has no multi-task pre-training phase")
        self.pretraining.fill_(True)

    def end_pretraining(self) -> None:
        """Switch to meta-training: condition on ``phi``; re-initialise everything but ``g`` and the inference
        module (TI, TI+HN) or keep the multi-task parameters (++)."""
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
        self.decoder = mlp([self._config["latent_dim"], *self._decoder_layers, self.inference_target_dim()])

    def inference_target_dim(self) -> int:
        """Size of the inference target."""
        return (
            self._head_spec.condition_dim if self.pretrains else int(spaces.flatdim(self.observation_space[TASK_KEY]))
        )

    def inference_target(self, obs: PyTorchObs) -> th.Tensor:
        """What the decoder predicts, per step: the task descriptor (TI Naive), or the multi-task policy's task
        embedding ``g(c)`` with a stop-gradient (the pre-trained methods)."""
        task = obs[TASK_KEY].flatten(1).float()
        return self.task_embedding(task).detach() if self.pretrains else task

    def inference_parameters(self) -> list[nn.Parameter]:
        """The GRU encoder and the decoder: trained by the inference losses only."""
        return [*self.lstm_actor.parameters(), *self.decoder.parameters()]

    def _head_inputs(self, obs: PyTorchObs, features: th.Tensor, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        if self.in_pretraining:  # the multi-task policy acts on the true task
            return self.task_embedding(obs[TASK_KEY].flatten(1).float()), features[:, : self.features_extractor.obs_dim]
        return super()._head_inputs(obs, features, latent)

    def auxiliary_losses(
        self,
        obs: PyTorchObs,
        latent: th.Tensor,
        initial_state: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        mask: th.Tensor,
    ) -> dict[str, th.Tensor]:
        """The ``target`` and ``kl`` losses over a batch of RecurrentPPO sequences (flattened sequence-major, as
        ``latent``), averaged over the steps where ``mask`` is True; none while TI and TI+HN pre-train (their
        inference module is frozen then)."""
        if self.in_pretraining and not self.reuse:
            return {}
        mean, logvar = self.belief(latent)
        z = mean + th.exp(0.5 * logvar) * th.randn_like(mean)
        target_loss = (self.decoder(z) - self.inference_target(obs)).pow(2).sum(-1)

        # The prior of each step is the posterior of the step before; a sequence's first step takes it from the
        # stored state it started from (the GRU output of the step before), or N(0, I) at a meta-episode start.
        n_seq = initial_state[0].shape[1]
        sequence_latent = latent.reshape(n_seq, -1, latent.shape[-1])
        starts = episode_starts.reshape(n_seq, -1)[:, :1, None]
        before_first = (1.0 - starts) * self.lstm_actor.to_latent(initial_state[0][-1]).unsqueeze(1)
        prior_mean, prior_logvar = self.belief(th.cat([before_first, sequence_latent[:, :-1]], dim=1).flatten(0, 1))
        kl = gaussian_kl(mean, logvar, prior_mean, prior_logvar)
        return {"target": target_loss[mask].mean(), "kl": self._kl_weight * kl[mask].mean()}

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "decoder_layers": self._decoder_layers}


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
    :param hypernet_mode: ``"factorised"`` or ``"materialised"`` generated layers
    """

    head_class = HyperNetworkHead


class TIPlusPlusHNPolicy(TIHNPolicy):
    """TI++HN (NeurIPS 2023, section 3.3): TI+HN whose meta-policy hypernetwork starts from the multi-task one,
    with inference also trained on the pre-training trajectories."""

    reuse = True


class MultiTaskHNPolicy(MetaRecurrentPolicy):
    """Multi+HN (NeurIPS 2023, appendix 8.2, Figure 14): a hypernetwork policy conditioned on the true task's
    embedding ``g(c) = ReLU(Linear(c))`` alone, the upper bound the task-inference methods approach. It reads the
    observation's ``task`` entry (``expose_task=True``); the recurrent encoder is not used.

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
        self.task_embedding = TaskEmbedding(task_dim, self._head_spec.condition_dim)

    def _head_inputs(self, obs: PyTorchObs, features: th.Tensor, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.task_embedding(obs[TASK_KEY].flatten(1).float()), features[:, : self.features_extractor.obs_dim]


class BIPlusPlusHNPolicy(TIPlusPlusHNPolicy):
    """BI++HN (NeurIPS 2023, appendix 8.1): TI++HN that infers the base network instead of the task embedding: the
    target is every weight and bias the multi-task hypernetwork generates for the true task, ``phi'(g(c))``, with a
    stop-gradient. While pre-training that is the policy's own hypernetwork; at the switch a frozen copy of it is
    kept as the target, since the meta-policy's hypernetwork (starting from it) keeps training. The decoder's output
    has one unit per generated parameter: far more compute than TI++HN.
    """

    def _build_inference_module(self) -> None:
        head = self.mlp_extractor
        # The multi-task hypernetworks the target comes from after the switch (a buffer-like frozen copy, saved
        # with the policy so a checkpoint of either phase loads).
        self.target_hypernetworks = copy.deepcopy(nn.ModuleList([head.actor, head.critic])).requires_grad_(False)
        super()._build_inference_module()

    def inference_target_dim(self) -> int:
        return sum(layer.n_generated for network in (self.mlp_extractor.actor, self.mlp_extractor.critic)
                   for layer in network.layers)  # fmt: skip

    def inference_target(self, obs: PyTorchObs) -> th.Tensor:
        """The base-network parameters the multi-task hypernetwork generates for the true task, flattened."""
        hypernetworks = (
            [self.mlp_extractor.actor, self.mlp_extractor.critic] if self.in_pretraining else self.target_hypernetworks
        )
        with th.no_grad():
            condition = self.task_embedding(obs[TASK_KEY].flatten(1).float())
            generated = []
            for network in hypernetworks:
                z = network.hypernet_trunk(condition)
                for layer in network.layers:
                    weights, biases = layer.generate(z)
                    generated += [weights.flatten(1), biases]
            return th.cat(generated, dim=1)

    def end_pretraining(self) -> None:
        super().end_pretraining()
        head = self.mlp_extractor
        self.target_hypernetworks.load_state_dict(nn.ModuleList([head.actor, head.critic]).state_dict())
