"""What :class:`~sb3_hypernet.MetaRecurrentPPO` asks of a policy beyond sb3-contrib's ``evaluate_actions``: the
declared interface between the algorithm and the meta-RL policies, and the optimiser groups built on it.

A policy that is not a :class:`MetaPolicyHooks` (sb3-contrib's own ``MlpLstmPolicy``, say) trains with
RecurrentPPO's update and none of the options that need these hooks.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import torch as th
from stable_baselines3.common.type_aliases import PyTorchObs
from torch import nn


class NeedsMetaRecurrentPPO:
    """Stands for the inference optimiser of a policy that no :class:`~sb3_hypernet.MetaRecurrentPPO` has set up.

    MetaRecurrentPPO saves that optimiser's state as ``policy.inference_optimizer``; sb3-contrib's
    ``RecurrentPPO.load`` finds this stand-in there and asks it to load the state, which it refuses with the way to
    load the model, instead of SB3's "Key ... is an invalid object name".
    """

    def load_state_dict(self, *args: Any, **kwargs: Any) -> None:
        raise ValueError(
            "this model was trained with sb3_hypernet.MetaRecurrentPPO (it holds the state of its inference "
            "optimiser), which sb3-contrib's RecurrentPPO cannot load: use sb3_hypernet.MetaRecurrentPPO.load(path) "
            "or sb3_hypernet.load_meta_model(path) (either algorithm's zip), or rl_zoo3's --algo meta_ppo_lstm"
        )

    def __repr__(self) -> str:
        return "NeedsMetaRecurrentPPO()"


def unique_parameters(parameters: list[nn.Parameter]) -> list[nn.Parameter]:
    """``parameters`` without repeats, in order."""
    seen: set[int] = set()
    return [p for p in parameters if not (id(p) in seen or seen.add(id(p)))]


class MetaPolicyHooks(abc.ABC):
    """The hooks of a meta-RL policy that :class:`~sb3_hypernet.MetaRecurrentPPO` calls, with the defaults of an
    end-to-end policy (no inference module, no pre-training, no meta-episode losses).

    Mixed into an ``nn.Module`` policy with SB3's ``optimizer_class`` and ``optimizer_kwargs``; it builds the policy's
    optimiser over every parameter but those another optimiser steps.
    """

    #: Whether the RL loss trains the trajectory encoder (RNN, RNN+S, RNN+HN, FiLM), so that appendix 8.3's
    #: auxiliary task inference can be added and the encoder can have an optimiser of its own.
    end_to_end: ClassVar[bool] = True
    #: Whether the policy has a multi-task pre-training phase (TI, TI++, TI+HN, TI++HN; NeurIPS 2023 section 3.3).
    pretrains: ClassVar[bool] = False
    #: Whether the policy has losses on whole meta-episodes from the VAE buffer (VariBAD and the TI family).
    trains_on_meta_episodes: ClassVar[bool] = False
    _encoder_apart: bool = False
    #: The optimiser of the inference module (or of the encoder kept apart), set by MetaRecurrentPPO; saved with the
    #: model as ``policy.inference_optimizer``.
    inference_optimizer: th.optim.Optimizer | NeedsMetaRecurrentPPO = NeedsMetaRecurrentPPO()

    @abc.abstractmethod
    def evaluate_actions_and_losses(
        self,
        obs: PyTorchObs,
        actions: th.Tensor,
        lstm_states: Any,
        episode_starts: th.Tensor,
        mask: th.Tensor,
        select: th.Tensor | None = None,
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor, dict[str, th.Tensor]]:
        """``evaluate_actions`` and the policy's auxiliary losses (by name) from the same pass; with ``select``
        (step indices), the head runs on those steps only."""

    @abc.abstractmethod
    def encoder_parameters(self) -> list[nn.Parameter]:
        """The trajectory encoder's parameters with any inference module or readout, each once."""

    def inference_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by the auxiliary losses alone, on the algorithm's inference optimiser (and never by
        ``self.optimizer``); none for the end-to-end policies."""
        return []

    def gradient_groups(self) -> dict[str, list[nn.Parameter]]:
        """The modules whose gradient norms the reference implementation clips separately: the trajectory
        encoder (with any inference module or readout) and the actor-critic (everything else); every parameter in
        exactly one group, once (a parameter listed twice would have its norm counted, and be scaled, twice)."""
        encoder = self.encoder_parameters()
        in_encoder = {id(p) for p in encoder}
        return {"encoder": encoder, "actor_critic": [p for p in self.parameters() if id(p) not in in_encoder]}

    def optimize_encoder_apart(self, learning_rate: float) -> None:
        """Leave the trajectory encoder out of ``self.optimizer`` (rebuilt at ``learning_rate``), for an algorithm
        that steps it with an optimiser of its own: the end-to-end methods of the reference train the encoder on the
        RL loss with the VAE's Adam (eps 1e-8, the policy's learning rate). Task-inference policies never
        need it: their encoder is already outside ``self.optimizer``."""
        if not self.end_to_end:
            raise ValueError(f"{type(self).__name__} trains its encoder on its inference losses, already apart")
        self._encoder_apart = True
        self._build_optimizer(learning_rate)

    def _build_optimizer(self, learning_rate: float) -> None:
        """The policy's optimiser, over every parameter but the inference module's (the algorithm trains that on
        its own optimiser), and but the encoder's after :meth:`optimize_encoder_apart`."""
        apart = self.encoder_parameters() if self._encoder_apart else self.inference_parameters()
        inference = {id(p) for p in apart}
        trained_here = [p for p in self.parameters() if id(p) not in inference and p.requires_grad]
        self.optimizer = self.optimizer_class(trained_here, lr=learning_rate, **self.optimizer_kwargs)

    @property
    def in_pretraining(self) -> bool:
        """True while the policy is the multi-task policy of a pre-training phase."""
        return False

    @property
    def inference_frozen(self) -> bool:
        """True while the inference module must not train (TI and TI+HN during their pre-training)."""
        return False

    def start_pretraining(self) -> None:
        """Act as the multi-task policy until the pre-training phase ends (policies with ``pretrains``)."""
        raise ValueError(f"{type(self).__name__} has no multi-task pre-training phase")

    def meta_episode_losses(self, batch: dict[str, Any]) -> dict[str, th.Tensor]:
        """The losses on a batch of whole meta-episodes from the VAE buffer (policies with
        ``trains_on_meta_episodes``), by name."""
        raise ValueError(f"{type(self).__name__} has no losses on whole meta-episodes")
