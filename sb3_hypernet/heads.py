"""Actor-critic heads on top of the trajectory encoder: RNN (RL2), RNN+S and RNN+HN (NeurIPS 2023, 3.2 and 5).

Each head plays the part of SB3's ``mlp_extractor``: it receives the encoder output ``[latent, current obs]`` and
returns the actor and critic latents (``latent_dim_pi``/``latent_dim_vf`` wide). The hypernetwork head generates
the output layers too, so its latents are the action logits / Gaussian mean and the value themselves.
"""

from __future__ import annotations

import abc
import itertools

import torch as th
from torch import nn

from sb3_hypernet.hypernet import HyperMLP
from sb3_hypernet.initializers import init_base_linear


class RunningNormalizer(nn.Module):
    """Running mean/std normalisation of the policy's state input, frozen between commits.

    Statistics used for normalising change only in :meth:`commit`, so a rollout and the PPO update on it see
    the same function; :meth:`observe` only accumulates pending moments (the policy calls it on rollout steps
    and commits when the next rollout starts).
    """

    def __init__(self, size: int, clip: float = 10.0, epsilon: float = 1e-8):
        super().__init__()
        self.clip = clip
        self.epsilon = epsilon
        self.register_buffer("mean", th.zeros(size))
        self.register_buffer("var", th.ones(size))
        self.register_buffer("count", th.zeros((), dtype=th.float64))
        # Pending moments are saved too: a model saved straight after learn() then predicts as the original does.
        self.register_buffer("pending_sum", th.zeros(size, dtype=th.float64))
        self.register_buffer("pending_sq_sum", th.zeros(size, dtype=th.float64))
        self.register_buffer("pending_count", th.zeros((), dtype=th.float64))

    def forward(self, x: th.Tensor) -> th.Tensor:
        return ((x - self.mean) / th.sqrt(self.var + self.epsilon)).clamp(-self.clip, self.clip)

    def observe(self, x: th.Tensor) -> None:
        """Accumulate a batch (batch, size) into the pending statistics."""
        x = x.detach().to(th.float64)
        self.pending_sum += x.sum(0)
        self.pending_sq_sum += x.pow(2).sum(0)
        self.pending_count += x.shape[0]

    def commit(self) -> None:
        """Merge the pending statistics into the ones used for normalising (parallel-variance formula)."""
        n = self.pending_count.item()
        if n == 0:
            return
        batch_mean = self.pending_sum / n
        batch_var = (self.pending_sq_sum / n - batch_mean.pow(2)).clamp(min=0.0)
        count = self.count.item()
        total = count + n
        delta = batch_mean - self.mean.to(th.float64)
        mean = self.mean.to(th.float64) + delta * n / total
        m2 = self.var.to(th.float64) * count + batch_var * n + delta.pow(2) * count * n / total
        self.mean.copy_(mean)
        self.var.copy_(m2 / total)
        self.count.fill_(total)
        self.pending_sum.zero_()
        self.pending_sq_sum.zero_()
        self.pending_count.zero_()


