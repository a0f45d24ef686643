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
meta-episode observation's ``task`` key (``expose_task=True``); the acting policy never reads it.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_hypernet.heads import MetaPolicyHead, RNNSHead
from sb3_hypernet.policies import MetaRecurrentPolicy, _check_size
from sb3_hypernet.wrappers import TASK_KEY


def gaussian_kl(mean: th.Tensor, logvar: th.Tensor, prior_mean: th.Tensor, prior_logvar: th.Tensor) -> th.Tensor:
    """``KL(N(mean, exp(logvar)) || N(prior_mean, exp(prior_logvar)))`` of diagonal Gaussians, summed over the last
    dimension."""
    ratio = th.exp(logvar - prior_logvar)
    return 0.5 * (ratio + (mean - prior_mean).pow(2) / th.exp(prior_logvar) - 1.0 - (logvar - prior_logvar)).sum(-1)


class TaskInferencePolicy(MetaRecurrentPolicy):
    """Base of the task-inference policies: a Gaussian belief trained by inference losses, a policy on
    ``phi = ReLU(P_phi(stop_grad([mu, sigma])))``. Subclasses choose the head and the inference target
    (:meth:`inference_target`). Train with :class:`~sb3_hypernet.MetaRecurrentPPO`.

    :param decoder_layers: hidden layers (ReLU) of the decoder from ``z`` to the target: ``[32, 32]`` on the
        Grid-Worlds, ``[64, 32]`` on MuJoCo (SPEC 3)
    :param kl_weight: weight of the KL term
    :param latent_embedding_dim: size of ``phi`` (25; 10 on Ant-Dir)
    :param kwargs: everything :class:`~sb3_hypernet.MetaRecurrentPolicy` and the head take
    """

    head_class: ClassVar[type[MetaPolicyHead]] = RNNSHead

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        decoder_layers: list[int] | tuple[int, ...] = (32, 32),
        kl_weight: float = 1.0,
        **kwargs: Any,
    ):
        if isinstance(observation_space, spaces.Dict) and TASK_KEY not in observation_space.spaces:
            raise ValueError(
                f"{type(self).__name__} learns to infer the task from the observation's {TASK_KEY!r} entry, which "
                f"this env does not have: make it with expose_task=True (gym.make(env_id, expose_task=True); in a zoo "
                f"config, env_kwargs: {{expose_task: true}})."
            )
        if not isinstance(decoder_layers, (list, tuple)):
            raise ValueError(f"decoder_layers must be a list of layer sizes, got {decoder_layers!r}")
        for size in decoder_layers:
            _check_size("decoder_layers entries", size)
        self._decoder_layers = list(decoder_layers)
        self._kl_weight = float(kl_weight)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _head_condition(self, latent_dim: int, latent_embedding_dim: int) -> tuple[int, int | None]:
        # The head reads phi as it is; P_phi lives in the policy (belief_projection).
        return latent_embedding_dim, None

    def _build_mlp_extractor(self) -> None:
        super()._build_mlp_extractor()
        belief_size = 2 * self._config["latent_dim"]
        self.belief_projection = nn.Sequential(nn.Linear(belief_size, self._head_spec.condition_dim), nn.ReLU())

    def _build_inference_module(self) -> None:
        sizes = [self._config["latent_dim"], *self._decoder_layers]
        layers: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], self.inference_target_dim()))
        self.decoder = nn.Sequential(*layers)

    def inference_target_dim(self) -> int:
        """Size of the inference target."""
        return int(spaces.flatdim(self.observation_space[TASK_KEY]))

    def inference_target(self, obs: PyTorchObs) -> th.Tensor:
        """What the decoder predicts, per step (TI Naive: the task descriptor)."""
        return obs[TASK_KEY].flatten(1).float()

    def inference_parameters(self) -> list[nn.Parameter]:
        """The GRU encoder and the decoder: trained by the inference losses only."""
        return [*self.lstm_actor.parameters(), *self.decoder.parameters()]

    @staticmethod
    def belief(latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``(mu, log sigma^2)`` of the belief from the GRU latent."""
        mean, logvar = latent.chunk(2, dim=-1)
        return mean, logvar

    def _head_inputs(self, features: th.Tensor, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
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

    def evaluate_actions_and_losses(
        self,
        obs: PyTorchObs,
        actions: th.Tensor,
        lstm_states: RNNStates,
        episode_starts: th.Tensor,
        mask: th.Tensor,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        features, latent, _ = self._encode_latent(obs, lstm_states.pi, episode_starts)
        values, log_prob, entropy = self._evaluate_head(self._head_inputs(features, latent), actions)
        return values, log_prob, entropy, self.inference_losses(obs, latent, lstm_states.pi, episode_starts, mask)

    def inference_losses(
        self,
        obs: PyTorchObs,
        latent: th.Tensor,
        initial_state: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        mask: th.Tensor,
    ) -> dict[str, th.Tensor]:
        """The ``target`` and ``kl`` losses over a batch of RecurrentPPO sequences (flattened sequence-major, as
        ``latent``), averaged over the steps where ``mask`` is True."""
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
        return {
            **super()._get_constructor_parameters(),
            "decoder_layers": self._decoder_layers,
            "kl_weight": self._kl_weight,
        }


class TINaivePolicy(TaskInferencePolicy):
    """TI Naive (NeurIPS 2023, section 3.3): infers the given task descriptor ``c_M`` (the ``task`` key); the
    policy is an MLP on the state embedding and ``phi`` (RNN+S's head). No pre-training.

    :param state_embedding_dim: size of the state embedding (256)
    :param normalize_state: running mean/std normalisation of the state input (True)
    """
