"""The end-to-end recurrent policies (NeurIPS 2023 sections 3.2 and 5; CoRL 2022 section 4): RNN (RL2), RNN+S,
RNN+HN and FiLM, for sb3-contrib's ``RecurrentPPO`` or :class:`~sb3_hypernet.MetaRecurrentPPO`. Use them by class
(``RecurrentPPO(RNNHNPolicy, env)``) or by import path in an rl_zoo3 config (``policy: sb3_hypernet.RNNHNPolicy``).
"""

from __future__ import annotations

from sb3_hypernet.common.heads import FiLMHead, HyperNetworkHead, RNNHead, RNNSHead
from sb3_hypernet.common.policies import MetaRecurrentPolicy


class RNNPolicy(MetaRecurrentPolicy):
    """RL2 / "RNN" (Duan et al. 2016; NeurIPS 2023 section 3.2): actor and critic MLPs on the latent only.

    :param latent_embedding_dim: size of the latent embedding the MLPs read (25)
    """

    head_class = RNNHead


class RNNSPolicy(MetaRecurrentPolicy):
    """ "RNN+S" (NeurIPS 2023 section 5): MLPs on the state embedding and the latent embedding.

    :param state_embedding_dim: size of the state embedding (256)
    :param normalize_state: running mean/std normalisation of the state input (True)
    """

    head_class = RNNSHead


class RNNHNPolicy(MetaRecurrentPolicy):
    """ "RNN+HN", the recurrent hypernetwork (NeurIPS 2023 section 3.2; CoRL 2022 section 4): the GRU's latent
    embedding drives a hypernetwork that generates every weight and bias of the actor and critic MLPs applied
    to the state embedding, with Bias-HyperInit by default (CoRL 2022 section 4.2).

    :param state_embedding_dim: size of the state embedding, the base networks' input (256)
    :param normalize_state: running mean/std normalisation of the state input (True)
    :param hyper_init: initialisation of the hypernetwork heads: ``"bias"`` (Bias-HyperInit), ``"weight"``
        (Weight-HyperInit), ``"hfi"`` (hyperfan-in), or the naive ``"kaiming"``, ``"normc"``, ``"orthogonal"``
    :param hypernet_layers: hidden layers of the hypernetwork (none by default: one linear head per tensor)
    :param hypernet_mode: ``"factorized"`` (default) or ``"materialized"`` computation of generated layers
    """

    head_class = HyperNetworkHead


class RNNFiLMPolicy(MetaRecurrentPolicy):
    """RNN with FiLM conditioning (CoRL 2022 section 4.3): actor and critic MLPs on the state embedding with plain
    weights, whose units a hypernetwork on the latent embedding scales and shifts per sample; Bias-HyperInit
    adapted to FiLM (scale 1, shift 0 for every latent at initialisation).

    :param state_embedding_dim: size of the state embedding, the base networks' input (256)
    :param normalize_state: running mean/std normalisation of the state input (True)
    :param hyper_init: ``"bias"``, ``"kaiming"``, ``"normc"`` or ``"orthogonal"`` for the scale and shift heads
    :param hypernet_layers: hidden layers of the hypernetwork (none by default)
    """

    head_class = FiLMHead
