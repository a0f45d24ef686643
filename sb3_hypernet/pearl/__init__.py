"""PEARL and Hyper-PEARL (Rakelly et al. 2019; Sarafian et al., ICML 2021, section 4): off-policy meta-RL with a
probabilistic context encoder, on SB3's SAC."""

from sb3_hypernet.common.task import draw_task_split
from sb3_hypernet.pearl.encoder import ContextEncoder, kl_to_standard_normal, product_of_gaussians
from sb3_hypernet.pearl.evaluation import evaluate_pearl
from sb3_hypernet.pearl.pearl import PEARL
from sb3_hypernet.pearl.policies import HyperPEARLActor, HyperPEARLPolicy, PEARLPolicy, latent_observation_space

__all__ = [
    "PEARL",
    "ContextEncoder",
    "HyperPEARLActor",
    "HyperPEARLPolicy",
    "PEARLPolicy",
    "draw_task_split",
    "evaluate_pearl",
    "kl_to_standard_normal",
    "latent_observation_space",
    "product_of_gaussians",
]
