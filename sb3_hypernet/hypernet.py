"""Hypernetworks: layers whose weights and biases are generated per sample, and their initialisation.

CoRL 2022 sections 4.1-4.2 and NeurIPS 2023 section 3.2. A generated layer computes ``y = W(z) x + b(z)`` where
``W(z)`` and ``b(z)`` come from linear heads on the conditioning vector ``z``. With ``z' = [z, 1]`` and
``x' = [x, 1]`` the weight head, the bias head and both head biases form one tensor ``A`` of shape
(out, in + 1, cond + 1) with ``y_o = sum_ik A[o, i, k] x'_i z'_k``: one matmul on the outer product ``x' z'^T``
gives the layer's output without materialising a weight matrix per sample (SPEC 2's factorised form).
"""

from __future__ import annotations

import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_hypernet.initializers import base_weight_


class GeneratedLinear(nn.Module):
    """A linear layer of a base network whose weight and bias a linear hypernetwork head generates from ``z``.

    ``self.weight[o, i, k]`` holds, for ``i < in_features``: the weight-generating head (``k < cond_features``)
    and its bias (``k == cond_features``, the part of ``W`` shared by all ``z``); for ``i == in_features``: the
    bias-generating head and its bias.

    :param in_features: base layer input size
    :param out_features: base layer output size
    :param cond_features: size of the conditioning vector ``z``
    :param role: base init of the generated layer (see :func:`sb3_hypernet.initializers.base_weight_`)
    """

    def __init__(self, in_features: int, out_features: int, cond_features: int, role: str = "hidden"):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.cond_features = cond_features
        self.role = role
        self.weight = nn.Parameter(th.empty(out_features, in_features + 1, cond_features + 1))
        self.bias_hyper_init_()

    def bias_hyper_init_(self) -> None:
        """Bias-HyperInit (CoRL 2022, eq. 3): zero head weights, head biases = one sample of the base init.

        Every ``z`` then generates the same base layer: weight from the base init of ``role``, bias zero.
        """
        with th.no_grad():
            self.weight.zero_()
            base = th.empty(self.out_features, self.in_features)
            base_weight_(base, self.role)
            self.weight[:, : self.in_features, self.cond_features] = base

    def forward(self, x: th.Tensor, z: th.Tensor) -> th.Tensor:
        """``W(z) x + b(z)`` for a batch: x (batch, in), z (batch, cond) -> (batch, out)."""
        x1 = F.pad(x, (0, 1), value=1.0)
        z1 = F.pad(z, (0, 1), value=1.0)
        outer = (x1.unsqueeze(-1) * z1.unsqueeze(-2)).flatten(-2)
        return F.linear(outer, self.weight.flatten(1))

    def generate(self, z: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """The generated base parameters for a batch of ``z``: weights (batch, out, in) and biases (batch, out)."""
        z1 = F.pad(z, (0, 1), value=1.0)
        full = th.einsum("oik,bk->boi", self.weight, z1)
        return full[..., : self.in_features], full[..., self.in_features]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, cond_features={self.cond_features}"


class GeneratedMLP(nn.Module):
    """A base MLP every weight and bias of which is generated from ``z`` (one linear head per generated tensor).

    :param sizes: layer sizes ``[input, hidden..., output]``
    :param cond_features: size of the conditioning vector ``z``
    :param output_role: base init of the output layer (``gaussian``, ``categorical`` or ``critic``)
    :param activation_fn: activation after each hidden layer
    """

    def __init__(
        self,
        sizes: list[int],
        cond_features: int,
        output_role: str,
        activation_fn: type[nn.Module] = nn.Tanh,
    ):
        super().__init__()
        roles = ["hidden"] * (len(sizes) - 2) + [output_role]
        self.layers = nn.ModuleList(
            GeneratedLinear(n_in, n_out, cond_features, role)
            for n_in, n_out, role in zip(sizes[:-1], sizes[1:], roles, strict=True)
        )
        self.activation = activation_fn()

    def forward(self, x: th.Tensor, z: th.Tensor) -> th.Tensor:
        """Apply the base network generated from ``z`` to ``x``."""
        for i, layer in enumerate(self.layers):
            x = layer(x, z)
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x
