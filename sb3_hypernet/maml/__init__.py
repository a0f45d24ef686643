"""MAML, Context-MAML and Hyper-MAML (Finn et al. 2017; Sarafian et al., ICML 2021, section 4) and their building
blocks: the functional inner step, the linear feature baseline of the policy-gradient inner loss, and the TRPO step
of the outer loop."""

from sb3_hypernet.maml.adaptation import forward_with, inner_step, parameters_of
from sb3_hypernet.maml.baseline import LinearFeatureBaseline
from sb3_hypernet.maml.evaluation import evaluate_maml
from sb3_hypernet.maml.maml import MAML, Episodes
from sb3_hypernet.maml.policies import ContextMAMLPolicy, HyperMAMLPolicy, MAMLPolicy
from sb3_hypernet.maml.trpo import TRPOStep, trpo_step

__all__ = [
    "MAML",
    "ContextMAMLPolicy",
    "Episodes",
    "HyperMAMLPolicy",
    "LinearFeatureBaseline",
    "MAMLPolicy",
    "TRPOStep",
    "evaluate_maml",
    "forward_with",
    "inner_step",
    "parameters_of",
    "trpo_step",
]
