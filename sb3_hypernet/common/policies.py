"""The recurrent meta-RL policy that every method builds on: a GRU trajectory encoder shared by actor and critic,
feeding a method-specific head (NeurIPS 2023 sections 3.2 and 5, with the reference implementation's sizes).

The methods' policies (:mod:`sb3_hypernet.rnn`, :mod:`sb3_hypernet.task_inference`, :mod:`sb3_hypernet.varibad`)
pick the head and what it is conditioned on. The pieces around it: argument checks
(:mod:`~sb3_hypernet.common.policy_keywords`), the encoder (:mod:`~sb3_hypernet.common.recurrent`), the algorithm's
hooks and optimiser groups (:mod:`~sb3_hypernet.common.policy_hooks`) and diagnostics
(:mod:`~sb3_hypernet.common.diagnostics`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.preprocessing import get_flattened_obs_dim
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.utils import get_device
from torch import nn

from sb3_hypernet.common.diagnostics import PolicyDiagnostics
from sb3_hypernet.common.heads import HeadSpec, MetaPolicyHead, RunningNormalizer
from sb3_hypernet.common.image import image_shape_for
from sb3_hypernet.common.initializers import init_base_linear
from sb3_hypernet.common.policy_hooks import MetaPolicyHooks, unique_parameters
from sb3_hypernet.common.policy_keywords import (
    check_meta_observation_space,
    check_policy_keywords,
    check_sizes,
    check_task_inference_weight,
    check_task_key,
    policy_signature,
)
from sb3_hypernet.common.recurrent import HistoryEncoder, MetaEpisodeExtractor, process_sequence
from sb3_hypernet.common.task import TASK_KEY


class MetaRecurrentPolicy(MetaPolicyHooks, PolicyDiagnostics, RecurrentActorCriticPolicy):
    """Recurrent actor-critic for meta-episodes: a GRU trajectory encoder shared by actor and critic, and a head.

    Subclasses pick the head (``head_class``). Differences from sb3-contrib's ``RecurrentActorCriticPolicy``:
    a GRU (behind the LSTM interface) fed by per-input embeddings replaces the LSTM; actor and critic share it
    and both losses train it (sb3-contrib's shared LSTM would detach the critic); the recurrent pass over a
    training batch is one GRU call; initialisation follows the reference code, not SB3's orthogonal one.

    :param observation_space: the Dict space of :class:`~sb3_hypernet.MetaEpisodeWrapper`
    :param action_space: ``Discrete`` or ``Box``
    :param lr_schedule: learning rate schedule
    :param net_arch: hidden layers of the actor and critic (base) networks: a list for both, or
        ``dict(pi=[...], vf=[...])``; default ``[256, 128]``
    :param activation_fn: activation of the hidden layers
    :param gru_hidden_size: GRU size
    :param n_gru_layers: GRU layers
    :param latent_dim: the encoder's latent has ``2 * latent_dim`` units
    :param obs_embedding_dim: encoder embedding of the observation
    :param action_embedding_dim: encoder embedding of the previous action (0: not an input)
    :param reward_embedding_dim: encoder embedding of the previous reward (0: not an input)
    :param latent_embedding_dim: size of ``tanh(Linear(latent, .))``, what the policy reads of the latent
    :param log_std_init: initial log standard deviation of Gaussian actions (a parameter, never generated)
    :param use_sde: not supported; present because RecurrentPPO always passes it
    :param optimizer_class: optimiser
    :param optimizer_kwargs: optimiser keyword arguments other than the learning rate
    :param task_inference_weight: weight ``w`` of the end-to-end + task-inference combination of NeurIPS 2023
        appendix 8.3 (0: off, the end-to-end method alone). With ``w > 0`` the policy reads the task descriptor
        ``c`` from the observation's ``task`` entry (``expose_task=True``) for a loss only, never to act, and adds
        ``w * ||R(latent) - c||^2`` to the PPO loss: the GRU's latent, the output of the RNN that the policy reads,
        is compared to the label with no bottleneck, no KL and no stop-gradient, so the task-inference gradient
        shares the encoder with the RL gradient. The paper uses the latent "directly" as the prediction; since its
        size (``2 * latent_dim``) differs from the label's in general, ``R`` is one linear readout to the label's
        size (our choice: the least that makes the comparison defined). The paper's "10%" and "50%" weightings are
        ``w = 0.1`` and ``w = 0.5`` here. Train with :class:`~sb3_hypernet.MetaRecurrentPPO`, which adds the
        term (logged as ``train/aux_task_inference``).
    :param image_embedding: how image observations (a Box of shape (height, width, channels)) are embedded, in the
        trajectory encoder and in the state path of RNN+S and the hypernetwork heads alike: ``"linear"`` (the
        reference: the flattened image through one linear layer; any observation) or ``"conv"`` (a small
        convolutional network, :class:`~sb3_hypernet.common.image.ConvEmbedding`, for larger resolutions such as MC-LS
        at 42x42)
    :param head_kwargs: keyword arguments of the head (see each policy)
    """

    head_class: ClassVar[type[MetaPolicyHead]]

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        gru_hidden_size: int = 256,
        n_gru_layers: int = 1,
        latent_dim: int = 5,
        obs_embedding_dim: int = 32,
        action_embedding_dim: int = 16,
        reward_embedding_dim: int = 16,
        latent_embedding_dim: int = 25,
        log_std_init: float = 0.0,
        use_sde: bool = False,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        task_inference_weight: float = 0.0,
        image_embedding: str = "linear",
        **head_kwargs: Any,
    ):
        name = type(self).__name__
        check_meta_observation_space(observation_space, name)
        self._task_inference_weight = check_task_inference_weight(task_inference_weight, self.end_to_end, name)
        if self._task_inference_weight:
            check_task_key(observation_space, f"{name} with task_inference_weight > 0")
        if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
            raise ValueError(f"{name} supports Discrete and Box action spaces, got {action_space}.")
        if use_sde:
            raise ValueError(f"{name} does not support gSDE (use_sde=True).")
        check_policy_keywords(type(self), self.head_class, head_kwargs, stop_at=MetaRecurrentPolicy)
        image_shape = image_shape_for(image_embedding, observation_space["obs"])
        if net_arch is None:
            net_arch = [256, 128]
        arch = check_sizes(
            net_arch,
            head_kwargs,
            gru_hidden_size=gru_hidden_size,
            n_gru_layers=n_gru_layers,
            latent_dim=latent_dim,
            obs_embedding_dim=obs_embedding_dim,
            latent_embedding_dim=latent_embedding_dim,
            action_embedding_dim=action_embedding_dim,
            reward_embedding_dim=reward_embedding_dim,
        )

        # Everything a reload needs, in constructor terms (see _get_constructor_parameters).
        self._config: dict[str, Any] = dict(
            net_arch=net_arch,
            activation_fn=activation_fn,
            gru_hidden_size=gru_hidden_size,
            n_gru_layers=n_gru_layers,
            latent_dim=latent_dim,
            obs_embedding_dim=obs_embedding_dim,
            action_embedding_dim=action_embedding_dim,
            reward_embedding_dim=reward_embedding_dim,
            latent_embedding_dim=latent_embedding_dim,
            log_std_init=log_std_init,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            task_inference_weight=self._task_inference_weight,
            image_embedding=image_embedding,
            **head_kwargs,
        )
        # Read by _build_mlp_extractor, which the parent constructor calls.
        is_discrete = isinstance(action_space, spaces.Discrete)
        condition_dim, head_embedding_dim = self._head_condition(latent_dim, latent_embedding_dim)
        self._head_spec = HeadSpec(
            condition_dim=condition_dim,
            state_dim=get_flattened_obs_dim(observation_space["obs"]),
            action_dim=int(action_space.n) if is_discrete else int(spaces.flatdim(action_space)),
            action_kind="categorical" if is_discrete else "gaussian",
            net_arch=arch,
            activation_fn=activation_fn,
            image_shape=image_shape,
        )
        self._head_kwargs = dict(latent_embedding_dim=head_embedding_dim, **head_kwargs)

        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=arch,
            activation_fn=activation_fn,
            ortho_init=False,
            log_std_init=log_std_init,
            features_extractor_class=MetaEpisodeExtractor,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            lstm_hidden_size=gru_hidden_size,
            n_lstm_layers=n_gru_layers,
            shared_lstm=True,
            enable_critic_lstm=False,
        )
        # The parent built an nn.LSTM; the GRU encoder takes its place (same state layout for the buffer).
        self.lstm_actor = HistoryEncoder(
            obs_dim=self._head_spec.state_dim,
            action_dim=get_flattened_obs_dim(observation_space["prev_action"]),
            obs_embedding_dim=obs_embedding_dim,
            action_embedding_dim=action_embedding_dim,
            reward_embedding_dim=reward_embedding_dim,
            hidden_size=gru_hidden_size,
            num_layers=n_gru_layers,
            latent_dim=latent_dim,
            image_shape=image_shape,
        ).to(self.device)
        self._build_inference_module()
        self._build_optimizer(lr_schedule(1))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "head_class" in cls.__dict__ or "__init__" in cls.__dict__:
            # The head's keywords reach it through **head_kwargs: show them in the policy's signature.
            cls.__signature__ = policy_signature(cls, MetaRecurrentPolicy, cls.head_class)

    @property
    def history_encoder(self) -> HistoryEncoder:
        """The GRU trajectory encoder (held as ``lstm_actor``, where RecurrentPPO and saved models expect it)."""
        return self.lstm_actor

    def _head_condition(self, latent_dim: int, latent_embedding_dim: int) -> tuple[int, int | None]:
        """(size of the head's condition input, size of the head's own embedding of it, or None for none): here the
        GRU latent, embedded by the head as ``tanh(Linear(latent, latent_embedding_dim))``."""
        return 2 * latent_dim, latent_embedding_dim

    def _build_mlp_extractor(self) -> None:
        self.mlp_extractor = self.head_class(self._head_spec, **self._head_kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        if self.mlp_extractor.generates_outputs:
            # The hypernetwork generates the output layers; SB3's heads would add a second, fixed one.
            self.action_net = nn.Identity()
            self.value_net = nn.Identity()
        else:
            init_base_linear(self.action_net, self._head_spec.action_kind)
            # The reference leaves its value layer's bias at nn.Linear's default, U(+-1 / sqrt(fan_in)).
            init_base_linear(self.value_net, "critic")
            bound = 1.0 / math.sqrt(self.value_net.in_features)
            nn.init.uniform_(self.value_net.bias, -bound, bound)

    _process_sequence = staticmethod(process_sequence)

    def _head_inputs(self, obs: PyTorchObs, features: th.Tensor, latent: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """What the head reads: (conditioning input, current observation), from the observation, its flattened
        meta-episode features and the GRU latent. Here the condition is the GRU latent; policies that condition on
        something else (an inferred or the true task) override this."""
        return latent, features[:, : self.features_extractor.obs_dim]

    # sb3-contrib's four entry points are overridden (each a few lines) because with a shared LSTM it detaches
    # the critic from it; here both losses train the shared encoder, as in the reference implementation.
    def _encode_latent(
        self, obs: PyTorchObs, lstm_states: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, tuple[th.Tensor, th.Tensor]]:
        """(flattened meta-episode features, GRU latent, new recurrent state)."""
        features = self.extract_features(obs, self.features_extractor)
        latent, new_state = self._process_sequence(features, lstm_states, episode_starts, self.history_encoder)
        return features, latent, new_state

    def _encode(
        self, obs: PyTorchObs, lstm_states: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor
    ) -> tuple[tuple[th.Tensor, th.Tensor], tuple[th.Tensor, th.Tensor]]:
        """((condition, state) for the head, new recurrent state)."""
        features, latent, new_state = self._encode_latent(obs, lstm_states, episode_starts)
        return self._head_inputs(obs, features, latent), new_state

    def _evaluate_head(
        self, head_inputs: tuple[th.Tensor, th.Tensor], actions: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Values, log-probabilities of ``actions`` and entropies from the head's inputs."""
        latent_pi, latent_vf = self.mlp_extractor(*head_inputs)
        distribution = self._get_action_dist_from_latent(latent_pi)
        return self.value_net(latent_vf), distribution.log_prob(actions), distribution.entropy()

    def forward(
        self,
        obs: PyTorchObs,
        lstm_states: RNNStates | None = None,
        episode_starts: th.Tensor | None = None,
        deterministic: bool = False,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, RNNStates]:
        """Rollout step: actions, values, log-probabilities and the new recurrent state."""
        if lstm_states is None or episode_starts is None:
            raise TypeError(
                f"{type(self).__name__} is a recurrent policy: train it with sb3_contrib.RecurrentPPO "
                "(rl_zoo3 --algo ppo_lstm), which passes the recurrent state; plain PPO does not."
            )
        features, latent, new_state = self._encode_latent(obs, lstm_states.pi, episode_starts)
        self._observe_rollout_step(obs, latent)
        condition, state = self._head_inputs(obs, features, latent)
        self.mlp_extractor.observe(state)
        latent_pi, latent_vf = self.mlp_extractor(condition, state)
        distribution = self._get_action_dist_from_latent(latent_pi)
        actions = distribution.get_actions(deterministic=deterministic)
        log_prob = distribution.log_prob(actions)
        actions = actions.reshape((-1, *self.action_space.shape))
        return actions, self.value_net(latent_vf), log_prob, RNNStates(new_state, new_state)

    def _observe_rollout_step(self, obs: PyTorchObs, latent: th.Tensor) -> None:
        """Hook called on every rollout step (never by ``predict`` or the update) with the GRU latent: policies with
        input normalisers other than the state's (the belief, the task) record their inputs here."""

    def get_distribution(
        self, obs: PyTorchObs, lstm_states: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor
    ) -> tuple[Distribution, tuple[th.Tensor, ...]]:
        """Action distribution and new recurrent state."""
        head_inputs, new_state = self._encode(obs, lstm_states, episode_starts)
        return self._get_action_dist_from_latent(self.mlp_extractor.forward_actor(*head_inputs)), new_state

    def predict_values(
        self, obs: PyTorchObs, lstm_states: tuple[th.Tensor, th.Tensor], episode_starts: th.Tensor
    ) -> th.Tensor:
        """State values."""
        head_inputs, _ = self._encode(obs, lstm_states, episode_starts)
        return self.value_net(self.mlp_extractor.forward_critic(*head_inputs))

    def evaluate_actions(
        self, obs: PyTorchObs, actions: th.Tensor, lstm_states: RNNStates, episode_starts: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
        """Values, log-probabilities of ``actions`` and entropies over a batch of sequences."""
        if self._task_inference_weight:
            # RecurrentPPO calls this: it would silently train without the auxiliary loss.
            raise TypeError(
                f"{type(self).__name__} with task_inference_weight > 0 adds a task-inference loss to PPO's: train it "
                "with sb3_hypernet.MetaRecurrentPPO (rl_zoo3: python -m sb3_hypernet.train --algo meta_ppo_lstm), "
                "which calls evaluate_actions_and_losses; RecurrentPPO would ignore the loss."
            )
        head_inputs, _ = self._encode(obs, lstm_states.pi, episode_starts)
        return self._evaluate_head(head_inputs, actions)

    def evaluate_actions_and_losses(
        self,
        obs: PyTorchObs,
        actions: th.Tensor,
        lstm_states: RNNStates,
        episode_starts: th.Tensor,
        mask: th.Tensor,
        select: th.Tensor | None = None,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """:meth:`evaluate_actions` and the policy's auxiliary losses from the same pass, by name.

        ``mask`` is True on real steps and False on the padding of RecurrentPPO's sequences; auxiliary losses
        average over real steps only. The end-to-end policies have none unless ``task_inference_weight > 0``
        (``task_inference``, appendix 8.3); task-inference policies add theirs, and
        :class:`~sb3_hypernet.MetaRecurrentPPO` adds every term to the PPO loss and logs it. With ``select`` (step
        indices) the GRU runs over the whole sequences but the head only on those steps, whose values,
        log-probabilities and entropies are returned, in that order.
        """
        features, latent, _ = self._encode_latent(obs, lstm_states.pi, episode_starts)
        auxiliary = self.auxiliary_losses(obs, latent, lstm_states.pi, episode_starts, mask)
        if select is not None:
            obs = {key: value[select] for key, value in obs.items()} if isinstance(obs, dict) else obs[select]
            features, latent, actions = features[select], latent[select], actions[select]
        values, log_prob, entropy = self._evaluate_head(self._head_inputs(obs, features, latent), actions)
        return values, log_prob, entropy, auxiliary

    def auxiliary_losses(
        self,
        obs: PyTorchObs,
        latent: th.Tensor,
        initial_state: tuple[th.Tensor, th.Tensor],
        episode_starts: th.Tensor,
        mask: th.Tensor,
    ) -> dict[str, th.Tensor]:
        """The auxiliary losses on a batch of RecurrentPPO sequences (``latent``: the GRU's output over them, from
        ``initial_state``), averaged over the steps where ``mask`` is True: here appendix 8.3's ``task_inference``
        term when ``task_inference_weight > 0``, else none."""
        if not self._task_inference_weight:
            return {}
        error = (self.task_readout(latent) - obs[TASK_KEY].flatten(1).float()).pow(2).sum(-1)
        return {"task_inference": self._task_inference_weight * error[mask].mean()}

    def _build_inference_module(self) -> None:
        """Hook for modules trained by auxiliary losses (task inference), built after the encoder and before the
        optimiser: here appendix 8.3's linear readout of the latent when ``task_inference_weight > 0``, trained with
        the rest of the policy by its optimiser."""
        if self._task_inference_weight:
            task_dim = int(spaces.flatdim(self.observation_space[TASK_KEY]))
            self.task_readout = nn.Linear(2 * self._config["latent_dim"], task_dim).to(self.device)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The trajectory encoder's parameters with any inference module or readout, each once: the group that the
        reference clips (and, for the end-to-end methods, optimises) apart from the actor-critic."""
        readout = list(self.task_readout.parameters()) if self._task_inference_weight else []
        return unique_parameters([*self.history_encoder.parameters(), *self.inference_parameters(), *readout])

    def set_training_mode(self, mode: bool) -> None:
        # A rollout starts with the switch to eval mode: the inputs the previous rollout saw (and the update
        # on it used un-merged) join the normalisation statistics now, so rollout and update agree.
        if not mode and self.training:
            for module in self.modules():
                if isinstance(module, RunningNormalizer):
                    module.commit()
        super().set_training_mode(mode)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return dict(
            observation_space=self.observation_space,
            action_space=self.action_space,
            lr_schedule=self._dummy_schedule,
            **self._config,
        )

    def save(self, path: str) -> None:
        """Save the policy alone (weights, constructor arguments and class name)."""
        th.save(
            {
                "state_dict": self.state_dict(),
                "data": self._get_constructor_parameters(),
                "policy_class": type(self).__qualname__,
            },
            path,
        )

    @classmethod
    def load(cls, path: str, device: th.device | str = "auto") -> MetaRecurrentPolicy:
        """Load a policy saved with :meth:`save`; raises ``ValueError`` if it was saved from another class."""
        device = get_device(device)
        saved = th.load(path, map_location=device, weights_only=False)
        saved_class = saved.get("policy_class") if isinstance(saved, dict) else None
        if saved_class != cls.__qualname__:
            raise ValueError(
                f"{path} holds a {saved_class or 'policy of unknown class'}, not a {cls.__qualname__}: "
                f"load it with {saved_class or 'the class that saved it'}.load()."
            )
        policy = cls(**saved["data"])
        policy.load_state_dict(saved["state_dict"])
        return policy.to(device)
