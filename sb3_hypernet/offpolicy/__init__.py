"""Hypernetwork critics and actors for SAC and TD3 (Sarafian et al., ICML 2021)."""

from sb3_hypernet.common.renamed import renamed_attributes
from sb3_hypernet.offpolicy.networks import GeneratedGainLinear, HyperNetwork, PrimaryNetwork, ResidualBlock, SplitInput
from sb3_hypernet.offpolicy.policies import (
    CRITIC_ORDERINGS,
    ContextFeaturesExtractor,
    ContextHyperSACPolicy,
    ContextHyperTD3Policy,
    HyperContinuousCritic,
    HyperSACActor,
    HyperSACPolicy,
    HyperTD3Actor,
    HyperTD3Policy,
)

__all__ = [
    "CRITIC_ORDERINGS",
    "ContextFeaturesExtractor",
    "ContextHyperSACPolicy",
    "ContextHyperTD3Policy",
    "GeneratedGainLinear",
    "HyperContinuousCritic",
    "HyperNetwork",
    "HyperSACActor",
    "HyperSACPolicy",
    "HyperTD3Actor",
    "HyperTD3Policy",
    "PrimaryNetwork",
    "ResidualBlock",
    "SplitInput",
]

#: Names of before 0.2, for users' code.
__getattr__ = renamed_attributes(__name__, globals(), {"DynamicLayer": "GeneratedGainLinear"})
