"""The belief that every task-inference method shares: VariBAD's VAE (NeurIPS 2023, section 3.3).

In the reference implementation every model of the task-inference family (TI Naive, TI, TI++, TI+HN, TI++HN, BI++HN,
VI, VI+HN) is a VariBAD model: the GRU's output is read as a Gaussian belief ``N(mu_t, sigma_t)`` over the task, and
the encoder is trained, as the encoder of a VAE, on whole meta-episodes drawn from a buffer of recent ones. For every
latent ``z_j ~ N(mu_j, sigma_j)`` (j = 0 .. T, after the first observation up to after the last transition) decoders
reconstruct the whole meta-episode, past and future:

- rewards (``decode_reward``): a regression of ``r_t`` from ``z_j`` and the transition's (embedded) next state,
  action and state (MuJoCo), or, on the Grid-Worlds, a Bernoulli with one head per grid cell (``reward_decoder=
  "cell_bernoulli"``): ``sigmoid(head_c(z_j))`` is the probability that the cell ``c`` of ``s_{t+1}`` pays the goal
  reward, trained with binary cross-entropy;
- next states (``decode_state``, Walker): a regression of ``s_{t+1}`` from ``z_j``, ``s_t`` and ``a_t``, averaged
  over the state's dimensions;
- for the label-based methods a task target (:class:`~sb3_hypernet.task_inference.TaskInferencePolicy`);
- ``KL(q_j || q_{j-1})`` with ``q_{-1} = N(0, I)``.

The loss sums over ELBO terms j and reconstruction terms t (neither averaged); reconstructions are averaged over the
meta-episodes of the batch while the KL and the task term are summed over them, as the reference's ``vae.py``
(``compute_loss``) does. The policy reads ``phi = tanh(Linear(normalise(stop_grad([mu, log sigma^2]))))``: the
belief as the reference passes it (``get_latent_for_policy``), normalised with running mean and variance
(``norm_latent_for_policy``) before the policy's latent encoder, so that the PPO loss never reaches the VAE.
:class:`~sb3_hypernet.MetaRecurrentPPO` keeps the meta-episodes
(:mod:`~sb3_hypernet.common.meta_episode_buffer`) and steps the VAE with its own optimiser.
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, preprocess_obs
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_hypernet.common.heads import MetaPolicyHead, RNNSHead, RunningNormalizer
from sb3_hypernet.common.policies import MetaRecurrentPolicy
from sb3_hypernet.common.policy_keywords import check_size
from sb3_hypernet.common.task import TASK_KEY

#: What a reward or state decoder can read of transition t besides the latent: s_{t+1}, a_t and s_t, in the order
#: the reference concatenates them.
DECODER_INPUTS = ("next_state", "action", "state")
#: Reward decoders: a regression on the transition, or one Bernoulli head per cell of a grid observation.
REWARD_DECODERS = ("regression", "cell_bernoulli")


def gaussian_kl(mean: th.Tensor, logvar: th.Tensor, prior_mean: th.Tensor, prior_logvar: th.Tensor) -> th.Tensor:
    """``KL(N(mean, exp(logvar)) || N(prior_mean, exp(prior_logvar)))`` of diagonal Gaussians, summed over the last
    dimension."""
    ratio = th.exp(logvar - prior_logvar)
    return 0.5 * (ratio + (mean - prior_mean).pow(2) / th.exp(prior_logvar) - 1.0 - (logvar - prior_logvar)).sum(-1)


def check_layers(name: str, layers: Any) -> list[int]:
    """``layers`` as a list of hidden-layer sizes (``ValueError`` naming ``name`` otherwise)."""
    if not isinstance(layers, (list, tuple)):
        raise ValueError(f"{name} must be a list of layer sizes, got {layers!r}")
    for size in layers:
        check_size(f"{name} entries", size)
    return list(layers)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with ReLU between them (none after the last): the reference's decoders."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _check_inputs(name: str, inputs: Any, allowed: tuple[str, ...]) -> list[str]:
    if not isinstance(inputs, (list, tuple)) or any(item not in allowed for item in inputs):
        raise ValueError(f"{name} must be a list drawn from {', '.join(map(repr, allowed))}, got {inputs!r}")
    if len(set(inputs)) != len(inputs):
        raise ValueError(f"{name} lists an input twice: {inputs!r}")
    return list(inputs)


def _check_samples(name: str, value: Any) -> int | None:
    if value is not None:
        check_size(name, value)
    return value


def check_loss_weight(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not value >= 0:  # also NaN
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def grid_cells(space: spaces.Space) -> tuple[np.ndarray, np.ndarray]:
    """(lowest coordinates, cells per dimension) of a grid observation: a ``Box`` of integer coordinates with
    finite integer bounds, such as GridNavi's ``(x, y)`` (``ValueError`` otherwise)."""
    if not isinstance(space, spaces.Box) or space.shape is None or len(space.shape) != 1:
        raise ValueError(
            f"reward_decoder='cell_bernoulli' needs grid coordinates as the observation (a 1-D Box with integer "
            f"bounds, as GridNavi's (x, y)), got {space}; use reward_decoder='regression'."
        )
    low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
    if not (np.isfinite(low).all() and np.isfinite(high).all() and (low == np.round(low)).all()
            and (high == np.round(high)).all()):  # fmt: skip
        raise ValueError(
            f"reward_decoder='cell_bernoulli' needs finite integer bounds on the observation (grid coordinates), got "
            f"low={space.low}, high={space.high}; use reward_decoder='regression'."
        )
    return low.astype(np.int64), (high - low + 1).astype(np.int64)


