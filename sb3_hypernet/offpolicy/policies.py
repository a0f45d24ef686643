"""SB3 policies for SAC and TD3 with hypernetwork critics and actors (Sarafian et al., ICML 2021).

- Critics: each of SB3's twin Q-networks is a :class:`~sb3_hypernet.offpolicy.networks.HyperNetwork`. Orderings
  (section 3.2, Fig. 2): ``"sa"`` (SA-Hyper, the paper's choice: the state is the primary network's input, the
  action the dynamic network's, so dQ/da flows through the small dynamic network only), ``"as"`` (AS-Hyper, the
  ablation: the action is the primary input), ``"context"`` (section 4: a task context is the primary input,
  state and action the dynamic input) and ``"sa+context"`` (Hyper-PEARL's critic, section 4: the state is the
  primary input, action and context the dynamic input, "the context as a base variable of the critic").
- Actors: SB3's MLP by default; ``hyper_actor=True`` generates the actor's hidden layers with a hypernetwork whose
  primary input is the context when there is one (section 4: context as meta variable, state as base variable),
  else the state itself.
- ``critic_learning_rate``: the critic's own learning rate (5e-5 in the reference for hyper critics). SB3
  sets every optimiser to the algorithm's learning rate at each step; the critic's optimiser scales it by
  ``critic_learning_rate / learning_rate`` (at the start of training), so a schedule applies to both.

Target networks, twin critics, ``n_critics`` and ``share_features_extractor`` are SB3's: the policies only change
which network each Q-network and the actor's trunk is.

For task families, the task descriptor of the meta-episode observation (``expose_task=True``) is the oracle context
of the paper's multi-task experiments: :class:`ContextFeaturesExtractor` puts it first in the features and tells the
networks its size; :class:`ContextHyperSACPolicy` and :class:`ContextHyperTD3Policy` use it on both networks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import gymnasium as gym
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ContinuousCritic
from stable_baselines3.common.preprocessing import get_action_dim, get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import Actor as TD3Actor
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from sb3_hypernet.common.task import TASK_KEY
from sb3_hypernet.offpolicy.networks import HEAD_INIT, PRIMARY_WIDTHS, HyperNetwork, SplitInput

#: Critic orderings: which input is the primary network's (module docstring).
CRITIC_ORDERINGS = ("sa", "as", "context", "sa+context")
#: Default architectures: SB3's actor MLP; the paper's dynamic critic (one hidden layer of 256).
DEFAULT_NET_ARCH = {"pi": [256, 256], "qf": [256]}


class ContextFeaturesExtractor(BaseFeaturesExtractor):
    """Features ``[context, state]`` from a Dict observation: the ``context_key`` entry (the task descriptor) first,
    then the ``state_keys`` entries, each flattened. ``context_dim`` tells the hypernetworks where the context ends.

    :param observation_space: a Dict space holding ``context_key`` and ``state_keys``
    :param context_key: the oracle context (default ``"task"``, what ``MetaEpisodeWrapper(expose_task=True)`` adds)
    :param state_keys: the state entries (default: ``"obs"``, the inner environment's observation)
    """

    def __init__(
        self, observation_space: spaces.Dict, context_key: str = TASK_KEY, state_keys: Sequence[str] = ("obs",)
    ):
        if not isinstance(observation_space, spaces.Dict):
            raise TypeError(
                f"ContextFeaturesExtractor needs a Dict observation space, got {type(observation_space).__name__}"
            )
        missing = [key for key in (context_key, *state_keys) if key not in observation_space.spaces]
        if missing:
            raise ValueError(
                f"observation has no {', '.join(map(repr, missing))} (keys: {', '.join(observation_space.spaces)}); "
                "a meta-episode env shows its task with expose_task=True"
            )
        sizes = [get_flattened_obs_dim(observation_space[key]) for key in (context_key, *state_keys)]
        super().__init__(observation_space, sum(sizes))
        self.context_key, self.state_keys = context_key, tuple(state_keys)
        self.context_dim = sizes[0]

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        keys = (self.context_key, *self.state_keys)
        return th.cat([observations[key].flatten(1).float() for key in keys], dim=1)


def _context_dim(features_extractor: nn.Module, ordering: str | None, what: str) -> int:
    context_dim = getattr(features_extractor, "context_dim", 0)
    if ordering in ("context", "sa+context") and not context_dim:
        raise ValueError(
            f"{what} conditions on a context, but the features extractor "
            f"{type(features_extractor).__name__} has none: use ContextFeaturesExtractor"
        )
    return context_dim


class HyperContinuousCritic(ContinuousCritic):
    """SB3's ``ContinuousCritic`` whose Q-networks are hypernetworks (module docstring).

    :param net_arch: hidden sizes of the dynamic network (the paper: ``[256]``)
    :param ordering: ``"sa"``, ``"as"`` or ``"context"``
    :param primary_widths: stage widths of the primary network (256, 512, 1024)
    :param blocks_per_stage: residual blocks per stage (2)
    :param head_init: U(+-a) of the first and last dynamic layers' heads (0.05, 0.008)
    :param freeze_for_actor: when the actions require grad (the actor's loss), build the graph with the critic's
        parameters as constants, so the backward pass computes only the action's gradient. SB3's SAC and TD3 discard
        the critic's gradients from the actor's loss (the critic's optimiser zeroes them before its next backward),
        so training is unchanged and the step skips the backward through the critic's parameters (SAC steps 1.15x
        faster: ``benchmarks/speed/offpolicy.py throughput``).

    Other parameters: SB3's ``ContinuousCritic``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_critics: int = 2,
        share_features_extractor: bool = True,
        ordering: str = "sa",
        primary_widths: Sequence[int] = PRIMARY_WIDTHS,
        blocks_per_stage: int = 2,
        head_init: tuple[float, float] = HEAD_INIT,
        freeze_for_actor: bool = True,
    ):
        if ordering not in CRITIC_ORDERINGS:
            raise ValueError(
                f"critic_ordering must be one of {', '.join(map(repr, CRITIC_ORDERINGS))}, got {ordering!r}"
            )
        self.freeze_for_actor = bool(freeze_for_actor)
        # SB3's constructor with no hidden layers: its placeholder Q-networks are replaced below, under their names.
        super().__init__(observation_space, action_space, [], features_extractor, features_dim, activation_fn,
                         normalize_images, n_critics, share_features_extractor)  # fmt: skip
        action_dim = get_action_dim(action_space)
        state, action = (0, features_dim), (features_dim, features_dim + action_dim)
        if ordering == "sa":
            primary, dynamic = [state], [action]
        elif ordering == "as":
            primary, dynamic = [action], [state]
        elif ordering == "context":
            context_dim = _context_dim(features_extractor, ordering, "the critic")
            primary, dynamic = [(0, context_dim)], [(context_dim, features_dim), action]
        else:
            context_dim = _context_dim(features_extractor, ordering, "the critic")
            primary, dynamic = [(context_dim, features_dim)], [action, (0, context_dim)]
        self.ordering = ordering
        self.q_networks = []
        for idx in range(n_critics):
            network = HyperNetwork(
                sum(b - a for a, b in primary),
                sum(b - a for a, b in dynamic),
                1,
                hidden=net_arch,
                primary_widths=primary_widths,
                blocks_per_stage=blocks_per_stage,
                head_init=head_init,
            )
            q_net = SplitInput(network, primary, dynamic)
            self.add_module(f"qf{idx}", q_net)
            self.q_networks.append(q_net)

    @contextmanager
    def _constant_parameters(self, actions: th.Tensor) -> Iterator[None]:
        """Parameters as constants while the graph of an actor's loss is built (``freeze_for_actor``)."""
        if not (self.freeze_for_actor and actions.requires_grad and th.is_grad_enabled()):
            yield
            return
        parameters = [p for p in self.parameters() if p.requires_grad]
        try:
            for p in parameters:
                p.requires_grad_(False)
            yield
        finally:
            for p in parameters:
                p.requires_grad_(True)

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        with self._constant_parameters(actions):
            return super().forward(obs, actions)

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        with self._constant_parameters(actions):
            return super().q1_forward(obs, actions)


def _hyper_trunk(
    features_extractor: nn.Module,
    features_dim: int,
    out_features: int,
    hidden: Sequence[int],
    hyper_kwargs: dict[str, Any],
    output_activation: nn.Module,
) -> SplitInput:
    """A hypernetwork on the features: primary input the context (if the extractor has one) else the state."""
    context_dim = _context_dim(features_extractor, None, "the actor")
    primary = [(0, context_dim)] if context_dim else [(0, features_dim)]
    dynamic = [(context_dim, features_dim)]
    network = HyperNetwork(primary[0][1] - primary[0][0], features_dim - context_dim, out_features, hidden=hidden,
                           **hyper_kwargs)  # fmt: skip
    return SplitInput(network, primary, dynamic, output_activation)


class HyperSACActor(SACActor):
    """SB3's SAC actor whose hidden layers a hypernetwork generates; SB3's Gaussian heads stay on top."""

    def __init__(self, *args: Any, hyper_kwargs: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.use_sde or not self.net_arch:
            raise ValueError("the hypernetwork actor needs a hidden layer (net_arch['pi']) and use_sde=False")
        self.latent_pi = _hyper_trunk(self.features_extractor, self.features_dim, self.net_arch[-1],
                                      self.net_arch[:-1], hyper_kwargs or {}, nn.ReLU())  # fmt: skip


class HyperTD3Actor(TD3Actor):
    """SB3's TD3 actor generated by a hypernetwork (output squashed by tanh, as SB3's)."""

    def __init__(self, *args: Any, hyper_kwargs: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.mu = _hyper_trunk(self.features_extractor, self.features_dim, get_action_dim(self.action_space),
                               self.net_arch, hyper_kwargs or {}, nn.Tanh())  # fmt: skip


def scaled_learning_rate(optimizer_class: type[th.optim.Optimizer]) -> type[th.optim.Optimizer]:
    """``optimizer_class`` whose steps use ``lr_scale`` times the learning rate SB3 sets on it."""

    class Scaled(optimizer_class):  # type: ignore[valid-type, misc]
        def __init__(self, params: Any, lr_scale: float = 1.0, **kwargs: Any):
            super().__init__(params, **kwargs)
            self.lr_scale = lr_scale

        def step(self, closure: Any = None) -> Any:
            rates = [group["lr"] for group in self.param_groups]
            for group in self.param_groups:
                group["lr"] = group["lr"] * self.lr_scale
            try:
                return super().step(closure)
            finally:
                for group, rate in zip(self.param_groups, rates, strict=True):
                    group["lr"] = rate

    Scaled.__name__ = Scaled.__qualname__ = f"Scaled{optimizer_class.__name__}"
    return Scaled


class _HyperOptions:
    """What the SAC and TD3 hyper policies add to SB3's (parameters: :class:`HyperSACPolicy`); placed before SB3's
    policy class in the bases, so its ``__init__`` runs first and hands the rest on."""

    actor_class: type[nn.Module]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        critic_ordering: str = "sa",
        hyper_actor: bool = False,
        primary_widths: Sequence[int] = PRIMARY_WIDTHS,
        blocks_per_stage: int = 2,
        head_init: tuple[float, float] = HEAD_INIT,
        critic_learning_rate: float | None = None,
        freeze_critic_for_actor: bool = True,
        **kwargs: Any,
    ):
        if critic_ordering not in CRITIC_ORDERINGS:
            raise ValueError(
                f"critic_ordering must be one of {', '.join(map(repr, CRITIC_ORDERINGS))}, got {critic_ordering!r}"
            )
        if critic_learning_rate is not None and not critic_learning_rate > 0:
            raise ValueError(f"critic_learning_rate must be positive, got {critic_learning_rate}")
        self.critic_ordering = critic_ordering
        self.hyper_actor = bool(hyper_actor)
        self.hyper_kwargs = {
            "primary_widths": tuple(primary_widths),
            "blocks_per_stage": blocks_per_stage,
            "head_init": tuple(head_init),
        }
        self.critic_learning_rate = critic_learning_rate
        self.freeze_critic_for_actor = bool(freeze_critic_for_actor)
        net_arch = dict(DEFAULT_NET_ARCH) if net_arch is None else net_arch
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)  # type: ignore[call-arg]

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> nn.Module:
        if not self.hyper_actor:
            return super().make_actor(features_extractor)  # type: ignore[misc]
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)  # type: ignore[attr-defined]
        return self.actor_class(**kwargs, hyper_kwargs=self.hyper_kwargs).to(self.device)  # type: ignore[attr-defined]

    def make_critic(self, features_extractor: BaseFeaturesExtractor | None = None) -> HyperContinuousCritic:
        kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)  # type: ignore[attr-defined]
        critic = HyperContinuousCritic(**kwargs, ordering=self.critic_ordering,
                                       freeze_for_actor=self.freeze_critic_for_actor, **self.hyper_kwargs)  # fmt: skip
        return critic.to(self.device)  # type: ignore[attr-defined]

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        # A policy loaded on its own gets SB3's dummy schedule (rate 0): nothing to scale.
        if self.critic_learning_rate is not None and lr_schedule(1) > 0:
            # Same parameters as SB3's critic optimiser (without a shared features extractor's), scaled steps.
            parameters = [p for group in self.critic.optimizer.param_groups for p in group["params"]]  # type: ignore[attr-defined]
            optimizer_class = scaled_learning_rate(self.optimizer_class)  # type: ignore[attr-defined]
            self.critic.optimizer = optimizer_class(  # type: ignore[attr-defined]
                parameters,
                lr=lr_schedule(1),
                lr_scale=self.critic_learning_rate / lr_schedule(1),
                **self.optimizer_kwargs,  # type: ignore[attr-defined]
            )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),  # type: ignore[misc]
            "critic_ordering": self.critic_ordering,
            "hyper_actor": self.hyper_actor,
            "critic_learning_rate": self.critic_learning_rate,
            "freeze_critic_for_actor": self.freeze_critic_for_actor,
            "share_features_extractor": self.share_features_extractor,  # type: ignore[attr-defined]
            **self.hyper_kwargs,
        }


