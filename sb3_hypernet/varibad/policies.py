"""VI (VariBAD, Zintgraf et al. 2020) and VI+HN (NeurIPS 2023, section 3.3 and appendix 8.1).

No task labels: the belief is trained by VariBAD's VAE alone (:mod:`~sb3_hypernet.common.belief`), to
reconstruct the rewards (and on Walker the states) of whole meta-episodes, past and future.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gymnasium import spaces
from stable_baselines3.common.type_aliases import Schedule

from sb3_hypernet.common.belief import BeliefPolicy
from sb3_hypernet.common.heads import HyperNetworkHead, MetaPolicyHead, RNNSHead


class VIPolicy(BeliefPolicy):
    """VI: VariBAD's belief on RNN+S's policy (NeurIPS 2023, appendix 8.1; Zintgraf et al. 2020). The policy reads
    the state embedding and ``phi``; the GRU encoder and the decoders train on the ELBO over whole meta-episodes.
    Every keyword of :class:`~sb3_hypernet.common.belief.BeliefPolicy`; it needs a reward or a state decoder.
    """

    head_class: ClassVar[type[MetaPolicyHead]] = RNNSHead

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 **kwargs: Any):  # fmt: skip
        if not kwargs.get("decode_reward", True) and not kwargs.get("decode_state", False):
            raise ValueError(
                f"{type(self).__name__} learns its belief from reconstructions alone: keep decode_reward=True or set "
                "decode_state=True"
            )
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)


class VIHNPolicy(VIPolicy):
    """VI+HN (NeurIPS 2023, section 3.3; Beck et al. 2022): VariBAD's belief driving a hypernetwork that generates
    the policy (Bias-HyperInit), the baseline of every benchmark in the paper.

    :param hyper_init: initialisation of the hypernetwork heads (``"bias"``)
    :param hypernet_layers: hidden layers of the hypernetwork (none)
    :param hypernet_mode: ``"factorized"`` or ``"materialized"`` generated layers
    """

    head_class = HyperNetworkHead
