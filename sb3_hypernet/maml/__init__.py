"""MAML's building blocks (Finn et al. 2017; Sarafian et al., ICML 2021, section 4): the functional inner step, the
linear feature baseline of its policy-gradient inner loss, and the TRPO step of its outer loop."""

from sb3_hypernet.maml.adaptation import forward_with, inner_step, parameters_of
from sb3_hypernet.maml.baseline import LinearFeatureBaseline
from sb3_hypernet.maml.trpo import TRPOStep, trpo_step

__all__ = ["LinearFeatureBaseline", "TRPOStep", "forward_with", "inner_step", "parameters_of", "trpo_step"]
