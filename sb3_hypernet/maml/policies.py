"""MAML's Gaussian policies (Finn et al. 2017) and their context and hypernetwork forms (ICML 2021, section 4).

Every policy reads the observation ``{"obs": s, "context": c}`` (:func:`context_observation_space`): c is the
task's oracle context, the task descriptor rescaled to [0, 1] by the task space (the reference's velocity
``(v - min) / (max - min)``; a direction of -1 or 1 becomes 0 or 1). The plain MLP ignores it.

- :class:`MAMLPolicy`: MAML's MLP on s (two hidden layers of 100, ReLU), a state-independent log-std.
- :class:`ContextMAMLPolicy`: the same MLP on [c, s] (Context-MAML).
- :class:`HyperMAMLPolicy`: a hypernetwork with c as primary input and s as dynamic input (Hyper-MAML): the primary
  network of :mod:`sb3_hypernet.offpolicy.networks` generates a dynamic network with one hidden layer of 256.

All their parameters take MAML's inner step (:func:`~sb3_hypernet.maml.inner_step`), which runs the policy with
``torch.func.functional_call``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn
from torch.distributions import Normal

from sb3_hypernet.offpolicy.networks import HEAD_INIT, PRIMARY_WIDTHS, HyperNetwork

#: Keys of the policies' observation.
OBS_KEY, CONTEXT_KEY = "obs", "context"


def context_observation_space(env_space: spaces.Space, context_dim: int) -> spaces.Dict:
    """``{"obs": the env's observation, "context": c in [0, 1]^context_dim}``."""
    if not isinstance(env_space, spaces.Box):
        raise TypeError(f"MAML needs a Box observation space, got {type(env_space).__name__}")
    return spaces.Dict({OBS_KEY: env_space, CONTEXT_KEY: spaces.Box(0.0, 1.0, (int(context_dim),), np.float32)})


def _mlp(in_features: int, net_arch: Sequence[int], out_features: int, activation_fn: type[nn.Module]) -> nn.Module:
    layers: list[nn.Module] = []
    for width in net_arch:
        layers += [nn.Linear(in_features, width), activation_fn()]
        in_features = width
    return nn.Sequential(*layers, nn.Linear(in_features, out_features))


class MAMLPolicy(BasePolicy):
    """MAML's Gaussian MLP policy on the state.

    :param observation_space: ``{"obs", "context"}`` (:func:`context_observation_space`)
    :param action_space: a Box
    :param lr_schedule: unused (MAML's outer step is TRPO's); SB3's policy signature
    :param net_arch: hidden layers (MAML: 100, 100)
    :param activation_fn: activation (ReLU)
    :param log_std_init: initial log-std of every action dimension (0: std 1, as the reference)
    """

    #: Whether the network reads the context.
    uses_context = False

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Any = None,
        net_arch: Sequence[int] = (100, 100),
        activation_fn: type[nn.Module] = nn.ReLU,
        log_std_init: float = 0.0,
        **kwargs: Any,
    ):
        if not isinstance(observation_space, spaces.Dict) or set(observation_space.spaces) != {OBS_KEY, CONTEXT_KEY}:
            raise ValueError(
                f"{type(self).__name__} takes the observation space {{'{OBS_KEY}': s, '{CONTEXT_KEY}': c}} "
                "(context_observation_space); the MAML algorithm builds it from the environment's"
            )
        super().__init__(observation_space, action_space, squash_output=False, **kwargs)
        self.net_arch, self.activation_fn, self.log_std_init = tuple(net_arch), activation_fn, float(log_std_init)
        self.obs_dim = int(np.prod(observation_space[OBS_KEY].shape))
        self.context_dim = int(observation_space[CONTEXT_KEY].shape[0])
        self.action_dim = get_action_dim(action_space)
        self.mean_net = self._make_mean_net()
        self.log_std = nn.Parameter(th.full((self.action_dim,), self.log_std_init))

    def _make_mean_net(self) -> nn.Module:
        return _mlp(self.obs_dim, self.net_arch, self.action_dim, self.activation_fn)

    def mean_actions(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        """The Gaussian's mean for a batch of observations."""
        return self.mean_net(obs[OBS_KEY].float())

    def forward(self, obs: PyTorchObs) -> Normal:  # type: ignore[override]
        """The action distribution (independent Gaussians; sum ``log_prob`` over the last axis)."""
        mean = self.mean_actions(obs)  # type: ignore[arg-type]
        return Normal(mean, self.log_std.exp().expand_as(mean))

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        distribution = self(observation)
        return distribution.mean if deterministic else distribution.sample()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {
            **super()._get_constructor_parameters(),
            "net_arch": self.net_arch,
            "activation_fn": self.activation_fn,
            "log_std_init": self.log_std_init,
        }


class ContextMAMLPolicy(MAMLPolicy):
    """Context-MAML: MAML's MLP on ``[c, s]`` (parameters: :class:`MAMLPolicy`)."""

    uses_context = True

    def _make_mean_net(self) -> nn.Module:
        return _mlp(self.context_dim + self.obs_dim, self.net_arch, self.action_dim, self.activation_fn)

    def mean_actions(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        return self.mean_net(th.cat([obs[CONTEXT_KEY].float(), obs[OBS_KEY].float()], dim=-1))


class HyperMAMLPolicy(MAMLPolicy):
    """Hyper-MAML: the mean from a hypernetwork with the context c as primary input and the state as dynamic input
    (one dynamic hidden layer of 256, the primary network's stages 256-512-1024 with two residual blocks each; heads
    U(+-0.05) and U(+-0.008)); the log-std a parameter as in :class:`MAMLPolicy`.

    :param net_arch: the dynamic network's hidden layers (256)
    :param primary_widths: stage widths of the primary network
    :param blocks_per_stage: residual blocks per stage
    :param head_init: U(+-a) of the first and last generated layers' heads

    Other parameters: :class:`MAMLPolicy`.
    """

    uses_context = True

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Box,
        lr_schedule: Any = None,
        net_arch: Sequence[int] = (256,),
        primary_widths: Sequence[int] = PRIMARY_WIDTHS,
        blocks_per_stage: int = 2,
        head_init: tuple[float, float] = HEAD_INIT,
        **kwargs: Any,
    ):
        self.hyper_kwargs = {"primary_widths": tuple(primary_widths), "blocks_per_stage": int(blocks_per_stage),
                             "head_init": tuple(head_init)}  # fmt: skip
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch, **kwargs)

    def _make_mean_net(self) -> nn.Module:
        # One context per task: the primary network runs once per distinct context of a batch.
        return HyperNetwork(self.context_dim, self.obs_dim, self.action_dim, hidden=self.net_arch,
                            distinct_primary=True, **self.hyper_kwargs)  # fmt: skip

    def mean_actions(self, obs: dict[str, th.Tensor]) -> th.Tensor:
        state, context = obs[OBS_KEY].float(), obs[CONTEXT_KEY].float()
        leading = state.shape[:-1]  # (batch,) or (T, N) for a batch of episodes
        mean = self.mean_net(context.reshape(-1, context.shape[-1]), state.reshape(-1, state.shape[-1]))
        return mean.reshape(*leading, -1)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self.hyper_kwargs}
