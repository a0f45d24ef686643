"""PEARL's probabilistic context encoder (Rakelly et al. 2019, section 4; ICML 2021 section 4 keeps it unchanged).

Each context transition c_n = (s, a, r[, s']) of a task goes through an MLP to a Gaussian factor
Psi(z | c_n) = N(mu_n, sigma_n^2) (the variance through a softplus); the posterior over the task's latent z is their
product, a Gaussian with precision sum_n 1 / sigma_n^2 and mean sigma^2 sum_n mu_n / sigma_n^2, so the order of the
transitions does not matter. The KL divergence of the posterior to the prior N(0, I) is the information bottleneck
that PEARL adds to the critic's loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
import torch.nn.functional as F
from torch import nn

#: Smallest variance of a factor, as PEARL's ``torch.clamp(sigma_squared, min=1e-7)``.
MIN_VARIANCE = 1e-7


def product_of_gaussians(means: th.Tensor, variances: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """Mean and variance of the normalised product of Gaussian factors.

    :param means: ``(..., n_factors, latent_dim)``
    :param variances: same shape, positive
    :return: ``(mean, variance)``, each ``(..., latent_dim)``
    """
    precisions = 1.0 / variances.clamp(min=MIN_VARIANCE)
    variance = 1.0 / precisions.sum(dim=-2)
    return variance * (means * precisions).sum(dim=-2), variance


def kl_to_standard_normal(mean: th.Tensor, variance: th.Tensor) -> th.Tensor:
    """KL(N(mean, diag(variance)) || N(0, I)) per distribution, summed over the latent dimensions.

    :param mean: ``(..., latent_dim)``
    :param variance: same shape
    :return: ``(...)``
    """
    return 0.5 * (variance + mean.pow(2) - 1.0 - variance.log()).sum(dim=-1)


class ContextEncoder(nn.Module):
    """The MLP that maps each context transition to a Gaussian factor over the latent, and the posterior.

    :param input_dim: size of one context transition (obs + action + reward [+ next obs])
    :param latent_dim: size of z (5 in PEARL)
    :param net_arch: hidden layers of the MLP (PEARL: ``[200, 200, 200]``)
    """

    def __init__(self, input_dim: int, latent_dim: int, net_arch: Sequence[int] = (200, 200, 200)):
        super().__init__()
        if input_dim < 1 or latent_dim < 1:
            raise ValueError(f"input_dim and latent_dim must be >= 1, got {input_dim} and {latent_dim}")
        self.input_dim, self.latent_dim, self.net_arch = int(input_dim), int(latent_dim), tuple(net_arch)
        layers: list[nn.Module] = []
        width = self.input_dim
        for hidden in self.net_arch:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, 2 * self.latent_dim))
        self.net = nn.Sequential(*layers)

    def factors(self, context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """The Gaussian factor (mean, variance) of each transition of ``context`` (``(..., n, input_dim)``)."""
        if context.shape[-1] != self.input_dim:
            raise ValueError(
                f"context transitions have {context.shape[-1]} numbers; the encoder takes {self.input_dim}"
            )
        out = self.net(context)
        return out[..., : self.latent_dim], F.softplus(out[..., self.latent_dim :])

    def forward(self, context: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """The posterior (mean, variance) of each task from its context ``(tasks, n, input_dim)``; a task with no
        transitions (``n = 0``) gets the prior N(0, I)."""
        if context.shape[-2] == 0:
            shape = (*context.shape[:-2], self.latent_dim)
            return context.new_zeros(shape), context.new_ones(shape)
        return product_of_gaussians(*self.factors(context))
