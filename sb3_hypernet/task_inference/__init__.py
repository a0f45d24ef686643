"""Task-inference meta-RL on RecurrentPPO (NeurIPS 2023, section 3.3 and appendix 8.1): the algorithm with
auxiliary losses, the reference's value loss, per-module gradient clipping and the multi-task pre-training phase,
the task-inference policies, and VariBAD's (VI, VI+HN) with the meta-episode buffer its VAE trains on."""

from sb3_hypernet.task_inference.belief import BeliefPolicy, TaskEmbedding, gaussian_kl
from sb3_hypernet.task_inference.meta_episode_buffer import MetaEpisodeBuffer, MetaEpisodeRecorder
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
from sb3_hypernet.task_inference.ppo import VAE_DEFAULTS, VALUE_LOSSES, MetaRecurrentPPO, clipped_huber_value_loss
from sb3_hypernet.task_inference.varibad import VIHNPolicy, VIPolicy

__all__ = [
    "VAE_DEFAULTS",
    "VALUE_LOSSES",
    "BIPlusPlusHNPolicy",
    "BeliefPolicy",
    "MetaEpisodeBuffer",
    "MetaEpisodeRecorder",
    "MetaRecurrentPPO",
    "MultiTaskHNPolicy",
    "TIHNPolicy",
    "TINaivePolicy",
    "TIPlusPlusHNPolicy",
    "TIPlusPlusPolicy",
    "TIPolicy",
    "TaskEmbedding",
    "TaskInferencePolicy",
    "VIHNPolicy",
    "VIPolicy",
    "clipped_huber_value_loss",
    "gaussian_kl",
]
