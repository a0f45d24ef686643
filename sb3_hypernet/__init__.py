"""sb3-hypernet: recurrent hypernetwork policies and meta-episode environments for sb3-contrib's RecurrentPPO, and
the hypernetwork forms of SAC, TD3, PEARL and MAML.

Layout, in Stable-Baselines3's manner: :mod:`sb3_hypernet.common` (shared machinery), one folder per algorithm or
method family (:mod:`~sb3_hypernet.meta_ppo`, :mod:`~sb3_hypernet.rnn`, :mod:`~sb3_hypernet.task_inference`,
:mod:`~sb3_hypernet.varibad`, :mod:`~sb3_hypernet.offpolicy`, :mod:`~sb3_hypernet.pearl`, :mod:`~sb3_hypernet.maml`),
:mod:`~sb3_hypernet.experiments` (rl_zoo3, sweeps, figures) and the command lines (``train``, ``enjoy``,
``evaluate``, ``optimize``, ``sweep``, ``plot``; also as ``sb3-hypernet <command>``).
"""

from sb3_hypernet import _moved
from sb3_hypernet.common.callbacks import LatentDiagnostics, MetaEpisodeLogger
from sb3_hypernet.common.evaluation import MetaEvaluation, RandomPolicy, evaluate_meta_policy
from sb3_hypernet.common.meta_episode import MetaEpisodeWrapper, make_meta_env
from sb3_hypernet.common.policies import MetaRecurrentPolicy
from sb3_hypernet.common.task import TaskDistribution
from sb3_hypernet.maml import MAML, evaluate_maml
from sb3_hypernet.meta_ppo import MetaRecurrentPPO, load_meta_model
from sb3_hypernet.offpolicy import ContextHyperSACPolicy, ContextHyperTD3Policy, HyperSACPolicy, HyperTD3Policy
from sb3_hypernet.pearl import PEARL, evaluate_pearl
from sb3_hypernet.rnn import RNNFiLMPolicy, RNNHNPolicy, RNNPolicy, RNNSPolicy
from sb3_hypernet.task_inference import (
    BIPlusPlusHNPolicy,
    MultiTaskHNPolicy,
    TIHNPolicy,
    TINaivePolicy,
    TIPlusPlusHNPolicy,
    TIPlusPlusPolicy,
    TIPolicy,
)
from sb3_hypernet.varibad import VIHNPolicy, VIPolicy

_moved.install()

__version__ = "0.2.0"

__all__ = [
    "MAML",
    "PEARL",
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
    "evaluate_maml",
    "evaluate_meta_policy",
    "evaluate_pearl",
    "load_meta_model",
    "make_meta_env",
]