def _mlp(sizes: list[int], activation_fn: type[nn.Module]) -> nn.Sequential:
    """Hidden layers of a plain base network (normc gain 5/3, zero biases), activation after each."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [init_base_linear(nn.Linear(n_in, n_out), "hidden"), activation_fn()]
    return nn.Sequential(*layers)


class MetaPolicyHead(nn.Module, abc.ABC):
    """Common part of the heads: splits the encoder output and embeds the latent (``tanh(Linear(latent, d))``).

    A head maps ``(latent embedding e, state embedding s or None)`` to the actor and critic outputs
    (:meth:`actor_output`, :meth:`critic_output`); ``e`` is the latent representation whose influence on the policy
    the latent-gradient diagnostic measures (NeurIPS 2023, section 5).

    :param latent_size: size of the latent (``2 * latent_dim``)
    :param obs_dim: size of the current observation that follows the latent
    :param action_dim: size of the actor output (number of actions, or action dimensions)
    :param actor_output_role: ``"categorical"`` or ``"gaussian"``: base init of the actor output layer
    :param net_arch: hidden layers of actor and critic, ``dict(pi=[...], vf=[...])``
    :param activation_fn: activation of the hidden layers
    :param latent_embedding_dim: size of the latent embedding
    """

    #: True when the head produces the distribution parameters and the value itself (no action_net/value_net).
    generates_outputs = False

    def __init__(
        self,
        latent_size: int,
        obs_dim: int,
        action_dim: int,
        actor_output_role: str,
        net_arch: dict[str, list[int]],
        activation_fn: type[nn.Module],
        latent_embedding_dim: int = 25,
    ):
        super().__init__()
        self.latent_size = latent_size
        self.obs_dim = obs_dim
        self.latent_embedding = nn.Sequential(nn.Linear(latent_size, latent_embedding_dim), nn.Tanh())

    def split(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``[latent, obs]`` -> (latent, obs)."""
        return features[..., : self.latent_size], features[..., self.latent_size :]

    def embed(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:
        """(latent embedding, state embedding or None when the head does not read the state)."""
        return self.latent_embedding(self.split(features)[0]), None

    @abc.abstractmethod
    def actor_output(self, latent: th.Tensor, state: th.Tensor | None) -> th.Tensor:
        """Actor latent (or distribution parameters when ``generates_outputs``) from the embeddings."""

    @abc.abstractmethod
    def critic_output(self, latent: th.Tensor, state: th.Tensor | None) -> th.Tensor:
        """Critic latent (or the value when ``generates_outputs``) from the embeddings."""

    def forward(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        latent, state = self.embed(features)
        return self.actor_output(latent, state), self.critic_output(latent, state)

    def forward_actor(self, features: th.Tensor) -> th.Tensor:
        return self.actor_output(*self.embed(features))

    def forward_critic(self, features: th.Tensor) -> th.Tensor:
        return self.critic_output(*self.embed(features))

    def observe(self, features: th.Tensor) -> None:
        """Record rollout observations for state normalisation (heads without a state path ignore them)."""

    def commit_statistics(self) -> None:
        """Make the recorded observations part of the normalisation statistics."""


class RNNHead(MetaPolicyHead):
    """RL2 (NeurIPS 3.2, "RNN"): actor and critic MLPs on the latent embedding only; the state reaches the
    policy only through the GRU."""

    def __init__(self, latent_size, obs_dim, action_dim, actor_output_role, net_arch, activation_fn, **kwargs):
        super().__init__(latent_size, obs_dim, action_dim, actor_output_role, net_arch, activation_fn, **kwargs)
        width = self.latent_embedding[0].out_features
        self.policy_net = _mlp([width, *net_arch["pi"]], activation_fn)
        self.value_net = _mlp([width, *net_arch["vf"]], activation_fn)
        self.latent_dim_pi = net_arch["pi"][-1] if net_arch["pi"] else width
        self.latent_dim_vf = net_arch["vf"][-1] if net_arch["vf"] else width

    def actor_output(self, latent: th.Tensor, state: th.Tensor | None) -> th.Tensor:
        return self.policy_net(latent)

    def critic_output(self, latent: th.Tensor, state: th.Tensor | None) -> th.Tensor:
        return self.value_net(latent)


class StateHead(MetaPolicyHead):
    """A head that reads the current state again: normalised state -> ``tanh(Linear(obs, state_embedding_dim))``.

    :param state_embedding_dim: size of the state embedding (256 in the paper's main results)
    :param normalize_state: normalise the state with running mean/std before embedding it
    """

    def __init__(
        self,
        latent_size,
        obs_dim,
        action_dim,
        actor_output_role,
        net_arch,
        activation_fn,
        latent_embedding_dim: int = 25,
        state_embedding_dim: int = 256,
        normalize_state: bool = True,
    ):
        super().__init__(
            latent_size, obs_dim, action_dim, actor_output_role, net_arch, activation_fn, latent_embedding_dim
        )
        self.state_normalizer = RunningNormalizer(obs_dim) if normalize_state else None
        self.state_embedding = nn.Sequential(nn.Linear(obs_dim, state_embedding_dim), nn.Tanh())

    def embed(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        latent, obs = self.split(features)
        if self.state_normalizer is not None:
            obs = self.state_normalizer(obs)
        return self.latent_embedding(latent), self.state_embedding(obs)

    def observe(self, features: th.Tensor) -> None:
        if self.state_normalizer is not None:
            self.state_normalizer.observe(self.split(features)[1])

    def commit_statistics(self) -> None:
        if self.state_normalizer is not None:
            self.state_normalizer.commit()


class RNNSHead(StateHead):
    """RNN+S (NeurIPS section 5): actor and critic MLPs on ``[state embedding, latent embedding]``."""

    def __init__(self, latent_size, obs_dim, action_dim, actor_output_role, net_arch, activation_fn, **kwargs):
        super().__init__(latent_size, obs_dim, action_dim, actor_output_role, net_arch, activation_fn, **kwargs)
        width = self.latent_embedding[0].out_features + self.state_embedding[0].out_features
        self.policy_net = _mlp([width, *net_arch["pi"]], activation_fn)
        self.value_net = _mlp([width, *net_arch["vf"]], activation_fn)
        self.latent_dim_pi = net_arch["pi"][-1] if net_arch["pi"] else width
        self.latent_dim_vf = net_arch["vf"][-1] if net_arch["vf"] else width

    def actor_output(self, latent: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.policy_net(th.cat([state, latent], dim=-1))

    def critic_output(self, latent: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.value_net(th.cat([state, latent], dim=-1))


class HyperNetworkHead(StateHead):
    """RNN+HN (NeurIPS 3.2; CoRL 4.1): actor and critic base MLPs on the state embedding whose every weight
    and bias a hypernetwork generates from the latent embedding (separate hypernetworks for actor and critic).
    The actor outputs logits or the Gaussian mean; the critic outputs the value.

    :param hyper_init: initialisation of the hypernetwork heads (:data:`~sb3_hypernet.hypernet.HYPER_INITS`)
    :param hypernet_layers: hidden layers of the hypernetwork (none: one linear head per generated tensor)
    :param hypernet_mode: ``"factorised"`` or ``"materialised"`` computation of the generated layers
    """

    generates_outputs = True
    layer = "generated"

    def __init__(
        self,
        latent_size,
        obs_dim,
        action_dim,
        actor_output_role,
        net_arch,
        activation_fn,
        hyper_init: str = "bias",
        hypernet_layers: list[int] | tuple[int, ...] = (),
        hypernet_mode: str = "factorised",
        **kwargs,
    ):
        super().__init__(latent_size, obs_dim, action_dim, actor_output_role, net_arch, activation_fn, **kwargs)
        cond = self.latent_embedding[0].out_features
        width = self.state_embedding[0].out_features
        options = dict(hyper_init=hyper_init, hypernet_layers=list(hypernet_layers), layer=self.layer)
        if self.layer == "generated":
            options["mode"] = hypernet_mode
        self.actor = HyperMLP([width, *net_arch["pi"], action_dim], cond, actor_output_role, activation_fn, **options)
        self.critic = HyperMLP([width, *net_arch["vf"], 1], cond, "critic", activation_fn, **options)
        self.latent_dim_pi = action_dim
        self.latent_dim_vf = 1

    def actor_output(self, latent: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.actor(state, latent)

    def critic_output(self, latent: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.critic(state, latent)


class FiLMHead(HyperNetworkHead):
    """FiLM (CoRL 4.3): base MLPs with plain weights whose units are scaled and shifted per sample by a
    hypernetwork on the latent embedding; Bias-HyperInit starts every latent at scale 1, shift 0.

    :param hyper_init: ``"bias"``, ``"kaiming"``, ``"normc"`` or ``"orthogonal"``
    :param hypernet_layers: hidden layers of the hypernetwork
    """

    layer = "film"

    def __init__(self, latent_size, obs_dim, action_dim, actor_output_role, net_arch, activation_fn, **kwargs):
        if "hypernet_mode" in kwargs:
            raise TypeError("FiLM layers have no hypernet_mode (that option is for generated layers)")
        super().__init__(latent_size, obs_dim, action_dim, actor_output_role, net_arch, activation_fn, **kwargs)
