"""Observation embeddings: one linear layer on the flattened observation (the reference), or a small convolutional
network for image observations at larger resolutions (MC-LS at 42x42x3, as AMRL; NeurIPS 2023 section 4.3).

Both take the observation flattened as SB3's feature extractors lay it out (height, width, channels: the env's own
order), so the policy's flattened meta-episode features are the same whichever embedding reads them.
"""

from __future__ import annotations

from typing import Literal

import torch as th
from gymnasium import spaces
from torch import nn

#: What ``image_embedding`` accepts: ``"linear"`` flattens the image (the reference), ``"conv"`` is
#: :class:`ConvEmbedding`.
IMAGE_EMBEDDINGS = ("linear", "conv")
ImageEmbeddingKind = Literal["linear", "conv"]


class ConvEmbedding(nn.Module):
    """A small convolutional embedding of an (H, W, C) image given flattened: three 3x3 convolutions of stride 2
    (``channels``, ReLU), then ``activation(Linear(., out_features))``.

    Stride-2 convolutions quarter the pixels at each layer, so a 42x42x3 view costs about as much as the flattened
    10x10x3 one through a linear layer, and weights are shared across positions where a linear layer on 5,292 inputs
    would learn each pixel apart.

    :param image_shape: (height, width, channels) of the observation
    :param out_features: size of the embedding
    :param activation_fn: activation after the output layer (ReLU in the trajectory encoder, tanh in the state path)
    :param channels: output channels of the convolutions
    """

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        out_features: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        channels: tuple[int, ...] = (16, 32, 32),
    ):
        super().__init__()
        if len(image_shape) != 3 or min(image_shape) < 1:
            raise ValueError(f"ConvEmbedding needs an image shape (height, width, channels), got {image_shape!r}")
        self.image_shape = tuple(int(size) for size in image_shape)
        height, width, n_channels = self.image_shape
        layers: list[nn.Module] = []
        for out_channels in channels:
            layers += [nn.Conv2d(n_channels, out_channels, kernel_size=3, stride=2, padding=1), nn.ReLU()]
            n_channels = out_channels
        self.conv = nn.Sequential(*layers)
        with th.no_grad():
            n_flat = self.conv(th.zeros(1, self.image_shape[2], height, width)).numel()
        self.linear = nn.Linear(n_flat, out_features)
        self.activation = activation_fn()
        self.out_features = out_features

    def forward(self, observation: th.Tensor) -> th.Tensor:
        """Embed ``(..., H * W * C)`` flattened images to ``(..., out_features)``."""
        leading = observation.shape[:-1]
        images = observation.reshape(-1, *self.image_shape).permute(0, 3, 1, 2)
        embedded = self.activation(self.linear(self.conv(images).flatten(1)))
        return embedded.reshape(*leading, self.out_features)


class LinearEmbedding(nn.Sequential):
    """``activation(Linear(flattened observation, out_features))``: the reference's observation embedding."""

    def __init__(self, in_features: int, out_features: int, activation_fn: type[nn.Module] = nn.ReLU):
        super().__init__(nn.Linear(in_features, out_features), activation_fn())
        self.out_features = out_features


def image_shape_for(image_embedding: str, observation_space: spaces.Space) -> tuple[int, int, int] | None:
    """The (H, W, C) shape a convolutional embedding needs, or ``None`` for ``"linear"``; a ``ValueError`` naming the
    problem for an unknown kind or an observation that is not an image."""
    if image_embedding not in IMAGE_EMBEDDINGS:
        raise ValueError(
            f"image_embedding must be one of {', '.join(map(repr, IMAGE_EMBEDDINGS))}, got {image_embedding!r}"
        )
    if image_embedding == "linear":
        return None
    shape = getattr(observation_space, "shape", None)
    if not isinstance(observation_space, spaces.Box) or shape is None or len(shape) != 3:
        raise ValueError(
            f"image_embedding='conv' needs image observations, a Box of shape (height, width, channels); the inner "
            f"observation space is {observation_space}. Use image_embedding='linear' for other observations."
        )
    return (int(shape[0]), int(shape[1]), int(shape[2]))


def observation_embedding(
    in_features: int,
    out_features: int,
    activation_fn: type[nn.Module],
    image_shape: tuple[int, int, int] | None = None,
) -> nn.Module:
    """:class:`ConvEmbedding` of ``image_shape`` if one is given, else :class:`LinearEmbedding`."""
    if image_shape is None:
        return LinearEmbedding(in_features, out_features, activation_fn)
    return ConvEmbedding(image_shape, out_features, activation_fn)
