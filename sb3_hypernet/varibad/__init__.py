"""VariBAD's policies, VI and VI+HN (NeurIPS 2023, section 3.3; Zintgraf et al. 2020): the belief of a VAE trained on
whole meta-episodes (:mod:`sb3_hypernet.common.belief`). Train them with :class:`~sb3_hypernet.MetaRecurrentPPO`."""

from sb3_hypernet.varibad.policies import VIHNPolicy, VIPolicy

__all__ = ["VIHNPolicy", "VIPolicy"]
