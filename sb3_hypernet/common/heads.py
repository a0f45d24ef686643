"""Actor-critic heads: what each method puts on top of its conditioning input (NeurIPS 2023, 3.2 and 5).

A head plays the part of SB3's ``mlp_extractor``. It is built from a :class:`HeadSpec` (sizes, action kind,
activation, ``net_arch``) and maps ``(condition, state)`` to the actor and critic outputs, where ``condition`` is
whatever the policy conditions on: the GRU latent for RNN, RNN+S and RNN+HN; an inferred task embedding for the
task-inference methods. Heads never assume where the condition comes from; the policy passes it. Heads that
generate their output layers (hypernetworks) return the action logits / Gaussian mean and the value themselves.
"""

from __future__ import annotations

import abc
import itertools
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar, Literal

import torch as th
from torch import nn

from sb3_hypernet.common.generated_layers import FiLMLinear, GeneratedLinear, GeneratedMLP
from sb3_hypernet.common.image import observation_embedding
from sb3_hypernet.common.initializers import init_base_linear


@dataclass(frozen=True)
class HeadSpec:
    """What a head is built for.

    :param condition_dim: size of the conditioning input (the GRU latent, or an inferred task embedding)
    :param state_dim: size of the current observation (flattened)
    :param action_dim: number of actions (``Discrete``) or action dimensions (``Box``)
    :param action_kind: ``"categorical"`` or ``"gaussian"``: the actor's distribution and output-layer init
    :param net_arch: hidden layers of actor and critic, ``dict(pi=[...], vf=[...])``
    :param activation_fn: activation of the hidden layers
    :param image_shape: (height, width, channels) when the state is an image to embed with a convolutional network
        (:class:`~sb3_hypernet.common.image.ConvEmbedding`); ``None``: a linear state embedding
    """

    condition_dim: int
    state_dim: int
    action_dim: int
    action_kind: Literal["categorical", "gaussian"]
    net_arch: dict[str, list[int]] = field(default_factory=lambda: {"pi": [256, 128], "vf": [256, 128]})
    activation_fn: type[nn.Module] = nn.Tanh
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        if self.action_kind not in ("categorical", "gaussian"):
            raise ValueError(f"action_kind must be 'categorical' or 'gaussian', got {self.action_kind!r}")
        if set(self.net_arch) != {"pi", "vf"}:
            raise ValueError(f"net_arch must be dict(pi=[...], vf=[...]), got {self.net_arch!r}")


