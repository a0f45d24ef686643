"""PEARL's networks as SB3 SAC policies (Rakelly et al. 2019; ICML 2021 section 4 for the hypernetwork form).

The actor and the critics see the observation ``{"latent": z, "obs": s}`` (:func:`latent_observation_space`): the
task's latent sample and the environment's observation; :class:`~sb3_hypernet.offpolicy.ContextFeaturesExtractor`
makes the features ``[z, s]``. The context encoder (:class:`~sb3_hypernet.pearl.encoder.ContextEncoder`) is part of
the policy, with its own optimiser, so that it is saved and loaded with the networks it feeds.

- :class:`PEARLPolicy`: PEARL's MLPs (three hidden layers of 300 for the actor and each critic).
- :class:`HyperPEARLPolicy`: Hyper-PEARL. The actor is a hypernetwork with z as primary input and the state as
  dynamic input, generating every layer of the dynamic network, the mean and log-std heads included (the log-std
  head's weights start U(+-0.001)); each critic has the state as primary input and [action, z] as dynamic input
  (critic ordering ``"sa+context"``: "the context as a base variable of the critic", section 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_action_dim, get_flattened_obs_dim
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import Actor as SACActor
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from sb3_hypernet.offpolicy.networks import HyperNetwork, SplitInput
from sb3_hypernet.offpolicy.policies import ContextFeaturesExtractor, HyperSACPolicy
from sb3_hypernet.pearl.encoder import ContextEncoder

#: Key of the latent sample in the policies' observation.
LATENT_KEY = "latent"
#: Key of the environment's observation in the policies' observation.
OBS_KEY = "obs"
#: U(+-a) of the log-std head of Hyper-PEARL's actor (the reference's).
LOG_STD_HEAD_INIT = 0.001


def latent_observation_space(env_space: gym.Space, latent_dim: int) -> spaces.Dict:
    """The space of the policies' observation: ``{"latent": z, "obs": the env's observation}``.

    :param env_space: the environment's observation space (a Box)
    :param latent_dim: size of z
    """
    if not isinstance(env_space, spaces.Box):
        raise TypeError(f"PEARL needs a Box observation space, got {type(env_space).__name__}")
    latent = spaces.Box(-float("inf"), float("inf"), (int(latent_dim),), env_space.dtype)
    return spaces.Dict({LATENT_KEY: latent, OBS_KEY: env_space})


class _Slice(nn.Module):
    """Columns ``start:stop`` of the last axis (the mean and log-std halves of a generated output)."""

    def __init__(self, start: int, stop: int):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x[..., self.start : self.stop]


class HyperPEARLActor(SACActor):
    """SB3's SAC actor whose whole network, mean and log-std heads included, a hypernetwork generates from z, with the
    state as the dynamic input (Hyper-PEARL's policy). ``net_arch`` is the dynamic network's hidden layers."""

    def __init__(self, *args: Any, hyper_kwargs: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.use_sde:
            raise ValueError("HyperPEARLActor does not support use_sde")
        context_dim = getattr(self.features_extractor, "context_dim", 0)
        if not context_dim:
            raise ValueError("HyperPEARLActor needs a features extractor with a context (ContextFeaturesExtractor)")
        action_dim = get_action_dim(self.action_space)
        # z is shared by all transitions of a task (and detached): the primary network runs once per distinct z.
        network = HyperNetwork(context_dim, self.features_dim - context_dim, 2 * action_dim, hidden=self.net_arch,
                               distinct_primary=True, **(hyper_kwargs or {}))  # fmt: skip
        last = network.layers[-1]
        with th.no_grad():  # the log-std half of the last generated layer
            weight = last.weight.weight.view(last.in_features, last.out_features, -1)
            weight[:, action_dim:].uniform_(-LOG_STD_HEAD_INIT, LOG_STD_HEAD_INIT)
            last.bias.weight[action_dim:].uniform_(-LOG_STD_HEAD_INIT, LOG_STD_HEAD_INIT)
        self.latent_pi = SplitInput(network, [(0, context_dim)], [(context_dim, self.features_dim)])
        self.mu = _Slice(0, action_dim)
        self.log_std = _Slice(action_dim, 2 * action_dim)


class _PEARLOptions:
    """What PEARL's policies add to SB3's SAC policies: the context encoder and its optimiser (parameters:
    :class:`PEARLPolicy`). Placed before the SAC policy class in the bases."""

    observation_space: spaces.Dict
    action_space: spaces.Box

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        encoder_net_arch: Sequence[int] = (200, 200, 200),
        encoder_learning_rate: float = 3e-4,
        context_next_obs: bool = False,
        **kwargs: Any,
    ):
        if not isinstance(observation_space, spaces.Dict) or set(observation_space.spaces) != {LATENT_KEY, OBS_KEY}:
            raise ValueError(
                f"{type(self).__name__} takes the observation space {{'{LATENT_KEY}': z, '{OBS_KEY}': s}} "
                "(latent_observation_space); the PEARL algorithm builds it from the environment's"
            )
        if not encoder_learning_rate > 0:
            raise ValueError(f"encoder_learning_rate must be positive, got {encoder_learning_rate}")
        self.encoder_net_arch = tuple(int(n) for n in encoder_net_arch)
        self.encoder_learning_rate = float(encoder_learning_rate)
        self.context_next_obs = bool(context_next_obs)
        kwargs.setdefault("features_extractor_class", ContextFeaturesExtractor)
        kwargs.setdefault("features_extractor_kwargs", {"context_key": LATENT_KEY, "state_keys": (OBS_KEY,)})
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)  # type: ignore[call-arg]

    @property
    def latent_dim(self) -> int:
        """Size of z."""
        return int(self.observation_space[LATENT_KEY].shape[0])

    @property
    def context_dim(self) -> int:
        """Size of one context transition: (s, a, r) or (s, a, r, s')."""
        obs_dim = get_flattened_obs_dim(self.observation_space[OBS_KEY])
        return obs_dim * (2 if self.context_next_obs else 1) + get_action_dim(self.action_space) + 1

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        self.encoder = ContextEncoder(self.context_dim, self.latent_dim, self.encoder_net_arch)
        self.encoder.optimizer = self.optimizer_class(  # type: ignore[attr-defined]
            self.encoder.parameters(),
            lr=self.encoder_learning_rate,
            **self.optimizer_kwargs,  # type: ignore[attr-defined]
        )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),  # type: ignore[misc]
            "encoder_net_arch": self.encoder_net_arch,
            "encoder_learning_rate": self.encoder_learning_rate,
            "context_next_obs": self.context_next_obs,
        }