def choose_steps(valid: th.Tensor, n_samples: int | None) -> tuple[th.Tensor, th.Tensor]:
    """Indices of steps to use per row of ``valid`` (B, L) and whether each is a real step: every step, or
    ``n_samples`` real steps per row drawn without replacement (VariBAD's subsampling of ELBO terms for meta-episodes
    of different lengths, for long meta-episodes)."""
    n_rows, length = valid.shape
    if n_samples is None or n_samples >= length:
        index = th.arange(length, device=valid.device).expand(n_rows, length)
        return index, valid
    keys = th.rand(n_rows, length, device=valid.device).masked_fill(~valid, 2.0)  # padding sorts last
    index = keys.argsort(dim=1)[:, :n_samples]
    return index, valid.gather(1, index)


def gather_steps(values: th.Tensor, index: th.Tensor) -> th.Tensor:
    """``values[b, index[b, k]]`` for (B, L, ...) values and (B, K) indices."""
    expanded = index.reshape(*index.shape, *([1] * (values.dim() - 2))).expand(*index.shape, *values.shape[2:])
    return values.gather(1, expanded)


class TransitionDecoder(nn.Module):
    """A decoder from a latent and a transition's (embedded) inputs, as the reference's reward and state decoders:
    states and actions pass through their own ``ReLU(Linear(.))`` embeddings (the sizes of the encoder's), are
    concatenated after the latent as ``[z, s_{t+1}, a_t, s_t]`` (those present), and an MLP with ReLU hidden layers
    maps them to the output.

    :param latent_dim: size of ``z``
    :param inputs: which of :data:`DECODER_INPUTS` it reads
    :param state_dim: flattened size of a state
    :param action_dim: size of an action (one-hot size for discrete actions)
    :param state_embedding_dim: embedding size of the states
    :param action_embedding_dim: embedding size of the action (0: the action is not read)
    :param layers: hidden layers
    :param output_dim: output size
    """

    def __init__(
        self,
        latent_dim: int,
        inputs: list[str],
        state_dim: int,
        action_dim: int,
        state_embedding_dim: int,
        action_embedding_dim: int,
        layers: list[int],
        output_dim: int,
    ):
        super().__init__()
        self.inputs = [name for name in DECODER_INPUTS if name in inputs and (name != "action" or action_embedding_dim)]
        reads_states = any(name != "action" for name in self.inputs)
        self.state_embedding = (
            nn.Sequential(nn.Linear(state_dim, state_embedding_dim), nn.ReLU()) if reads_states else None
        )
        self.action_embedding = (
            nn.Sequential(nn.Linear(action_dim, action_embedding_dim), nn.ReLU()) if "action" in self.inputs else None
        )
        self.latent_dim = latent_dim
        widths = {"next_state": state_embedding_dim, "state": state_embedding_dim, "action": action_embedding_dim}
        self.net = mlp([latent_dim + sum(widths[name] for name in self.inputs), *layers, output_dim])

    def embed(self, transitions: dict[str, th.Tensor]) -> th.Tensor | None:
        """The embedded inputs of transitions (..., widths), concatenated in the reference's order; None if none."""
        parts = [
            (self.action_embedding if name == "action" else self.state_embedding)(transitions[name])
            for name in self.inputs
        ]
        return th.cat(parts, dim=-1) if parts else None

    def forward_pairs(self, z: th.Tensor, embedded: th.Tensor | None) -> th.Tensor:
        """Latents against transitions: (B, E, K, out) from latents (B, E, latent_dim) and embedded transitions
        (B, 1, K, width) shared by every latent, or (B, E, K, width) of each latent's own. The first layer is linear
        in ``[z, inputs]``, so it is applied to the latents and to the transitions apart and the two summed per pair:
        the pairs never hold the inputs themselves."""
        first = self.net[0]
        latent_weight, input_weight = first.weight.split([self.latent_dim, first.in_features - self.latent_dim], 1)
        from_latents = (z @ latent_weight.T)[:, :, None]
        from_transitions = first.bias if embedded is None else embedded @ input_weight.T + first.bias
        return self.net[1:](from_latents + from_transitions)