class RunningNormalizer(nn.Module):
    """Running mean/std normalisation of a policy input (the state, the belief, the task), frozen between commits.

    Statistics used for normalising change only in :meth:`commit`, so a rollout and the PPO update on it see
    the same function; :meth:`observe` only accumulates pending moments (the policy calls it on rollout steps
    and commits when the next rollout starts).

    :param size: input size
    :param clip: clip the normalised input to ``[-clip, clip]``; ``None``: no clipping (the reference's belief and
        task normalisation)
    :param epsilon: added to the variance
    """

    def __init__(self, size: int, clip: float | None = 10.0, epsilon: float = 1e-8):
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
        normalised = (x - self.mean) / th.sqrt(self.var + self.epsilon)
        return normalised if self.clip is None else normalised.clamp(-self.clip, self.clip)

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
    """Common part of the heads: embeds the conditioning input as ``tanh(Linear(condition, d))``.

    A head maps ``(condition embedding e, state embedding s or None)`` to the actor and critic outputs
    (:meth:`actor_output`, :meth:`critic_output`); ``e`` is the representation whose influence on the policy the
    latent-gradient diagnostics measure (NeurIPS 2023, section 5).

    :param spec: what the head is built for
    :param latent_embedding_dim: size of the condition embedding; ``None`` takes the condition as it is (the
        task-inference policies embed their belief or task themselves)
    """

    #: True when the head produces the distribution parameters and the value itself (no action_net/value_net).
    generates_outputs: ClassVar[bool] = False

    def __init__(self, spec: HeadSpec, latent_embedding_dim: int | None = 25):
        super().__init__()
        self.spec = spec
        self.latent_embedding = (
            nn.Identity()
            if latent_embedding_dim is None
            else nn.Sequential(nn.Linear(spec.condition_dim, latent_embedding_dim), nn.Tanh())
        )

    @property
    def latent_embedding_dim(self) -> int:
        """Size of what the networks read of the condition."""
        if isinstance(self.latent_embedding, nn.Identity):
            return self.spec.condition_dim
        return self.latent_embedding[0].out_features

    def embed(self, condition: th.Tensor, state: th.Tensor) -> tuple[th.Tensor, th.Tensor | None]:
        """(condition embedding, state embedding or None when the head does not read the state)."""
        return self.latent_embedding(condition), None

    @abc.abstractmethod
    def actor_output(self, latent: th.Tensor, state: th.Tensor | None) -> th.Tensor:
        """Actor latent (or distribution parameters when ``generates_outputs``) from the embeddings."""

    @abc.abstractmethod
    def critic_output(self, latent: th.Tensor, state: th.Tensor | None) -> th.Tensor:
        """Critic latent (or the value when ``generates_outputs``) from the embeddings."""

    def forward(self, condition: th.Tensor, state: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        latent, embedded_state = self.embed(condition, state)
        return self.actor_output(latent, embedded_state), self.critic_output(latent, embedded_state)

    def forward_actor(self, condition: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.actor_output(*self.embed(condition, state))

    def forward_critic(self, condition: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.critic_output(*self.embed(condition, state))

    def observe(self, state: th.Tensor) -> None:
        """Record rollout states for state normalisation (heads without a state path ignore them)."""


class _PlainHead(MetaPolicyHead):
    """Plain actor and critic MLPs (``net_arch``) on an input of ``input_dim`` units; SB3 adds the output layers."""

    def _build_mlps(self, input_dim: int) -> None:
        arch, activation_fn = self.spec.net_arch, self.spec.activation_fn
        self.policy_net = _mlp([input_dim, *arch["pi"]], activation_fn)
        self.value_net = _mlp([input_dim, *arch["vf"]], activation_fn)
        self.latent_dim_pi = arch["pi"][-1] if arch["pi"] else input_dim
        self.latent_dim_vf = arch["vf"][-1] if arch["vf"] else input_dim


class RNNHead(_PlainHead):
    """RL2 (NeurIPS 3.2, "RNN"): actor and critic MLPs on the condition embedding only; the state reaches the
    policy only through the GRU."""

    def __init__(self, spec: HeadSpec, latent_embedding_dim: int | None = 25):
        super().__init__(spec, latent_embedding_dim)
        self._build_mlps(self.latent_embedding_dim)

    def actor_output(self, latent: th.Tensor, state: th.Tensor | None) -> th.Tensor:
        return self.policy_net(latent)

    def critic_output(self, latent: th.Tensor, state: th.Tensor | None) -> th.Tensor:
        return self.value_net(latent)


class StateHead(MetaPolicyHead):
    """A head that reads the current state again: normalised state -> ``tanh(Linear(state, state_embedding_dim))``
    (a convolutional embedding instead when ``spec.image_shape`` is set).

    :param state_embedding_dim: size of the state embedding (256 in the paper's main results)
    :param normalize_state: normalise the state with running mean/std before embedding it
    """

    def __init__(
        self,
        spec: HeadSpec,
        latent_embedding_dim: int | None = 25,
        state_embedding_dim: int = 256,
        normalize_state: bool = True,
    ):
        super().__init__(spec, latent_embedding_dim)
        self.state_normalizer = RunningNormalizer(spec.state_dim) if normalize_state else None
        self.state_embedding = observation_embedding(spec.state_dim, state_embedding_dim, nn.Tanh, spec.image_shape)

    @property
    def state_embedding_dim(self) -> int:
        return self.state_embedding.out_features

    def embed(self, condition: th.Tensor, state: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        if self.state_normalizer is not None:
            state = self.state_normalizer(state)
        return self.latent_embedding(condition), self.state_embedding(state)

    def observe(self, state: th.Tensor) -> None:
        if self.state_normalizer is not None:
            self.state_normalizer.observe(state)


class RNNSHead(StateHead, _PlainHead):
    """RNN+S (NeurIPS section 5): actor and critic MLPs on ``[state embedding, condition embedding]``."""

    def __init__(
        self,
        spec: HeadSpec,
        latent_embedding_dim: int | None = 25,
        state_embedding_dim: int = 256,
        normalize_state: bool = True,
    ):
        super().__init__(spec, latent_embedding_dim, state_embedding_dim, normalize_state)
        self._build_mlps(self.latent_embedding_dim + self.state_embedding_dim)

    def actor_output(self, latent: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.policy_net(th.cat([state, latent], dim=-1))

    def critic_output(self, latent: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.value_net(th.cat([state, latent], dim=-1))


class ConditionedHead(StateHead):
    """Actor and critic base MLPs on the state embedding, conditioned on the condition embedding through a
    hypernetwork (separate hypernetworks for actor and critic). Subclasses choose the kind of conditioned layer
    (``layer_class``) and the constructor options it takes. The actor outputs logits or the Gaussian mean; the
    critic outputs the value.
    """

    generates_outputs = True
    #: The conditioned base layer: every weight generated, or FiLM.
    layer_class: ClassVar[type[GeneratedLinear] | type[FiLMLinear]]

    def _build_base_networks(self, hypernet_layers: list[int] | tuple[int, ...], **layer_options) -> None:
        spec = self.spec
        conditioned = partial(
            GeneratedMLP,
            cond_features=self.latent_embedding_dim,
            activation_fn=spec.activation_fn,
            hypernet_layers=list(hypernet_layers),
            layer_class=self.layer_class,
            **layer_options,
        )
        width = self.state_embedding_dim
        self.actor = conditioned([width, *spec.net_arch["pi"], spec.action_dim], output_role=spec.action_kind)
        self.critic = conditioned([width, *spec.net_arch["vf"], 1], output_role="critic")
        self.latent_dim_pi = spec.action_dim
        self.latent_dim_vf = 1

    def actor_output(self, latent: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.actor(state, latent)

    def critic_output(self, latent: th.Tensor, state: th.Tensor) -> th.Tensor:
        return self.critic(state, latent)

    def forward(self, condition: th.Tensor, state: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        if not (self.actor.reads_z_directly and self.critic.reads_z_directly):
            return super().forward(condition, state)
        # Actor and critic read the same (state, latent) pair: one outer product (and one backward through it) for
        # both first layers instead of one each. Same numbers as computing them apart.
        latent, embedded_state = self.embed(condition, state)
        outer = GeneratedLinear.outer(embedded_state, latent)
        actor = self.actor.forward_after_first(self.actor.layers[0].forward_outer(outer), latent)
        critic = self.critic.forward_after_first(self.critic.layers[0].forward_outer(outer), latent)
        return actor, critic


class HyperNetworkHead(ConditionedHead):
    """RNN+HN (NeurIPS 3.2; CoRL 4.1): every weight and bias of the actor and critic base MLPs is generated from the
    condition embedding.

    :param hyper_init: initialisation of the hypernetwork heads
        (:data:`~sb3_hypernet.common.generated_layers.HYPER_INITS`)
    :param hypernet_layers: hidden layers of the hypernetwork (none: one linear head per generated tensor)
    :param hypernet_mode: ``"factorized"`` or ``"materialized"`` computation of the generated layers
    """

    layer_class = GeneratedLinear

    def __init__(
        self,
        spec: HeadSpec,
        latent_embedding_dim: int | None = 25,
        state_embedding_dim: int = 256,
        normalize_state: bool = True,
        hyper_init: str = "bias",
        hypernet_layers: list[int] | tuple[int, ...] = (),
        hypernet_mode: str = "factorized",
    ):
        super().__init__(spec, latent_embedding_dim, state_embedding_dim, normalize_state)
        self._build_base_networks(hypernet_layers, hyper_init=hyper_init, mode=hypernet_mode)


class FiLMHead(ConditionedHead):
    """FiLM (CoRL 4.3): base MLPs with plain weights whose units are scaled and shifted per sample by a
    hypernetwork on the condition embedding; Bias-HyperInit starts every condition at scale 1, shift 0.

    :param hyper_init: ``"bias"``, ``"kaiming"``, ``"normc"`` or ``"orthogonal"``
    :param hypernet_layers: hidden layers of the hypernetwork
    """

    layer_class = FiLMLinear

    def __init__(
        self,
        spec: HeadSpec,
        latent_embedding_dim: int | None = 25,
        state_embedding_dim: int = 256,
        normalize_state: bool = True,
        hyper_init: str = "bias",
        hypernet_layers: list[int] | tuple[int, ...] = (),
    ):
        super().__init__(spec, latent_embedding_dim, state_embedding_dim, normalize_state)
        self._build_base_networks(hypernet_layers, hyper_init=hyper_init)
