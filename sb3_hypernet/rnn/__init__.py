"""The end-to-end recurrent policies: RNN (RL2), RNN+S, RNN+HN and FiLM."""

from sb3_hypernet.rnn.policies import RNNFiLMPolicy, RNNHNPolicy, RNNPolicy, RNNSPolicy

__all__ = ["RNNFiLMPolicy", "RNNHNPolicy", "RNNPolicy", "RNNSPolicy"]
