"""VI (VariBAD, Zintgraf et al. 2020) and VI+HN (NeurIPS 2023, section 3.3 and appendix 8.1; SPEC 3).

No task labels: the belief ``N(mu_t, sigma_t)`` the GRU forms after each step of a meta-episode is trained, as the
encoder of a VAE, to reconstruct the whole meta-episode, past and future. For every latent ``z_j ~ N(mu_j, sigma_j)``
(j = 0 .. T, after the first observation up to after the last transition) a reward decoder predicts every reward
``r_t`` (t = 0 .. T - 1) of the meta-episode, and optionally a state decoder every next state ``s_{t+1}``. The ELBO
(VariBAD's, negated, as a loss):

    sum_j [ sum_t w_r (r_hat(z_j, ...) - r_t)^2  (+ w_s ||s_hat(z_j, ...) - s_{t+1}||^2)  + w_kl KL(q_j || q_{j-1}) ]

with ``q_{-1} = N(0, I)``, summed over the ELBO terms j and the reconstruction terms t (VariBAD's default, neither
averaged) and averaged over the meta-episodes of the batch. The policy conditions on
``phi = ReLU(P_phi(stop_grad([mu, sigma])))`` as every task-inference method does, so the PPO loss never reaches
the VAE. :class:`~sb3_hypernet.MetaRecurrentPPO` trains the VAE on recent whole meta-episodes
(:mod:`~sb3_hypernet.task_inference.meta_episode_buffer`) with its own optimiser.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from sb3_hypernet.heads import HyperNetworkHead, MetaPolicyHead, RNNSHead
from sb3_hypernet.policies import _check_size
from sb3_hypernet.task_inference.policies import BeliefPolicy, check_layers, gaussian_kl, mlp

#: What a decoder can read of transition t besides the latent: s_t, a_t and s_{t+1}.
DECODER_INPUTS = ("state", "action", "next_state")


def _check_inputs(name: str, inputs: Any, allowed: tuple[str, ...]) -> list[str]:
    if not isinstance(inputs, (list, tuple)) or any(item not in allowed for item in inputs):
        raise ValueError(f"{name} must be a list drawn from {', '.join(map(repr, allowed))}, got {inputs!r}")
    if len(set(inputs)) != len(inputs):
        raise ValueError(f"{name} lists an input twice: {inputs!r}")
    return list(inputs)


def _check_samples(name: str, value: Any) -> int | None:
    if value is not None:
        _check_size(name, value)
    return value


def choose_steps(valid: th.Tensor, n_samples: int | None) -> tuple[th.Tensor, th.Tensor]:
    """Indices of steps to use per row of ``valid`` (B, L) and whether each is a real step: every step, or
    ``n_samples`` real steps per row drawn without replacement (VariBAD's subsampling of ELBO and
    reconstruction terms, for long meta-episodes)."""
    n_rows, length = valid.shape
    if n_samples is None or n_samples >= length:
        index = th.arange(length, device=valid.device).expand(n_rows, length)
        return index, valid
    keys = th.rand(n_rows, length, device=valid.device).masked_fill(~valid, 2.0)  # padding sorts last
    index = keys.argsort(dim=1)[:, :n_samples]
    return index, valid.gather(1, index)


def _gather_steps(values: th.Tensor, index: th.Tensor) -> th.Tensor:
    """``values[b, index[b, k]]`` for (B, L, ...) values and (B, K) indices."""
    expanded = index.reshape(*index.shape, *([1] * (values.dim() - 2))).expand(*index.shape, *values.shape[2:])
    return values.gather(1, expanded)


class VIPolicy(BeliefPolicy):
    """VI: VariBAD's belief on RNN+S's policy (NeurIPS 2023, appendix 8.1; Zintgraf et al. 2020). The policy reads
    the state embedding and ``phi``; the GRU encoder and the decoders train on the ELBO over whole meta-episodes
    (module docstring). Train with :class:`~sb3_hypernet.MetaRecurrentPPO`, which keeps the meta-episodes
    (``vae_buffer_size``) and runs ``vae_updates`` VAE steps of ``vae_batch_size`` meta-episodes after each PPO
    update.

    :param reward_decoder_layers: hidden layers (ReLU) of the reward decoder (VariBAD: [32, 32] on Grid-World,
        [64, 32] on MuJoCo)
    :param reward_decoder_inputs: what the reward decoder reads of transition t besides ``z``: any of ``"state"``
        (s_t), ``"action"`` (a_t), ``"next_state"`` (s_{t+1}). VariBAD: the next state on Grid-World, all three on
        MuJoCo.
    :param decode_state: also reconstruct the next states (Walker, whose tasks change the dynamics)
    :param state_decoder_layers: hidden layers of the state decoder ([64, 32])
    :param state_decoder_inputs: what the state decoder reads besides ``z``: ``"state"`` and/or ``"action"``
    :param reward_loss_weight: weight of the reward reconstruction
    :param state_loss_weight: weight of the state reconstruction
    :param kl_weight: weight of the KL terms (VariBAD: 1 on Grid-World, 0.1 on MuJoCo)
    :param n_elbo_samples: ELBO terms (latents) per meta-episode, drawn at random; None: all (VariBAD: 50 on MuJoCo)
    :param n_decode_samples: reconstruction terms per latent, drawn at random; None: all (VariBAD: 50 on Walker)
    :param latent_embedding_dim: size of ``phi`` (25; 10 on Ant-Dir)
    :param kwargs: everything :class:`~sb3_hypernet.MetaRecurrentPolicy` and the head take
    """

    head_class: ClassVar[type[MetaPolicyHead]] = RNNSHead
    #: The VAE trains on whole meta-episodes (MetaRecurrentPPO keeps them), not on PPO's minibatches.
    trains_on_meta_episodes: ClassVar[bool] = True

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        reward_decoder_layers: list[int] | tuple[int, ...] = (32, 32),
        reward_decoder_inputs: list[str] | tuple[str, ...] = ("next_state",),
        decode_state: bool = False,
        state_decoder_layers: list[int] | tuple[int, ...] = (64, 32),
        state_decoder_inputs: list[str] | tuple[str, ...] = ("state", "action"),
        reward_loss_weight: float = 1.0,
        state_loss_weight: float = 1.0,
        n_elbo_samples: int | None = None,
        n_decode_samples: int | None = None,
        **kwargs: Any,
    ):
        self._vae_config = dict(
            reward_decoder_layers=check_layers("reward_decoder_layers", reward_decoder_layers),
            reward_decoder_inputs=_check_inputs("reward_decoder_inputs", reward_decoder_inputs, DECODER_INPUTS),
            decode_state=bool(decode_state),
            state_decoder_layers=check_layers("state_decoder_layers", state_decoder_layers),
            state_decoder_inputs=_check_inputs("state_decoder_inputs", state_decoder_inputs, ("state", "action")),
            reward_loss_weight=float(reward_loss_weight),
            state_loss_weight=float(state_loss_weight),
            n_elbo_samples=_check_samples("n_elbo_samples", n_elbo_samples),
            n_decode_samples=_check_samples("n_decode_samples", n_decode_samples),
        )
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _input_sizes(self) -> dict[str, int]:
        state_dim = self._head_spec.state_dim
        action_dim = get_flattened_obs_dim(self.observation_space["prev_action"])
        return {"state": state_dim, "action": action_dim, "next_state": state_dim}

    def _build_inference_module(self) -> None:
        config, sizes, latent_dim = self._vae_config, self._input_sizes(), self._config["latent_dim"]
        reward_in = latent_dim + sum(sizes[name] for name in config["reward_decoder_inputs"])
        self.reward_decoder = mlp([reward_in, *config["reward_decoder_layers"], 1])
        if config["decode_state"]:
            state_in = latent_dim + sum(sizes[name] for name in config["state_decoder_inputs"])
            self.state_decoder = mlp([state_in, *config["state_decoder_layers"], self._head_spec.state_dim])

    def inference_parameters(self) -> list[nn.Parameter]:
        """The GRU encoder and the decoders: trained by the ELBO only."""
        decoders = [self.reward_decoder, *([self.state_decoder] if self._vae_config["decode_state"] else [])]
        return [*self.lstm_actor.parameters(), *(p for decoder in decoders for p in decoder.parameters())]

    def encode_meta_episodes(self, obs: dict[str, th.Tensor]) -> tuple[th.Tensor, th.Tensor]:
        """(features (B, T + 1, F), GRU latent (B, T + 1, 2 latent_dim)) of whole meta-episodes given as
        observations (B, T + 1, ...), the GRU starting from zero as at every meta-episode start: one GRU call."""
        n_episodes, n_steps = obs["obs"].shape[:2]
        flat = {key: value.flatten(0, 1) for key, value in obs.items()}
        features = self.extract_features(flat, self.features_extractor).reshape(n_episodes, n_steps, -1)
        zeros = th.zeros(self.lstm_actor.num_layers, n_episodes, self.lstm_actor.hidden_size, device=features.device)
        latent, _ = self.lstm_actor(features.transpose(0, 1), (zeros, zeros))
        return features, latent.transpose(0, 1)

    def meta_episode_losses(self, batch: dict[str, Any]) -> dict[str, th.Tensor]:
        """The ELBO's terms (weighted) on a batch of whole meta-episodes from
        :meth:`~sb3_hypernet.task_inference.MetaEpisodeBuffer.sample`: ``reward_reconstruction``,
        ``state_reconstruction`` (with ``decode_state``) and ``kl``."""
        config = self._vae_config
        features, latent = self.encode_meta_episodes(batch["obs"])
        n_episodes, n_latents = latent.shape[:2]
        n_transitions = n_latents - 1
        lengths = batch["lengths"].to(latent.device)
        mean, logvar = self.belief(latent)
        z = mean + th.exp(0.5 * logvar) * th.randn_like(mean)

        obs_dim, action_dim = self.features_extractor.obs_dim, self._input_sizes()["action"]
        next_state = preprocess_obs(batch["next_state"].flatten(0, 1), self.observation_space["obs"])
        inputs = {
            "state": features[:, :-1, :obs_dim],
            "action": features[:, 1:, obs_dim : obs_dim + action_dim],  # o_{t+1}'s previous action is a_t
            "next_state": next_state.float().reshape(n_episodes, n_transitions, -1),
        }
        steps = th.arange(n_latents, device=latent.device)
        elbo_index, elbo_real = choose_steps(steps <= lengths[:, None], config["n_elbo_samples"])
        decode_index, decode_real = choose_steps(steps[:-1] < lengths[:, None], config["n_decode_samples"])
        pair_real = (elbo_real[:, :, None] & decode_real[:, None, :]).float()
        z_elbo = _gather_steps(z, elbo_index)

        def decode(decoder: nn.Sequential, names: list[str]) -> th.Tensor:
            """Every chosen latent against every chosen transition: (B, n_elbo, n_decode, out).

            The first layer is linear in ``[z, inputs]``, so it is applied to the latents and to the transitions
            apart and the two summed per pair: the pairs never hold the inputs themselves, which image observations
            make thousands wide."""
            first = decoder[0]
            latent_weight, input_weight = first.weight.split(
                [z_elbo.shape[-1], first.in_features - z_elbo.shape[-1]], 1
            )
            from_transitions = first.bias.expand(n_episodes, decode_index.shape[1], -1)
            if names:
                chosen = th.cat([_gather_steps(inputs[name], decode_index) for name in names], dim=-1)
                from_transitions = from_transitions + chosen @ input_weight.T
            return decoder[1:]((z_elbo @ latent_weight.T)[:, :, None] + from_transitions[:, None])

        losses: dict[str, th.Tensor] = {}
        rewards = _gather_steps(batch["reward"].to(latent.device).float(), decode_index)
        reward_error = decode(self.reward_decoder, config["reward_decoder_inputs"]).squeeze(-1) - rewards[:, None]
        reward_loss = (reward_error.pow(2) * pair_real).sum(dim=(1, 2)).mean()
        losses["reward_reconstruction"] = config["reward_loss_weight"] * reward_loss
        if config["decode_state"]:
            targets = _gather_steps(inputs["next_state"], decode_index)
            state_error = (decode(self.state_decoder, config["state_decoder_inputs"]) - targets[:, None]).pow(2)
            state_loss = (state_error.sum(-1) * pair_real).sum(dim=(1, 2)).mean()
            losses["state_reconstruction"] = config["state_loss_weight"] * state_loss

        # Prior of each latent: the posterior before it; N(0, I) before the first.
        prior_mean = th.cat([th.zeros_like(mean[:, :1]), mean[:, :-1]], dim=1)
        prior_logvar = th.cat([th.zeros_like(logvar[:, :1]), logvar[:, :-1]], dim=1)
        kl = _gather_steps(gaussian_kl(mean, logvar, prior_mean, prior_logvar), elbo_index)
        losses["kl"] = self._kl_weight * (kl * elbo_real.float()).sum(dim=1).mean()
        return losses

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self._vae_config}


class VIHNPolicy(VIPolicy):
    """VI+HN (NeurIPS 2023, section 3.3; Beck et al. 2022): VariBAD's belief driving a hypernetwork that generates
    the policy (Bias-HyperInit), the baseline of every benchmark in the paper.

    :param hyper_init: initialisation of the hypernetwork heads (``"bias"``)
    :param hypernet_layers: hidden layers of the hypernetwork (none)
    :param hypernet_mode: ``"factorised"`` or ``"materialised"`` generated layers
    """

    head_class = HyperNetworkHead
