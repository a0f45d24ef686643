"""The trajectory encoder: per-input embeddings, a GRU and the latent projection (NeurIPS 2023, section 3.2).

The encoder replaces sb3-contrib's ``nn.LSTM`` inside :class:`RecurrentActorCriticPolicy`. It keeps the LSTM's
interface (``(output, (h, c)) = module(sequence, (h, c))``, ``num_layers``, ``hidden_size``) so RecurrentPPO's
rollout buffer stores its state unchanged; the cell state ``c`` is carried but unused.
"""

from __future__ import annotations

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from sb3_hypernet.common.image import observation_embedding
from sb3_hypernet.common.task import META_OBS_KEYS


class HistoryEncoder(nn.Module):
    """GRU over the meta-episode history; outputs the latent the policy conditions on.

    Input per step: the flattened meta-episode observation ``[obs, prev_action, prev_reward, episode_done]``.
    Each of obs, previous action and previous reward gets its own one-layer ReLU embedding (an embedding size of
    0 drops that input, as the reference does with actions on the Grid-Worlds); the ``episode_done`` flag joins the
    GRU input as is, so inner-episode boundaries are explicit. A single-layer GRU (orthogonal weights, zero
    biases) is followed by a linear map to ``2 * latent_dim``: the latent. (RNN+S and RNN+HN read the current state
    again; the policy takes it from its input, not from the encoder.)

    :param obs_dim: flattened size of the inner observation
    :param action_dim: size of the previous-action input (one-hot size for discrete actions)
    :param obs_embedding_dim: embedding size of the observation
    :param action_embedding_dim: embedding size of the previous action (0: not an input)
    :param reward_embedding_dim: embedding size of the previous reward (0: not an input)
    :param hidden_size: GRU size
    :param num_layers: GRU layers
    :param latent_dim: the latent has ``2 * latent_dim`` units
    :param image_shape: (height, width, channels) of image observations to embed with a small convolutional network
        (:class:`~sb3_hypernet.common.image.ConvEmbedding`); ``None``: one linear layer on the flattened observation
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        obs_embedding_dim: int = 32,
        action_embedding_dim: int = 16,
        reward_embedding_dim: int = 16,
        hidden_size: int = 256,
        num_layers: int = 1,
        latent_dim: int = 5,
        image_shape: tuple[int, int, int] | None = None,
    ):
        super().__init__()
        if min(obs_embedding_dim, hidden_size, latent_dim, num_layers) < 1:
            raise ValueError("obs_embedding_dim, gru_hidden_size, n_gru_layers and latent_dim must be positive")
        if min(action_embedding_dim, reward_embedding_dim) < 0:
            raise ValueError("action_embedding_dim and reward_embedding_dim must be >= 0")
        self.obs_dim = obs_dim
        self.split_sizes = (obs_dim, action_dim, 1, 1)
        self.input_size = sum(self.split_sizes)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.output_dim = 2 * latent_dim
        self.obs_embedding = observation_embedding(obs_dim, obs_embedding_dim, nn.ReLU, image_shape)
        self.action_embedding = (
            nn.Sequential(nn.Linear(action_dim, action_embedding_dim), nn.ReLU()) if action_embedding_dim else None
        )
        self.reward_embedding = (
            nn.Sequential(nn.Linear(1, reward_embedding_dim), nn.ReLU()) if reward_embedding_dim else None
        )
        gru_input = obs_embedding_dim + action_embedding_dim + reward_embedding_dim + 1
        self.gru = nn.GRU(gru_input, hidden_size, num_layers=num_layers)
        for name, param in self.gru.named_parameters():
            if name.startswith("weight"):
                nn.init.orthogonal_(param)
            else:
                nn.init.zeros_(param)
        self.to_latent = nn.Linear(hidden_size, 2 * latent_dim)

    def forward(
        self, sequence: th.Tensor, state: tuple[th.Tensor, th.Tensor]
    ) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """Encode a (time, batch, features) sequence from state ``(h, c)``; one GRU call for the whole sequence."""
        obs, action, reward, done = sequence.split(self.split_sizes, dim=-1)
        inputs = [self.obs_embedding(obs)]
        if self.action_embedding is not None:
            inputs.append(self.action_embedding(action))
        if self.reward_embedding is not None:
            inputs.append(self.reward_embedding(reward))
        inputs.append(done)
        output, hidden = self.gru(th.cat(inputs, dim=-1), state[0].contiguous())
        return self.to_latent(output), (hidden, state[1])


def process_sequence(
    features: th.Tensor,
    state: tuple[th.Tensor, th.Tensor],
    episode_starts: th.Tensor,
    encoder: nn.Module,
) -> tuple[th.Tensor, tuple[th.Tensor, th.Tensor]]:
    """Run ``encoder`` over RecurrentPPO's padded batch of sequences in one call.

    ``features`` is (n_seq * length, dim) as sb3-contrib lays it out, ``state`` the state at each sequence's start.
    RecurrentPPO's buffer cuts sequences at episode starts, so an episode can start only at a sequence's first
    step: masking the initial state with that flag is exact, and the whole batch is one batched GRU call
    (sb3-contrib loops over time steps whenever any flag is set). Sequences with a start further in raise.
    """
    n_seq = state[0].shape[1]
    sequence = features.reshape(n_seq, -1, features.shape[-1]).transpose(0, 1)
    starts = episode_starts.reshape(n_seq, -1).transpose(0, 1)
    if starts.shape[0] > 1 and bool(starts[1:].any()):
        raise ValueError(
            "episode start inside a sequence: the one-call recurrent pass needs sequences that start new episodes "
            "only at their first step (RecurrentPPO's rollout buffer guarantees this); split the sequence there."
        )
    keep = (1.0 - starts[0]).view(1, n_seq, 1)
    output, new_state = encoder(sequence, (keep * state[0], keep * state[1]))
    return output.transpose(0, 1).reshape(-1, output.shape[-1]), new_state


class MetaEpisodeExtractor(BaseFeaturesExtractor):
    """Flattens the meta-episode observation to ``[obs, prev_action, prev_reward, episode_done]``.

    Any other key (``task``) is left out: policies must not act on the task descriptor. The current observation
    comes first: ``features[:, :obs_dim]``.
    """

    def __init__(self, observation_space: spaces.Dict):
        super().__init__(observation_space, sum(get_flattened_obs_dim(observation_space[k]) for k in META_OBS_KEYS))
        self.obs_dim = get_flattened_obs_dim(observation_space["obs"])

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        return th.cat([observations[key].flatten(1) for key in META_OBS_KEYS], dim=1)
