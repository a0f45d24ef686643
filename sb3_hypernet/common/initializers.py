"""Initialisation of base (policy) networks, shared by the plain MLP heads and Bias-HyperInit (CoRL 2022
section 4.2), as the reference initialises them."""

from __future__ import annotations

import math

import torch as th
from torch import nn

#: Gain of tanh hidden layers (``nn.init.calculate_gain("tanh")``).
TANH_GAIN = 5.0 / 3.0


def normc_(weight: th.Tensor, gain: float = 1.0) -> th.Tensor:
    """Normalised-columns init (OpenAI baselines, VariBAD): N(0, 1) rows rescaled to norm ``gain``."""
    with th.no_grad():
        weight.normal_(0.0, 1.0)
        weight.mul_(gain / weight.pow(2).sum(dim=1, keepdim=True).sqrt())
    return weight


def base_weight_(weight: th.Tensor, role: str) -> th.Tensor:
    """Sample a base-network weight (out, in) in place for a layer of ``role``.

    Roles (the reference code's inits): ``"hidden"`` normc gain 5/3; ``"gaussian"`` actor output normc gain 1;
    ``"categorical"`` actor output orthogonal gain 0.01; ``"critic"`` critic output kaiming-uniform (PyTorch's
    ``nn.Linear`` default). Base biases start at zero.
    """
    if role == "hidden":
        return normc_(weight, TANH_GAIN)
    if role == "gaussian":
        return normc_(weight, 1.0)
    if role == "categorical":
        return nn.init.orthogonal_(weight, gain=0.01)
    if role == "critic":
        return nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    raise ValueError(f"unknown base layer role {role!r}; expected hidden, gaussian, categorical or critic")


def init_base_linear(layer: nn.Linear, role: str) -> nn.Linear:
    """Initialise a plain ``nn.Linear`` of the base network: weight by ``role`` (see :func:`base_weight_`), bias 0."""
    base_weight_(layer.weight, role)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer
