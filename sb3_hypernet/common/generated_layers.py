"""Hypernetworks: layers whose weights and biases are generated per sample, and their initialisation.

CoRL 2022 sections 4.1-4.3 (architecture, HyperInit, FiLM) and NeurIPS 2023 section 3.2. A generated layer computes
``y = W(z) x + b(z)`` where ``W(z)`` and ``b(z)`` come from linear heads on the conditioning vector ``z`` (the last
hidden layer of the hypernetwork, or the latent embedding itself when it has none). With ``z' = [z, 1]`` and
``x' = [x, 1]`` the weight head, the bias head and both head biases form one tensor ``A`` of shape
(out, in + 1, cond + 1) with ``y_o = sum_ik A[o, i, k] x'_i z'_k``. Two ways to compute it:

- ``"factorized"``: one matmul on the outer product ``x' z'^T``; never builds a weight matrix per sample;
- ``"materialized"``: generates ``W(z)`` per sample with one matmul, then a batched matmul with ``x'``.

Both give the same numbers; ``benchmarks/speed/generated_layers.py`` measures their speed and memory.

Vocabulary, shared with the SAC/TD3 hypernetworks (:mod:`sb3_hypernet.offpolicy`): the *base network* acts on the
state (ICML 2021 calls it the dynamic network); its *generated layers* (:class:`GeneratedLinear` here,
:class:`~sb3_hypernet.offpolicy.networks.GeneratedGainLinear` there) take their weights from the *hypernetwork* on the
condition; :class:`GeneratedMLP` is a base MLP of conditioned layers with its hypernetwork, as
:class:`~sb3_hypernet.offpolicy.networks.HyperNetwork` is for ICML 2021's primary network.
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Any

import torch as th
import torch.nn.functional as F
from torch import nn

from sb3_hypernet.common.initializers import TANH_GAIN, base_weight_, normc_
from sb3_hypernet.common.renamed import renamed_attributes

#: Initialisations of the hypernetwork heads (CoRL 2022, section 4.2 and Table 1).
HYPER_INITS = ("bias", "weight", "hfi", "kaiming", "normc", "orthogonal")
#: Ways of computing a generated layer.
HYPERNET_MODES = ("factorized", "materialized")
#: The British spellings of versions before 0.2, still accepted (saved models carry them).
_MODE_SPELLINGS = {"factorised": "factorized", "materialised": "materialized"}
#: Initialisers of the naive schemes, applied to head weights as they would be to any layer.
_NAIVE = {
    "kaiming": lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5)),
    "normc": normc_,
    "orthogonal": nn.init.orthogonal_,
}
#: HFI gain per base-layer role: tanh hidden layers, linear outputs.
_HFI_GAIN = {"hidden": TANH_GAIN, "gaussian": 1.0, "categorical": 1.0, "critic": 1.0}


def check_hyper_init(hyper_init: str, allowed: tuple[str, ...] = HYPER_INITS) -> None:
    """``ValueError`` naming the choices unless ``hyper_init`` is one of ``allowed``."""
    if hyper_init not in allowed:
        raise ValueError(f"hyper_init must be one of {', '.join(map(repr, allowed))}; got {hyper_init!r}")


def init_generated_heads_(weight: th.Tensor, in_features: int, role: str, scheme: str) -> None:
    """Initialise the heads of a generated layer, stored as ``A`` (out, in + 1, cond + 1), in place.

    - ``"bias"`` (Bias-HyperInit, CoRL eq. 3): head weights 0; the weight heads' biases are one sample of the
      base init (normc 5/3 hidden, normc 1 Gaussian output, orthogonal 0.01 categorical output, kaiming-uniform
      critic output), the bias heads' biases 0: every ``z`` generates the same base layer. The critic output
      follows the reference exactly: kaiming-uniform with bound ``sqrt(6 / fan_in)`` and a bias of U(-1, 1).
    - ``"weight"`` (Weight-HyperInit, CoRL eq. 2): head biases 0; column ``k`` of the heads is an independent
      sample of the base init, so a one-hot ``z = e_k`` selects an independently initialised base layer.
    - ``"hfi"`` (hyperfan-in, Chang et al. 2020): weight heads ``U(+-g sqrt(3 / (2 d_l d_k)))``, bias heads
      ``U(+-g sqrt(3 / (2 d_l)))``, head biases 0, with ``d_l`` = size of ``z`` and ``d_k`` = base fan-in; the
      generated weights then have variance ``g^2 E[z^2] / (2 d_k)`` and the biases ``g^2 E[z^2] / 2``.
    - ``"kaiming"``, ``"normc"``, ``"orthogonal"``: that initialiser applied to the head weights directly, head
      biases 0 (the naive schemes that fail in CoRL Table 1).
    """
    check_hyper_init(scheme)
    out_features, cond = weight.shape[0], weight.shape[2] - 1
    with th.no_grad():
        weight.zero_()
        weight_heads = weight[:, :in_features, :cond]
        bias_heads = weight[:, in_features, :cond]
        if scheme == "bias" and role == "critic":
            # As the reference's Bias-HyperInit of the value output: its weight heads' biases draw kaiming-uniform
            # without the a=sqrt(5) of nn.Linear (bound sqrt(6 / fan_in)), and its bias head's bias U(-1, 1) (the
            # nn.Linear bias init computed on a (fan_in, 1) tensor, whose fan-in is 1).
            weight[:, :in_features, cond] = nn.init.kaiming_uniform_(th.empty(out_features, in_features))
            weight[:, in_features, cond] = th.empty(out_features).uniform_(-1.0, 1.0)
        elif scheme == "bias":
            weight[:, :in_features, cond] = base_weight_(th.empty(out_features, in_features), role)
        elif scheme == "weight":
            # The base bias init is zero, so the bias heads' columns stay zero.
            samples = th.stack([base_weight_(th.empty(out_features, in_features), role) for _ in range(cond)], -1)
            weight_heads.copy_(samples)
        elif scheme == "hfi":
            gain = _HFI_GAIN[role]
            weight_heads.uniform_(-1.0, 1.0).mul_(gain * math.sqrt(3.0 / (2.0 * cond * in_features)))
            bias_heads.uniform_(-1.0, 1.0).mul_(gain * math.sqrt(3.0 / (2.0 * cond)))
        else:
            initialise = _NAIVE[scheme]
            weight_heads.copy_(initialise(th.empty(out_features * in_features, cond)).view_as(weight_heads))
            bias_heads.copy_(initialise(th.empty(out_features, cond)))


class GeneratedLinear(nn.Module):
    """A linear layer of a base network whose weight and bias linear hypernetwork heads generate from ``z``.

    ``self.weight[o, i, k]`` holds, for ``i < in_features``: the weight-generating head (``k < cond_features``)
    and its bias (``k == cond_features``); for ``i == in_features``: the bias-generating head and its bias.

    :param in_features: base layer input size
    :param out_features: base layer output size
    :param cond_features: size of the conditioning vector ``z``
    :param role: base init of the generated layer (see :func:`sb3_hypernet.common.initializers.base_weight_`)
    :param hyper_init: initialisation of the heads, one of :data:`HYPER_INITS`
    :param mode: ``"factorized"`` or ``"materialized"`` (same result, different speed and memory)
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        cond_features: int,
        role: str = "hidden",
        hyper_init: str = "bias",
        mode: str = "factorized",
    ):
        super().__init__()
        mode = _MODE_SPELLINGS.get(mode, mode)
        if mode not in HYPERNET_MODES:
            raise ValueError(f"hypernet_mode must be one of {', '.join(map(repr, HYPERNET_MODES))}; got {mode!r}")
        check_hyper_init(hyper_init)
        self.in_features = in_features
        self.out_features = out_features
        self.cond_features = cond_features
        self.role = role
        self.hyper_init = hyper_init
        self.mode = mode
        self.weight = nn.Parameter(th.empty(out_features, in_features + 1, cond_features + 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the heads with ``hyper_init``."""
        init_generated_heads_(self.weight, self.in_features, self.role, self.hyper_init)

    @staticmethod
    def outer(x: th.Tensor, z: th.Tensor) -> th.Tensor:
        """The factorised mode's input ``[x, 1] (outer) [z, 1]``, flattened: (batch, (in + 1) * (cond + 1)). Layers
        that read the same ``x`` and ``z`` (the actor's and critic's first layers) can share it
        (:meth:`forward_outer`)."""
        x1 = F.pad(x, (0, 1), value=1.0)
        z1 = F.pad(z, (0, 1), value=1.0)
        return (x1.unsqueeze(-1) * z1.unsqueeze(-2)).flatten(-2)

    def forward_outer(self, outer: th.Tensor) -> th.Tensor:
        """The factorised forward pass from :meth:`outer`'s product."""
        return F.linear(outer, self.weight.flatten(1))

    def forward(self, x: th.Tensor, z: th.Tensor) -> th.Tensor:
        """``W(z) x + b(z)`` for a batch: x (batch, in), z (batch, cond) -> (batch, out)."""
        if self.mode == "factorized":
            return self.forward_outer(self.outer(x, z))
        x1 = F.pad(x, (0, 1), value=1.0)
        z1 = F.pad(z, (0, 1), value=1.0)
        generated = F.linear(z1, self.weight.view(-1, self.cond_features + 1))
        return th.bmm(generated.view(-1, self.out_features, self.in_features + 1), x1.unsqueeze(-1)).squeeze(-1)

    def generate(self, z: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """The generated base parameters for a batch of ``z``: weights (batch, out, in) and biases (batch, out)."""
        z1 = F.pad(z, (0, 1), value=1.0)
        full = th.einsum("oik,bk->boi", self.weight, z1)
        return full[..., : self.in_features], full[..., self.in_features]

    @property
    def n_generated(self) -> int:
        """Number of base-network parameters generated per sample."""
        return self.out_features * (self.in_features + 1)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, cond_features={self.cond_features}, "
            f"hyper_init={self.hyper_init!r}, mode={self.mode!r}"
        )


class FiLMLinear(nn.Module):
    """A base layer with plain weights whose units a hypernetwork scales and shifts per sample (FiLM; CoRL 4.3).

    ``y = scale(z) * (W x) + shift(z)``; the shift plays the part of the bias. With ``hyper_init="bias"``
    (Bias-HyperInit adapted to FiLM) the heads start with zero weights, scale bias 1 and shift bias 0, so every
    ``z`` gives ``y = W x`` with ``W`` from the base init. The naive schemes initialise the head weights with
    their initialiser and the head biases with 0.

    :param in_features: base layer input size
    :param out_features: base layer output size
    :param cond_features: size of the conditioning vector ``z``
    :param role: base init of ``W``
    :param hyper_init: ``"bias"``, ``"kaiming"``, ``"normc"`` or ``"orthogonal"``
    """

    SCHEMES = ("bias", "kaiming", "normc", "orthogonal")

    def __init__(
        self, in_features: int, out_features: int, cond_features: int, role: str = "hidden", hyper_init: str = "bias"
    ):
        super().__init__()
        check_hyper_init(hyper_init, self.SCHEMES)
        self.role = role
        self.hyper_init = hyper_init
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.film = nn.Linear(cond_features, 2 * out_features)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Base init for ``W``; ``hyper_init`` for the scale and shift heads."""
        base_weight_(self.linear.weight, self.role)
        with th.no_grad():
            self.film.bias.zero_()
            if self.hyper_init == "bias":
                self.film.weight.zero_()
                self.film.bias[: self.linear.out_features] = 1.0
            else:
                _NAIVE[self.hyper_init](self.film.weight)

    def forward(self, x: th.Tensor, z: th.Tensor) -> th.Tensor:
        scale, shift = self.film(z).chunk(2, dim=-1)
        return scale * self.linear(x) + shift


class GeneratedMLP(nn.Module):
    """A base MLP conditioned on ``z`` through a hypernetwork: generated layers (default) or FiLM layers.

    The hypernetwork is ``hypernet_layers`` hidden layers on ``z`` (none by default: one linear head per generated
    tensor) followed by the heads inside each layer; the initialisation scheme applies to the heads, the hidden
    layers keep PyTorch's default init (CoRL 4.2).

    :param sizes: base layer sizes ``[input, hidden..., output]``
    :param cond_features: size of ``z``
    :param output_role: base init of the output layer (``gaussian``, ``categorical`` or ``critic``)
    :param activation_fn: activation of the base network's and the hypernetwork's hidden layers
    :param hypernet_layers: hidden layer sizes of the hypernetwork
    :param layer_class: the conditioned layer, :class:`GeneratedLinear` (every weight and bias generated) or
        :class:`FiLMLinear` (per-unit scale and shift)
    :param layer_options: keyword arguments of ``layer_class`` (``hyper_init``; ``mode`` for generated layers)
    """

    def __init__(
        self,
        sizes: list[int],
        cond_features: int,
        output_role: str,
        activation_fn: type[nn.Module] = nn.Tanh,
        hypernet_layers: list[int] | tuple[int, ...] = (),
        layer_class: type[GeneratedLinear] | type[FiLMLinear] = GeneratedLinear,
        **layer_options: Any,
    ):
        super().__init__()
        trunk: list[nn.Module] = []
        for n_in, n_out in pairwise([cond_features, *hypernet_layers]):
            trunk += [nn.Linear(n_in, n_out), activation_fn()]
        self.hypernet_trunk = nn.Sequential(*trunk)
        head_input = hypernet_layers[-1] if hypernet_layers else cond_features
        roles = ["hidden"] * (len(sizes) - 2) + [output_role]
        self.layers = nn.ModuleList(
            layer_class(n_in, n_out, head_input, role=role, **layer_options)
            for (n_in, n_out), role in zip(pairwise(sizes), roles, strict=True)
        )
        self.activation = activation_fn()

    def forward(self, x: th.Tensor, z: th.Tensor) -> th.Tensor:
        """Apply the base network conditioned on ``z`` to ``x``."""
        z = self.hypernet_trunk(z)
        return self.forward_after_first(self.layers[0](x, z), z)

    def forward_after_first(self, first: th.Tensor, z: th.Tensor) -> th.Tensor:
        """The rest of the base network from the first layer's output ``first`` (before its activation), given the
        hypernetwork trunk's output ``z``."""
        x = first
        for layer in self.layers[1:]:
            x = layer(self.activation(x), z)
        return x

    @property
    def reads_z_directly(self) -> bool:
        """Whether the layers read ``z`` itself (no hypernetwork hidden layers) through factorised generated layers:
        then two such networks on the same input can share their first layer's outer product."""
        first = self.layers[0]
        return not len(self.hypernet_trunk) and isinstance(first, GeneratedLinear) and first.mode == "factorized"


#: Names of before 0.2, for users' code.
__getattr__ = renamed_attributes(__name__, globals(), {"HyperMLP": "GeneratedMLP"})