class PEARLPolicy(_PEARLOptions, SACPolicy):
    """PEARL's policy: SB3's SAC actor and twin critics on ``[z, s]`` (PEARL's sizes: three hidden layers of 300), and
    the context encoder.

    :param encoder_net_arch: hidden layers of the context encoder (PEARL: 200, 200, 200)
    :param encoder_learning_rate: the encoder's learning rate (3e-4)
    :param context_next_obs: context transitions include the next observation (PEARL's ``use_next_obs_in_context``,
        off by default)
    :param net_arch: SB3's; default ``[300, 300, 300]`` for actor and critics

    Other parameters: SB3's ``SACPolicy``.
    """

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.Box, lr_schedule: Schedule,
                 **kwargs: Any):  # fmt: skip
        kwargs.setdefault("net_arch", [300, 300, 300])
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class HyperPEARLPolicy(_PEARLOptions, HyperSACPolicy):
    """Hyper-PEARL's policy (ICML 2021 section 4): the actor a hypernetwork from z on the state
    (:class:`HyperPEARLActor`), each critic a hypernetwork from the state on [action, z], and the context encoder.

    Defaults as the reference: dynamic networks with one hidden layer of 256 (``net_arch=dict(pi=[256], qf=[256])``),
    the critics' learning rate 5e-5 (``critic_learning_rate``; the algorithm's ``learning_rate``, the actor's, is 1e-4
    in the reference's configuration).

    Parameters: :class:`PEARLPolicy`'s and :class:`~sb3_hypernet.offpolicy.HyperSACPolicy`'s.
    """

    actor_class = HyperPEARLActor

    def __init__(self, observation_space: spaces.Dict, action_space: spaces.Box, lr_schedule: Schedule,
                 **kwargs: Any):  # fmt: skip
        kwargs.setdefault("net_arch", {"pi": [256], "qf": [256]})
        kwargs.setdefault("critic_ordering", "sa+context")
        kwargs.setdefault("hyper_actor", True)
        kwargs.setdefault("critic_learning_rate", 5e-5)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)