class HyperSACPolicy(_HyperOptions, SACPolicy):
    """SAC policy with SA-Hyper twin critics (ICML 2021) and, optionally, a hypernetwork actor.

    :param critic_ordering: ``"sa"`` (default), ``"as"``, ``"context"`` or ``"sa+context"`` (module docstring)
    :param hyper_actor: generate the actor's hidden layers with a hypernetwork
    :param primary_widths: stage widths of the primary networks
    :param blocks_per_stage: residual blocks per stage
    :param head_init: U(+-a) of the first and last dynamic layers' heads
    :param critic_learning_rate: the critic's learning rate (default: the algorithm's)
    :param freeze_critic_for_actor: the actor's loss computes no critic parameter gradients (SB3 discards them;
        ``HyperContinuousCritic.freeze_for_actor``); ``False`` for algorithms that use them
    :param net_arch: SB3's; default ``dict(pi=[256, 256], qf=[256])`` (``qf``: the dynamic network's hidden layers)

    Other parameters: SB3's ``SACPolicy``.
    """

    actor_class = HyperSACActor


class HyperTD3Policy(_HyperOptions, TD3Policy):
    """TD3 policy with SA-Hyper twin critics (ICML 2021) and, optionally, a hypernetwork actor (parameters as
    :class:`HyperSACPolicy`; other parameters: SB3's ``TD3Policy``)."""

    actor_class = HyperTD3Actor


def _context_defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The paper's meta-RL model (section 4): oracle context as the primary input of actor and critic."""
    kwargs.setdefault("features_extractor_class", ContextFeaturesExtractor)
    kwargs.setdefault("critic_ordering", "context")
    kwargs.setdefault("hyper_actor", True)
    return kwargs


class ContextHyperSACPolicy(HyperSACPolicy):
    """:class:`HyperSACPolicy` for task families with the task descriptor as oracle context: the context is the
    primary input of the actor's and the critic's hypernetworks, the state (and action) their dynamic input."""

    def __init__(self, observation_space: gym.spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 **kwargs: Any):  # fmt: skip
        super().__init__(observation_space, action_space, lr_schedule, **_context_defaults(kwargs))


class ContextHyperTD3Policy(HyperTD3Policy):
    """:class:`HyperTD3Policy` with the task descriptor as oracle context (as :class:`ContextHyperSACPolicy`)."""

    def __init__(self, observation_space: gym.spaces.Space, action_space: spaces.Box, lr_schedule: Schedule,
                 **kwargs: Any):  # fmt: skip
        super().__init__(observation_space, action_space, lr_schedule, **_context_defaults(kwargs))
