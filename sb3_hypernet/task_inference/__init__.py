"""Label-based task inference (NeurIPS 2023, section 3.3 and appendix 8.1): TI Naive, TI, TI++, TI+HN, TI++HN,
BI++HN and the multi-task upper bound Multi+HN, on VariBAD's belief (:mod:`sb3_hypernet.common.belief`). Train them
with :class:`~sb3_hypernet.MetaRecurrentPPO`."""

from sb3_hypernet.task_inference.policies import (
    BIPlusPlusHNPolicy,
    MultiTaskHNPolicy,
    TaskInferencePolicy,
    TIHNPolicy,
    TINaivePolicy,
    TIPlusPlusHNPolicy,
    TIPlusPlusPolicy,
    TIPolicy,
)

__all__ = [
    "BIPlusPlusHNPolicy",
    "MultiTaskHNPolicy",
    "TIHNPolicy",
    "TINaivePolicy",
    "TIPlusPlusHNPolicy",
    "TIPlusPlusPolicy",
    "TIPolicy",
    "TaskInferencePolicy",
]
