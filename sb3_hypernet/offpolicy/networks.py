"""Hypernetworks of Sarafian et al., "Recomposing the Reinforcement Learning Building Blocks with Hypernetworks"
(ICML 2021): a residual primary network on the meta variable whose heads generate a small dynamic network on the
base variable (section 2, Fig. 1, eq. 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch as th
from torch import nn

from sb3_hypernet.common.renamed import renamed_attributes

#: Widths of the primary network's stages (the reference's): Linear to each width, then ``blocks_per_stage``
#: residual blocks.
PRIMARY_WIDTHS = (256, 512, 1024)
#: Head weight init of the first dynamic layer and of the last, U(+-value), as the reference's.
HEAD_INIT = (0.05, 0.008)


class ResidualBlock(nn.Module):
    """``x + Linear(ReLU(Linear(ReLU(x))))``, the reference's residual block."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))

    def forward(self, x: th.Tensor) -> th.Tensor:
        return x + self.net(x)


class PrimaryNetwork(nn.Module):
    """The primary network: for each width, a linear layer to it and residual blocks (ICML 2021, Fig. 1)."""

    def __init__(self, in_features: int, widths: Sequence[int] = PRIMARY_WIDTHS, blocks_per_stage: int = 2):
        super().__init__()
        if not widths or min(widths) < 1 or blocks_per_stage < 0:
            raise ValueError(
                f"primary widths must be positive and blocks_per_stage >= 0, got {widths}, {blocks_per_stage}"
            )
        layers: list[nn.Module] = []
        for n_in, n_out in pairwise([in_features, *widths]):
            layers.append(nn.Linear(n_in, n_out))
            layers += [ResidualBlock(n_out) for _ in range(blocks_per_stage)]
        self.net = nn.Sequential(*layers)
        self.out_features = widths[-1]

    def forward(self, z: th.Tensor) -> th.Tensor:
        return self.net(z)


class GeneratedGainLinear(nn.Module):
    """A generated layer of the base (dynamic) network, from heads on the primary embedding ``e``:
    ``(1 + g(e)) * (x W(e)) + b(e)`` (eq. 1).

    Weight and bias heads start U(+-``head_init``) with zero biases, as the reference's; the gain head starts
    at zero, so every gain is exactly 1 at initialisation.
    """

    def __init__(self, embedding: int, in_features: int, out_features: int, head_init: float):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Linear(embedding, in_features * out_features)
        self.bias = nn.Linear(embedding, out_features)
        self.gain = nn.Linear(embedding, out_features)
        for head in (self.weight, self.bias):
            nn.init.uniform_(head.weight, -head_init, head_init)
            nn.init.zeros_(head.bias)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.gain.bias)

    def gains(self, e: th.Tensor) -> th.Tensor:
        """``1 + g(e)``: (batch, out)."""
        return 1.0 + self.gain(e)

    def forward(self, x: th.Tensor, e: th.Tensor, rows: th.Tensor | None = None) -> th.Tensor:
        """The layer on ``x`` (batch, in); ``e`` the embeddings, one per row of ``x`` or, with ``rows``, the distinct
        ones and the index of each row's."""
        weight, gains, bias = self.weight(e).view(-1, self.in_features, self.out_features), self.gains(e), self.bias(e)
        if rows is not None:
            weight, gains, bias = weight[rows], gains[rows], bias[rows]
        return gains * th.bmm(x.unsqueeze(1), weight).squeeze(1) + bias


class HyperNetwork(nn.Module):
    """``f_{w(z)}(x)``: a primary network on ``z`` whose heads generate every layer of a dynamic MLP on ``x``.

    :param primary_features: size of the meta variable ``z``
    :param dynamic_features: size of the base variable ``x``
    :param out_features: output size
    :param hidden: hidden sizes of the dynamic network (ReLU; one layer of 256 in the paper)
    :param primary_widths: stage widths of the primary network
    :param blocks_per_stage: residual blocks per stage
    :param head_init: U(+-a) of the first dynamic layer's heads and of the last's (the layers between use the first)
    :param distinct_primary: run the primary network and the heads once per distinct row of ``z`` (when ``z`` needs
        no gradient): the same outputs, far less work when many rows share ``z`` (Hyper-PEARL's actor: one z per
        task for a whole batch of its transitions)
    """

    def __init__(
        self,
        primary_features: int,
        dynamic_features: int,
        out_features: int,
        hidden: Sequence[int] = (256,),
        primary_widths: Sequence[int] = PRIMARY_WIDTHS,
        blocks_per_stage: int = 2,
        head_init: tuple[float, float] = HEAD_INIT,
        distinct_primary: bool = False,
    ):
        super().__init__()
        self.distinct_primary = bool(distinct_primary)
        self.primary = PrimaryNetwork(primary_features, primary_widths, blocks_per_stage)
        sizes = [dynamic_features, *hidden, out_features]
        n_layers = len(sizes) - 1
        self.layers = nn.ModuleList(
            GeneratedGainLinear(
                self.primary.out_features, n_in, n_out, head_init[1] if i == n_layers - 1 else head_init[0]
            )
            for i, (n_in, n_out) in enumerate(pairwise(sizes))
        )

    def forward(self, z: th.Tensor, x: th.Tensor) -> th.Tensor:
        if self.distinct_primary and not (z.requires_grad and th.is_grad_enabled()) and len(z) > 1:
            distinct, rows = th.unique(z, dim=0, return_inverse=True)
            return self.base_network(x, self.primary(distinct), rows)
        return self.base_network(x, self.primary(z))

    def base_network(self, x: th.Tensor, embedding: th.Tensor, rows: th.Tensor | None = None) -> th.Tensor:
        """The base (dynamic) network on ``x`` with the layers generated from the primary ``embedding`` (with
        ``rows``: the distinct embeddings and each row's index into them)."""
        for i, layer in enumerate(self.layers):
            x = layer(x, embedding, rows)
            if i < len(self.layers) - 1:
                x = th.relu(x)
        return x


class SplitInput(nn.Module):
    """A :class:`HyperNetwork` on parts of one input vector (SB3 hands networks one tensor).

    ``primary`` and ``dynamic`` name slices of the input: ``(start, stop)`` pairs, or several pairs concatenated.
    """

    def __init__(
        self,
        network: HyperNetwork,
        primary: Sequence[tuple[int, int]],
        dynamic: Sequence[tuple[int, int]],
        output_activation: nn.Module | None = None,
    ):
        super().__init__()
        self.network = network
        self.primary_slices = [tuple(s) for s in primary]
        self.dynamic_slices = [tuple(s) for s in dynamic]
        self.output_activation = output_activation or nn.Identity()

    @staticmethod
    def _take(x: th.Tensor, slices: list[tuple[int, int]]) -> th.Tensor:
        parts = [x[..., start:stop] for start, stop in slices]
        return parts[0] if len(parts) == 1 else th.cat(parts, dim=-1)

    def forward(self, x: th.Tensor) -> th.Tensor:
        return self.output_activation(
            self.network(self._take(x, self.primary_slices), self._take(x, self.dynamic_slices))
        )


#: Names of before 0.2, for users' code.
__getattr__ = renamed_attributes(__name__, globals(), {"DynamicLayer": "GeneratedGainLinear"})
