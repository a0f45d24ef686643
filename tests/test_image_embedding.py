"""Image observations in the policies: the flattened image (the reference) and the optional convolutional embedding
(``image_embedding="conv"``) used by every method."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import obs_as_tensor

import envs  # noqa: F401  (registers the ids)
from sb3_hypernet import (
    MetaRecurrentPPO,
    MultiTaskHNPolicy,
    RNNFiLMPolicy,
    RNNHNPolicy,
    RNNPolicy,
    RNNSPolicy,
    TIHNPolicy,
    TINaivePolicy,
    VIHNPolicy,
    VIPolicy,
)
from sb3_hypernet.common.image import ConvEmbedding, LinearEmbedding

SMALL = dict(gru_hidden_size=16, net_arch=[16], state_embedding_dim=12, latent_dim=3)
#: policy class -> (algorithm, env keyword arguments, extra policy keywords, extra algorithm keywords)
METHODS = {
    RNNPolicy: (RecurrentPPO, {}, {"state_embedding_dim": None}, {}),
    RNNSPolicy: (RecurrentPPO, {}, {}, {}),
    RNNHNPolicy: (RecurrentPPO, {}, {}, {}),
    RNNFiLMPolicy: (RecurrentPPO, {}, {}, {}),
    TINaivePolicy: (MetaRecurrentPPO, {"expose_task": True}, {"decoder_layers": [8]}, {}),
    TIHNPolicy: (MetaRecurrentPPO, {"expose_task": True}, {"decoder_layers": [8]}, {"pretrain_updates": 1}),
    VIPolicy: (MetaRecurrentPPO, {}, {"n_elbo_samples": 8}, {"vae_buffer_size": 8}),
    VIHNPolicy: (MetaRecurrentPPO, {}, {"n_elbo_samples": 8}, {"vae_buffer_size": 8}),
    MultiTaskHNPolicy: (RecurrentPPO, {"expose_task": True}, {}, {}),
}


def make(policy=RNNHNPolicy, resolution: int | None = 42, image_embedding: str = "conv", env_id: str = "MCLS-v0"):
    algo, env_kwargs, policy_kwargs, algo_kwargs = METHODS[policy]
    env_kwargs = dict(env_kwargs, **({} if resolution is None else {"resolution": resolution}))
    env = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs=env_kwargs)
    policy_kwargs = {**SMALL, "image_embedding": image_embedding, **policy_kwargs}
    policy_kwargs = {key: value for key, value in policy_kwargs.items() if value is not None}
    return algo(policy, env, n_steps=32, batch_size=32, n_epochs=1, seed=0, policy_kwargs=policy_kwargs, **algo_kwargs)


def test_conv_embedding_reads_the_flattened_image_in_the_envs_layout():
    th.manual_seed(0)
    embedding = ConvEmbedding((42, 42, 3), 20, th.nn.Tanh)
    images = th.rand(5, 4, 42, 42, 3)
    out = embedding(images.flatten(2))  # (time, batch, H * W * C), as the policy passes it
    assert out.shape == (5, 4, 20)
    expected = th.tanh(embedding.linear(embedding.conv(images.flatten(0, 1).permute(0, 3, 1, 2)).flatten(1)))
    assert th.allclose(out.flatten(0, 1), expected, atol=1e-6)
    # Stride-2 convolutions: 42 -> 21 -> 11 -> 6.
    assert embedding.linear.in_features == 32 * 6 * 6
    assert ConvEmbedding((10, 10, 3), 8)(th.zeros(2, 300)).shape == (2, 8)


@pytest.mark.parametrize("policy", list(METHODS), ids=lambda policy: policy.__name__)
def test_every_method_embeds_images_with_convolutions(policy):
    model = make(policy)
    assert isinstance(model.policy.lstm_actor.obs_embedding, ConvEmbedding)
    state_embedding = getattr(model.policy.mlp_extractor, "state_embedding", None)
    if policy is RNNPolicy:
        assert state_embedding is None  # RL2 reads the state only through the GRU
    else:
        assert isinstance(state_embedding, ConvEmbedding)
        assert state_embedding is not model.policy.lstm_actor.obs_embedding  # each path has its own
    model.learn(64)
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


def test_linear_is_the_default_and_keeps_its_parameter_names():
    model = RecurrentPPO(RNNHNPolicy, make_vec_env("MCLS-v0", n_envs=1), n_steps=8, batch_size=8, policy_kwargs=SMALL)
    assert isinstance(model.policy.lstm_actor.obs_embedding, LinearEmbedding)
    names = model.policy.state_dict().keys()
    assert "lstm_actor.obs_embedding.0.weight" in names and "mlp_extractor.state_embedding.0.weight" in names
    assert model.policy.lstm_actor.obs_embedding[0].in_features == 300  # the flattened 10x10x3 view


def test_ppo_gradient_trains_the_state_convolutions_and_not_the_inference_encoders():
    model = make(TINaivePolicy, resolution=16)
    env = model.get_env()
    obs = obs_as_tensor(env.reset(), "cpu")
    states = th.zeros(1, 2, 16)
    values, log_prob, _, _ = model.policy.evaluate_actions_and_losses(
        obs, th.zeros(2), RNNStates((states, states), (states, states)), th.ones(2), th.ones(2, dtype=th.bool)
    )
    encoder_conv = model.policy.lstm_actor.obs_embedding.conv
    state_conv = model.policy.mlp_extractor.state_embedding.conv
    ppo = th.autograd.grad(
        (values.sum() + log_prob.sum()), [*encoder_conv.parameters(), *state_conv.parameters()], allow_unused=True
    )
    n = len(list(encoder_conv.parameters()))
    assert all(g is None or not g.any() for g in ppo[:n])  # task inference's stop-gradient holds
    assert any(g is not None and g.any() for g in ppo[n:])
    # The VAE's loss on a one-transition meta-episode of these views trains the encoder's convolutions.
    batch = {
        "obs": {key: th.stack([value, value], dim=1) for key, value in obs.items() if key != "task"},
        "reward": th.zeros(2, 1),
        "next_state": obs["obs"][:, None],
        "lengths": th.ones(2, dtype=th.long),
        "task": obs["task"],
    }
    inference = th.autograd.grad(
        sum(model.policy.meta_episode_losses(batch).values()), list(encoder_conv.parameters()), allow_unused=True
    )
    assert any(g is not None and g.any() for g in inference)


def test_save_load_keeps_the_convolutions(tmp_path):
    model = make(RNNSPolicy, resolution=16)
    model.learn(32)
    model.save(tmp_path / "conv")
    loaded = RecurrentPPO.load(tmp_path / "conv", device="cpu")
    assert isinstance(loaded.policy.lstm_actor.obs_embedding, ConvEmbedding)
    obs = model.get_env().reset()
    starts = np.ones(2, dtype=bool)
    actions, _ = model.predict(obs, episode_start=starts, deterministic=True)
    again, _ = loaded.predict(obs, episode_start=starts, deterministic=True)
    assert np.array_equal(actions, again)
    for key, value in model.policy.state_dict().items():
        assert th.equal(value, loaded.policy.state_dict()[key]), key


def test_bad_image_embedding_is_named():
    with pytest.raises(ValueError, match="image_embedding='conv' needs image observations"):
        make(env_id="GridNavi-v0", image_embedding="conv", resolution=None)
    with pytest.raises(ValueError, match="image_embedding must be one of"):
        make(image_embedding="cnn")
