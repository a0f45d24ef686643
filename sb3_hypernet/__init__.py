"""sb3-hypernet: recurrent hypernetwork policies and meta-episode environments for sb3-contrib's RecurrentPPO."""

from sb3_hypernet.callbacks import LatentDiagnostics, MetaEpisodeLogger
from sb3_hypernet.evaluation import MetaEvaluation, RandomPolicy, evaluate_meta_policy, load_meta_model
from sb3_hypernet.offpolicy import ContextHyperSACPolicy, ContextHyperTD3Policy, HyperSACPolicy, HyperTD3Policy
from sb3_hypernet.policies import MetaRecurrentPolicy, RNNFiLMPolicy, RNNHNPolicy, RNNPolicy, RNNSPolicy
from sb3_hypernet.task_inference import (
    BIPlusPlusHNPolicy,
    MetaRecurrentPPO,
    MultiTaskHNPolicy,
    TIHNPolicy,
    TINaivePolicy,
    TIPlusPlusHNPolicy,
    TIPlusPlusPolicy,
    TIPolicy,
    VIHNPolicy,
    VIPolicy,
)
from sb3_hypernet.wrappers import MetaEpisodeWrapper, TaskDistribution, make_meta_env

__version__ = "0.1.0"

__all__ = [
    "BIPlusPlusHNPolicy",
    "ContextHyperSACPolicy",
    "ContextHyperTD3Policy",
    "HyperSACPolicy",
    "HyperTD3Policy",
    "LatentDiagnostics",
    "MetaEpisodeLogger",
    "MetaEpisodeWrapper",
    "MetaEvaluation",
    "MetaRecurrentPPO",
    "MetaRecurrentPolicy",
    "MultiTaskHNPolicy",
    "RNNFiLMPolicy",
    "RNNHNPolicy",
    "RNNPolicy",
    "RNNSPolicy",
    "RandomPolicy",
    "TIHNPolicy",
    "TINaivePolicy",
    "TIPlusPlusHNPolicy",
    "TIPlusPlusPolicy",
    "TIPolicy",
    "TaskDistribution",
    "VIHNPolicy",
    "VIPolicy",
    "evaluate_meta_policy",
    "load_meta_model",
    "make_meta_env",
]
