"""``MetaRecurrentPPO``: sb3-contrib's RecurrentPPO with what the meta-RL methods need beyond its update (auxiliary
losses, the reference's value loss, per-module gradient clipping, pre-training, the VAE's meta-episode buffer), and
loading a saved model as the algorithm that trained it."""

from sb3_hypernet.meta_ppo.loading import algorithm_of, load_meta_model
from sb3_hypernet.meta_ppo.meta_ppo import VAE_DEFAULTS, VALUE_LOSSES, MetaRecurrentPPO, clipped_huber_value_loss

__all__ = [
    "VAE_DEFAULTS",
    "VALUE_LOSSES",
    "MetaRecurrentPPO",
    "algorithm_of",
    "clipped_huber_value_loss",
    "load_meta_model",
]
