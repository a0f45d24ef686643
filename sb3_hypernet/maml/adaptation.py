"""MAML's inner step as a functional update (Finn et al. 2017, section 2.2; ICML 2021 section 4 for its hypernetwork
form): the adapted parameters are a function of the initial ones, so the meta-gradient flows through the step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch as th
from torch import nn
from torch.func import functional_call


def parameters_of(module: nn.Module) -> dict[str, th.Tensor]:
    """The module's parameters by name, as the starting point of :func:`inner_step`."""
    return dict(module.named_parameters())


def forward_with(module: nn.Module, params: Mapping[str, th.Tensor], *args: Any, **kwargs: Any) -> Any:
    """``module(*args, **kwargs)`` with ``params`` in place of its parameters (``torch.func.functional_call``)."""
    return functional_call(module, dict(params), args, kwargs)


def inner_step(
    loss: th.Tensor,
    params: Mapping[str, th.Tensor],
    step_size: float | Mapping[str, float],
    first_order: bool = False,
) -> dict[str, th.Tensor]:
    """One gradient step ``theta' = theta - alpha * grad L(theta)`` on every parameter.

    :param loss: the inner loss, computed with ``params``
    :param params: the parameters the step starts from (:func:`parameters_of`, or a previous step's)
    :param step_size: alpha, one for all or one per parameter name
    :param first_order: drop the second-order term: the step's gradient is treated as a constant, so the
        meta-gradient through ``theta'`` is the gradient at ``theta'`` (first-order MAML); by default the step stays
        in the graph and the meta-gradient includes ``-alpha`` times the inner loss's Hessian
    :return: the adapted parameters by name
    """
    names = list(params)
    grads = th.autograd.grad(loss, [params[name] for name in names], create_graph=not first_order, allow_unused=True)
    adapted = {}
    for name, grad in zip(names, grads, strict=True):
        alpha = step_size[name] if isinstance(step_size, Mapping) else step_size
        adapted[name] = (
            params[name] if grad is None else params[name] - alpha * (grad.detach() if first_order else grad)
        )
    return adapted
