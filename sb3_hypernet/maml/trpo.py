"""The TRPO step of MAML's outer loop (Schulman et al. 2015; Finn et al. 2017 meta-train with it): the natural
gradient direction by conjugate gradient on the KL's Hessian-vector products, scaled to the trust region, then a
backtracking line search that keeps a step only if it lowers the surrogate loss and stays inside the KL bound.

Conjugate gradient and flat gradients are sb3-contrib's (the utilities of its TRPO).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch as th
from sb3_contrib.common.utils import conjugate_gradient_solver, flat_grad
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters


@dataclass
class TRPOStep:
    """What a TRPO step did."""

    #: Whether a step was kept (else the parameters are unchanged).
    accepted: bool
    #: The fraction of the full trust-region step kept (0 when rejected).
    step_fraction: float
    #: Surrogate loss before and after.
    loss_before: float
    loss_after: float
    #: KL between the policies before and after (at the kept step, or at the last one tried).
    kl: float
    #: Line-search steps tried.
    line_search_steps: int


def trpo_step(
    parameters: Sequence[nn.Parameter],
    surrogate: Callable[[], tuple[th.Tensor, th.Tensor]],
    max_kl: float = 1e-2,
    cg_iters: int = 10,
    damping: float = 1e-5,
    line_search_steps: int = 20,
    backtrack_ratio: float = 0.8,
) -> TRPOStep:
    """One TRPO step on ``parameters``, in place.

    :param parameters: the parameters to update
    :param surrogate: returns ``(loss, kl)`` at the current parameters: the surrogate loss, and the mean KL divergence
        between the policy before the step (fixed, computed once by the caller) and the current one
    :param max_kl: the trust region's KL bound (MAML: 1e-2)
    :param cg_iters: conjugate gradient iterations (10)
    :param damping: added to the Hessian-vector products (the reference's 1e-5)
    :param line_search_steps: backtracking steps (20)
    :param backtrack_ratio: each backtracking step scales the step by this (0.8)
    """
    parameters = list(parameters)
    loss, _ = surrogate()
    gradient = flat_grad(loss, parameters)

    # The KL's gradient, as a graph, once: every Hessian-vector product of the conjugate gradient differentiates it
    # again (the parameters do not move until the line search).
    _, kl = surrogate()
    kl_gradient = flat_grad(kl, parameters, create_graph=True, retain_graph=True)

    def hessian_vector_product(vector: th.Tensor) -> th.Tensor:
        return flat_grad(kl_gradient @ vector, parameters, retain_graph=True) + damping * vector

    direction = conjugate_gradient_solver(hessian_vector_product, gradient, max_iter=cg_iters)
    curvature = 0.5 * direction @ hessian_vector_product(direction)
    step = direction / th.sqrt(curvature / max_kl)
    old = parameters_to_vector(parameters).detach().clone()
    loss_before = float(loss.detach())
    kl_after, loss_after = float("nan"), loss_before
    with th.no_grad():
        for i in range(line_search_steps):
            fraction = backtrack_ratio**i
            vector_to_parameters(old - fraction * step, parameters)
            new_loss, new_kl = surrogate()
            kl_after, loss_after = float(new_kl), float(new_loss)
            if loss_after < loss_before and kl_after < max_kl:
                return TRPOStep(True, fraction, loss_before, loss_after, kl_after, i + 1)
        vector_to_parameters(old, parameters)
    return TRPOStep(False, 0.0, loss_before, loss_after, kl_after, line_search_steps)