class BeliefPolicy(MetaRecurrentPolicy):
    """What the task-inference family shares (module docstring): the GRU's latent read as a Gaussian belief
    trained as VariBAD's VAE encoder on whole meta-episodes, and a policy on
    ``phi = tanh(Linear(normalise(stop_grad([mu, log sigma^2]))))``. Train with :class:`~sb3_hypernet.MetaRecurrentPPO`,
    which keeps the meta-episodes (``vae_buffer_size``) and runs ``vae_updates`` VAE steps of ``vae_batch_size``
    meta-episodes after each PPO update.

    :param kl_weight: weight of the KL terms (VariBAD: 1 on Grid-World and Walker, 0.1 on the other MuJoCo families)
    :param decode_reward: reconstruct the rewards
    :param reward_decoder: ``"regression"`` (squared error of the reward from ``z`` and the transition) or
        ``"cell_bernoulli"`` (one Bernoulli head per cell of a grid observation, from ``z`` alone: the reference's
        Grid-World decoder, ``multihead_for_reward`` with ``rew_pred_type='bernoulli'``)
    :param reward_decoder_layers: hidden layers (ReLU) of the reward decoder ([32, 32] Grid-World, [64, 32] MuJoCo)
    :param reward_decoder_inputs: what the regression reward decoder reads of transition t besides ``z``: any of
        ``"next_state"`` (s_{t+1}), ``"action"`` (a_t), ``"state"`` (s_t); each state and the action pass through a
        ``ReLU(Linear(.))`` embedding of the encoder's sizes (``obs_embedding_dim``, ``action_embedding_dim``)
    :param goal_reward: the reward that the Bernoulli decoder predicts the occurrence of (the reference: 1)
    :param decode_state: also reconstruct the next states (Walker, whose tasks change the dynamics)
    :param state_decoder_layers: hidden layers of the state decoder ([64, 32]; [256, 128] on Walker)
    :param state_decoder_inputs: what the state decoder reads besides ``z``: ``"state"`` and/or ``"action"``
    :param reward_loss_weight: weight of the reward reconstruction
    :param state_loss_weight: weight of the state reconstruction
    :param n_elbo_samples: ELBO terms (latents) per meta-episode, drawn at random; None: all (VariBAD: 50 on MuJoCo)
    :param n_decode_samples: reconstruction terms per latent, each latent's own draw with replacement; None: all
        (VariBAD: 50 on MuJoCo)
    :param latent_embedding_dim: size of ``phi`` (25; 10 on Ant-Dir)
    :param kwargs: everything :class:`~sb3_hypernet.MetaRecurrentPolicy` and the head take
    """

    head_class: ClassVar[type[MetaPolicyHead]] = RNNSHead
    end_to_end = False
    #: The VAE trains on whole meta-episodes (MetaRecurrentPPO keeps them), not on PPO's minibatches.
    trains_on_meta_episodes: ClassVar[bool] = True

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        kl_weight: float = 1.0,
        decode_reward: bool = True,
        reward_decoder: str = "regression",
        reward_decoder_layers: list[int] | tuple[int, ...] = (32, 32),
        reward_decoder_inputs: list[str] | tuple[str, ...] = ("next_state",),
        goal_reward: float = 1.0,
        decode_state: bool = False,
        state_decoder_layers: list[int] | tuple[int, ...] = (64, 32),
        state_decoder_inputs: list[str] | tuple[str, ...] = ("state", "action"),
        reward_loss_weight: float = 1.0,
        state_loss_weight: float = 1.0,
        n_elbo_samples: int | None = None,
        n_decode_samples: int | None = None,
        **kwargs: Any,
    ):
        if reward_decoder not in REWARD_DECODERS:
            raise ValueError(f"reward_decoder must be one of {', '.join(map(repr, REWARD_DECODERS))}, got "
                             f"{reward_decoder!r}")  # fmt: skip
        if decode_reward and reward_decoder == "cell_bernoulli" and isinstance(observation_space, spaces.Dict):
            grid_cells(observation_space["obs"])
        self._vae_config = dict(
            kl_weight=check_loss_weight("kl_weight", kl_weight),
            decode_reward=bool(decode_reward),
            reward_decoder=reward_decoder,
            reward_decoder_layers=check_layers("reward_decoder_layers", reward_decoder_layers),
            reward_decoder_inputs=_check_inputs("reward_decoder_inputs", reward_decoder_inputs, DECODER_INPUTS),
            goal_reward=float(goal_reward),
            decode_state=bool(decode_state),
            state_decoder_layers=check_layers("state_decoder_layers", state_decoder_layers),
            state_decoder_inputs=_check_inputs("state_decoder_inputs", state_decoder_inputs, ("state", "action")),
            reward_loss_weight=check_loss_weight("reward_loss_weight", reward_loss_weight),
            state_loss_weight=check_loss_weight("state_loss_weight", state_loss_weight),
            n_elbo_samples=_check_samples("n_elbo_samples", n_elbo_samples),
            n_decode_samples=_check_samples("n_decode_samples", n_decode_samples),
        )
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _head_condition(self, latent_dim: int, latent_embedding_dim: int) -> tuple[int, int | None]:
        # The head reads phi as it is; the latent encoder lives in the policy (belief_projection).
        return latent_embedding_dim, None

    def _build_mlp_extractor(self) -> None:
        # Also called again by the hard reset at the end of TI's pre-training (_build): the normaliser's statistics
        # describe the beliefs, not the policy, and survive it, as the reference's running statistics do.
        super()._build_mlp_extractor()
        belief_size = 2 * self._config["latent_dim"]
        self.belief_projection = nn.Sequential(
            nn.Linear(belief_size, self._head_spec.condition_dim), self._config["activation_fn"]()
        )
        if not hasattr(self, "belief_normalizer"):
            self.belief_normalizer = RunningNormalizer(belief_size, clip=None)

    @staticmethod
    def belief(latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """``(mu, log sigma^2)`` of the belief from the GRU latent."""
        mean, logvar = latent.chunk(2, dim=-1)
        return mean, logvar

    def _head_inputs(self, obs: PyTorchObs, features: th.Tensor, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        # stop_grad: the PPO loss must not reach the VAE (NeurIPS 3.3). [mu, log sigma^2] is the latent itself.
        return (
            self.belief_projection(self.belief_normalizer(latent.detach())),
            features[:, : self.features_extractor.obs_dim],
        )

    def _observe_rollout_step(self, obs: PyTorchObs, latent: th.Tensor) -> None:
        self.belief_normalizer.observe(latent)

    def evaluate_actions(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"{type(self).__name__} is trained by inference losses next to PPO's: train it with "
            "sb3_hypernet.MetaRecurrentPPO (rl_zoo3: python -m sb3_hypernet.train), which calls "
            "evaluate_actions_and_losses; RecurrentPPO would never train its task inference."
        )

    # --- the VAE ---

    def _input_sizes(self) -> tuple[int, int]:
        """(state size, action size) of a transition."""
        return self._head_spec.state_dim, get_flattened_obs_dim(self.observation_space["prev_action"])

    def _build_inference_module(self) -> None:
        config, latent_dim = self._vae_config, self._config["latent_dim"]
        state_dim, action_dim = self._input_sizes()
        embeddings = dict(
            state_dim=state_dim,
            action_dim=action_dim,
            state_embedding_dim=self._config["obs_embedding_dim"],
            action_embedding_dim=self._config["action_embedding_dim"],
        )
        if config["decode_reward"] and config["reward_decoder"] == "cell_bernoulli":
            low, cells = grid_cells(self.observation_space["obs"])
            self.register_buffer("grid_low", th.as_tensor(low))
            self.register_buffer("grid_strides", th.as_tensor(np.cumprod([1, *cells[:0:-1]])[::-1].copy()))
            self.reward_decoder = mlp([latent_dim, *config["reward_decoder_layers"], int(np.prod(cells))])
        elif config["decode_reward"]:
            self.reward_decoder = TransitionDecoder(
                latent_dim, config["reward_decoder_inputs"], **embeddings, layers=config["reward_decoder_layers"],
                output_dim=1,
            )  # fmt: skip
        if config["decode_state"]:
            self.state_decoder = TransitionDecoder(
                latent_dim, config["state_decoder_inputs"], **embeddings, layers=config["state_decoder_layers"],
                output_dim=state_dim,
            )  # fmt: skip

    def _decoders(self) -> list[nn.Module]:
        names = ["reward_decoder", "state_decoder", "task_decoder"]
        return [getattr(self, name) for name in names if hasattr(self, name)]

    def inference_parameters(self) -> list[nn.Parameter]:
        """The GRU encoder and the decoders: trained by the VAE's loss only."""
        return [*self.lstm_actor.parameters(), *(p for decoder in self._decoders() for p in decoder.parameters())]

    def encode_meta_episodes(self, obs: dict[str, th.Tensor]) -> tuple[th.Tensor, th.Tensor]:
        """(features (B, T + 1, F), GRU latent (B, T + 1, 2 latent_dim)) of whole meta-episodes given as
        observations (B, T + 1, ...), the GRU starting from zero as at every meta-episode start: one GRU call."""
        n_episodes, n_steps = obs["obs"].shape[:2]
        flat = {key: value.flatten(0, 1) for key, value in obs.items()}
        features = self.extract_features(flat, self.features_extractor).reshape(n_episodes, n_steps, -1)
        zeros = th.zeros(self.lstm_actor.num_layers, n_episodes, self.lstm_actor.hidden_size, device=features.device)
        latent, _ = self.lstm_actor(features.transpose(0, 1), (zeros, zeros))
        return features, latent.transpose(0, 1)

    def grid_cell(self, states: th.Tensor) -> th.Tensor:
        """Index of the grid cell of each state (..., dims) for the Bernoulli reward heads."""
        return ((states.round().long() - self.grid_low) * self.grid_strides).sum(-1)

    def meta_episode_losses(self, batch: dict[str, Any]) -> dict[str, th.Tensor]:
        """The VAE's loss terms (weighted) on a batch of whole meta-episodes from
        :meth:`~sb3_hypernet.common.meta_episode_buffer.MetaEpisodeBuffer.sample`: ``reward_reconstruction`` (with
        ``decode_reward``), ``state_reconstruction`` (with ``decode_state``), ``kl`` and any term of
        :meth:`belief_target_losses`."""
        config = self._vae_config
        features, latent = self.encode_meta_episodes(batch["obs"])
        n_episodes, n_latents = latent.shape[:2]
        lengths = batch["lengths"].to(latent.device)
        mean, logvar = self.belief(latent)
        z = mean + th.exp(0.5 * logvar) * th.randn_like(mean)

        obs_dim, action_dim = self.features_extractor.obs_dim, self._input_sizes()[1]
        next_state = preprocess_obs(batch["next_state"].flatten(0, 1), self.observation_space["obs"]).float()
        transitions = {
            "state": features[:, :-1, :obs_dim],
            "action": features[:, 1:, obs_dim : obs_dim + action_dim],  # o_{t+1}'s previous action is a_t
            "next_state": next_state.reshape(n_episodes, n_latents - 1, -1),
        }
        steps = th.arange(n_latents, device=latent.device)
        elbo_index, elbo_real = choose_steps(steps <= lengths[:, None], config["n_elbo_samples"])
        z_elbo = gather_steps(z, elbo_index)
        n_decode = config["n_decode_samples"]
        if n_decode is None:  # every latent decodes every transition: one set of transitions serves them all
            decode_index, decode_real = choose_steps(steps[:-1] < lengths[:, None], None)
            pair_real = (elbo_real[:, :, None] & decode_real[:, None, :]).float()

            def pick(values: th.Tensor) -> th.Tensor:  # (B, K, ...), read as (B, 1, K, ...) against the latents
                return gather_steps(values, decode_index).unsqueeze(1)

        else:  # as the reference: per latent, its own draw of transitions, with replacement, among the real ones
            n_elbo = elbo_index.shape[1]
            draws = th.rand(n_episodes, n_elbo, n_decode, device=latent.device) * lengths[:, None, None]
            decode_index = draws.long().clamp(max=n_latents - 2).flatten(1)
            pair_real = elbo_real[:, :, None].expand(-1, -1, n_decode).float()

            def pick(values: th.Tensor) -> th.Tensor:  # (B, E, K, ...)
                return gather_steps(values, decode_index).reshape(n_episodes, n_elbo, n_decode, *values.shape[2:])

        chosen = {name: pick(value) for name, value in transitions.items()}

        losses: dict[str, th.Tensor] = {}
        if config["decode_reward"]:
            rewards = pick(batch["reward"].to(latent.device).float())
            if config["reward_decoder"] == "cell_bernoulli":
                logits = self.reward_decoder(z_elbo)  # (B, E, cells)
                cells = pick(self.grid_cell(batch["next_state"].to(latent.device))).expand(-1, z_elbo.shape[1], -1)
                target = (rewards == config["goal_reward"]).float().expand_as(cells)
                error = F.binary_cross_entropy_with_logits(logits.gather(2, cells), target, reduction="none")
            else:
                decoder = self.reward_decoder
                error = (decoder.forward_pairs(z_elbo, decoder.embed(chosen)).squeeze(-1) - rewards).pow(2)
            losses["reward_reconstruction"] = config["reward_loss_weight"] * (error * pair_real).sum((1, 2)).mean()
        if config["decode_state"]:
            decoder = self.state_decoder
            predicted = decoder.forward_pairs(z_elbo, decoder.embed(chosen))
            error = (predicted - chosen["next_state"]).pow(2).mean(-1)
            losses["state_reconstruction"] = config["state_loss_weight"] * (error * pair_real).sum((1, 2)).mean()

        # Prior of each latent: the posterior before it; N(0, I) before the first. Summed over the batch, as the
        # reference does (its per-trajectory reconstructions are averaged, its KL summed).
        prior_mean = th.cat([th.zeros_like(mean[:, :1]), mean[:, :-1]], dim=1)
        prior_logvar = th.cat([th.zeros_like(logvar[:, :1]), logvar[:, :-1]], dim=1)
        kl = gather_steps(gaussian_kl(mean, logvar, prior_mean, prior_logvar), elbo_index)
        losses["kl"] = config["kl_weight"] * (kl * elbo_real.float()).sum()
        losses.update(self.belief_target_losses(z_elbo, elbo_real, batch))
        return losses

    def belief_target_losses(self, z: th.Tensor, real: th.Tensor, batch: dict[str, Any]) -> dict[str, th.Tensor]:
        """Terms that decode a label from the chosen latents ``z`` (B, E, latent_dim) where ``real``: none here
        (VariBAD); the label-based methods add their task term."""
        return {}

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), **self._vae_config}


class TaskEmbedding(nn.Module):
    """``g(c) = act(Linear(normalise(c)))``: the learned task embedding a multi-task policy conditions on, as the
    reference's task encoder (running mean/variance normalisation, ``norm_task_for_policy``, then one layer with the
    policy's activation; NeurIPS 3.3 and 8.2 project the task to the size of ``phi``).

    :param task_dim: size of the task descriptor
    :param size: embedding size
    :param activation_fn: activation (the policy's, tanh)
    """

    def __init__(self, task_dim: int, size: int, activation_fn: type[nn.Module] = nn.Tanh):
        super().__init__()
        self.normalizer = RunningNormalizer(task_dim, clip=None)
        self.linear = nn.Linear(task_dim, size)
        self.activation = activation_fn()

    def forward(self, task: th.Tensor) -> th.Tensor:
        return self.activation(self.linear(self.normalizer(task)))


def observed_task(obs: PyTorchObs) -> th.Tensor:
    """The task descriptor of each step, flattened, as floats."""
    return obs[TASK_KEY].flatten(1).float()
