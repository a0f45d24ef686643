"""Task-inference meta-RL on RecurrentPPO (NeurIPS 2023, section 3.3 and appendix 8.1): the algorithm with
auxiliary losses, the reference's value loss, per-module gradient clipping and the multi-task pre-training phase,
and the task-inference policies."""

from sb3_hypernet.task_inference.policies import (
    BIPlusPlusHNPolicy,
    MultiTaskHNPolicy,
    TaskInferencePolicy,
    TIHNPolicy,
    TINaivePolicy,
    TIPlusPlusHNPolicy,
    TIPlusPlusPolicy,
    TIPolicy,
    gaussian_kl,
)
from sb3_hypernet.task_inference.ppo import VALUE_LOSSES, MetaRecurrentPPO, clipped_huber_value_loss

__all__ = [
    "VALUE_LOSSES",
    "BIPlusPlusHNPolicy",
    "MetaRecurrentPPO",
    "MultiTaskHNPolicy",
    "TIHNPolicy",
    "TINaivePolicy",
    "TIPlusPlusHNPolicy",
    "TIPlusPlusPolicy",
    "TIPolicy",
    "TaskInferencePolicy",
    "clipped_huber_value_loss",
    "gaussian_kl",
]
