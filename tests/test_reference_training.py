"""Training as the reference implementation trains: gradient groups, per-module clipping, the belief and task
normalisers, the Bernoulli reward decoder, and MetaRecurrentPPO's reference options (advantages over the batch,
precollection, the end-to-end encoder's own optimiser)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.env_util import make_vec_env

import envs  # noqa: F401
from sb3_hypernet import (
    BIPlusPlusHNPolicy,
    MetaRecurrentPPO,
    MultiTaskHNPolicy,
    RNNFiLMPolicy,
    RNNHNPolicy,
    RNNPolicy,
    RNNSPolicy,
    TIHNPolicy,
    TINaivePolicy,
    TIPlusPlusHNPolicy,
    TIPlusPlusPolicy,
    TIPolicy,
    VIHNPolicy,
    VIPolicy,
)
from sb3_hypernet.common.belief import grid_cells

SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], state_embedding_dim=12, latent_dim=3)
EVERY_POLICY = [
    RNNPolicy, RNNSPolicy, RNNHNPolicy, RNNFiLMPolicy, TINaivePolicy, TIPolicy, TIPlusPlusPolicy, TIHNPolicy,
    TIPlusPlusHNPolicy, BIPlusPlusHNPolicy, MultiTaskHNPolicy, VIPolicy, VIHNPolicy,
]  # fmt: skip


def make(policy=TINaivePolicy, policy_kwargs=None, n_envs: int = 2, **kwargs) -> MetaRecurrentPPO:
    env = make_vec_env("GridNavi-v0", n_envs=n_envs, seed=0, env_kwargs=dict(expose_task=True))
    defaults = dict(n_steps=60, batch_size=40, n_epochs=2, seed=0, learning_rate=1e-3)
    small = {key: value for key, value in SMALL.items() if key != "state_embedding_dim" or policy is not RNNPolicy}
    return MetaRecurrentPPO(policy, env, policy_kwargs={**small, **(policy_kwargs or {})}, **{**defaults, **kwargs})


@pytest.mark.parametrize("policy_class", [*EVERY_POLICY, "rnn_hn_task_inference"])
def test_every_parameter_is_in_exactly_one_gradient_group_once(policy_class):
    if policy_class == "rnn_hn_task_inference":  # appendix 8.3: a readout joins the encoder's group
        model = make(RNNHNPolicy, policy_kwargs=dict(task_inference_weight=0.1))
    else:
        model = make(policy_class)
    groups = model.policy.gradient_groups()
    listed = [id(p) for parameters in groups.values() for p in parameters]
    assert len(listed) == len(set(listed)), {name: len(ps) for name, ps in groups.items()}
    assert set(listed) == {id(p) for p in model.policy.parameters()}
    assert {id(p) for p in model.policy.lstm_actor.parameters()} <= {id(p) for p in groups["encoder"]}


@pytest.mark.parametrize("policy_class", [TIPolicy, RNNHNPolicy])
def test_per_module_clipping_brings_each_group_to_the_maximum_norm(policy_class):
    # A gradient of norm 20 on the encoder and 3 on the actor-critic ends at norm 0.5 in each (the reference's
    # clipping).
    model = make(policy_class, clip_grad_per_module=True, max_grad_norm=0.5, learning_rate=0.0,
                 inference_learning_rate=1e-9)  # fmt: skip
    groups = model.policy.gradient_groups()
    generator = th.Generator().manual_seed(0)
    loss = th.zeros(())
    for name, norm in (("encoder", 20.0), ("actor_critic", 3.0)):
        directions = [th.randn(p.shape, generator=generator) for p in groups[name]]
        scale = norm / float(th.sqrt(sum(d.pow(2).sum() for d in directions)))
        loss = loss + sum((p * d * scale).sum() for p, d in zip(groups[name], directions, strict=True))
    model._step(loss)
    for name in groups:
        norm = float(th.sqrt(sum(p.grad.pow(2).sum() for p in groups[name] if p.grad is not None)))
        assert norm == pytest.approx(0.5, rel=1e-4), name


def latent_of(model, obs):
    policy = model.policy
    states = th.zeros(1, 2, 16)
    return policy._encode_latent(obs, (states, states), th.ones(2))[1]


@pytest.mark.parametrize("policy_class", [TINaivePolicy, VIHNPolicy])
def test_the_belief_normaliser_learns_from_rollouts_is_used_alike_everywhere_and_survives_save_load(
    policy_class, tmp_path
):
    model = make(policy_class)
    normalizer = model.policy.belief_normalizer
    assert float(normalizer.count) == 0 and th.equal(normalizer.var, th.ones(6))
    model.learn(240)
    model.policy.set_training_mode(False)  # a rollout would start here: the last rollout's beliefs join
    assert float(normalizer.count) == 240  # every rollout step, no evaluation step
    assert not th.equal(normalizer.mean, th.zeros(6)) and not th.equal(normalizer.var, th.ones(6))
    obs = {key: th.as_tensor(value) for key, value in model.get_env().reset().items()}
    latent = latent_of(model, obs)
    policy = model.policy
    expected = policy.belief_projection((latent - normalizer.mean) / th.sqrt(normalizer.var + 1e-8))
    features = policy.extract_features(obs, policy.features_extractor)
    # The same condition whichever path reads it (rollout, predict, update).
    assert th.allclose(policy._head_inputs(obs, features, latent)[0], expected, atol=1e-6)
    model.save(tmp_path / "model.zip")
    loaded = MetaRecurrentPPO.load(tmp_path / "model.zip")
    for name in ("mean", "var", "count"):
        assert th.equal(getattr(loaded.policy.belief_normalizer, name), getattr(normalizer, name)), name
    # Broken on purpose: without the normaliser the condition is another one.
    assert not th.allclose(policy.belief_projection(latent), expected, atol=1e-3)


@pytest.mark.parametrize("policy_class", [MultiTaskHNPolicy, TIPlusPlusHNPolicy])
def test_the_task_normaliser_learns_the_task_statistics(policy_class):
    extra = dict(pretrain_updates=3) if policy_class is TIPlusPlusHNPolicy else {}
    model = make(policy_class, **extra)
    embedding = model.policy.task_embedding
    model.learn(240)
    model.policy.set_training_mode(False)
    assert float(embedding.normalizer.count) == 240
    assert (embedding.normalizer.mean > 0.5).all()  # goals lie outside the start's corner: coordinates well above 0
    task = th.as_tensor(model.get_env().reset()["task"])
    expected = th.tanh(embedding.linear((task - embedding.normalizer.mean) / th.sqrt(embedding.normalizer.var + 1e-8)))
    assert th.allclose(embedding(task), expected, atol=1e-6)


def test_the_bernoulli_reward_decoder_is_the_cross_entropy_of_the_cell_heads():
    # The reference's Grid-World reward decoder: one logit per cell from z; the next state's cell's probability of
    # the goal reward against reward == 1, summed over latents and transitions, averaged over meta-episodes.
    model = make(VIPolicy, policy_kwargs=dict(reward_decoder="cell_bernoulli", reward_decoder_layers=[8]))
    policy = model.policy
    assert policy.reward_decoder[-1].out_features == 25
    model.learn(240)
    np.random.seed(0)
    batch = model.meta_episode_buffer.sample(3)
    th.manual_seed(3)
    loss = policy.meta_episode_losses(batch)["reward_reconstruction"]
    with th.no_grad():
        _, latent = policy.encode_meta_episodes(batch["obs"])
        mean, logvar = latent.chunk(2, dim=-1)
        th.manual_seed(3)
        z = mean + th.exp(0.5 * logvar) * th.randn_like(mean)
        expected = 0.0
        for episode, length in enumerate(batch["lengths"].tolist()):
            for j in range(length + 1):
                logits = policy.reward_decoder(z[episode, j])
                for t in range(length):
                    x, y = batch["next_state"][episode, t].round().long().tolist()
                    hit = float(batch["reward"][episode, t] == 1.0)
                    expected += F.binary_cross_entropy(th.sigmoid(logits[x * 5 + y]), th.tensor(hit)).item()
    assert loss.item() == pytest.approx(expected / 3, rel=1e-4)


def test_the_bernoulli_reward_decoder_needs_grid_coordinates():
    with pytest.raises(ValueError, match="finite integer bounds"):
        grid_cells(spaces.Box(-1.0, 1.5, (2,)))
    with pytest.raises(ValueError, match="a 1-D Box with integer bounds"):
        grid_cells(spaces.Discrete(3))
    with pytest.raises(ValueError, match="reward_decoder must be one of"):
        make(VIPolicy, policy_kwargs=dict(reward_decoder="bernoulli"))


def captured_advantages(model) -> list[th.Tensor]:
    seen: list[th.Tensor] = []
    original = model._minibatch_loss

    def recording(batch, *args):
        seen.append(batch.advantages[batch.mask > 1e-8].clone())
        return original(batch, *args)

    model._minibatch_loss = recording
    return seen


def test_batch_advantage_normalisation_normalises_the_whole_rollout_once():
    model = make(RNNHNPolicy, advantage_normalization="batch", n_epochs=1)
    seen = captured_advantages(model)
    model.learn(120)
    advantages = th.cat(seen)
    assert advantages.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert advantages.std().item() == pytest.approx(1.0, abs=1e-3)
    assert any(abs(chunk.mean().item()) > 1e-3 for chunk in seen)  # a minibatch is not renormalised on its own
    minibatch = make(RNNHNPolicy, n_epochs=1)
    raw = captured_advantages(minibatch)
    minibatch.learn(120)
    assert abs(th.cat(raw).std().item() - 1.0) > 1e-3  # SB3's default normalises later, inside the loss
    with pytest.raises(ValueError, match="advantage_normalization must be one of"):
        make(RNNHNPolicy, advantage_normalization="rollout")


def test_no_update_before_the_precollected_frames():
    model = make(RNNSPolicy, precollect_frames=200)
    before = {name: p.detach().clone() for name, p in model.policy.named_parameters()}
    model.learn(120)
    assert model._n_updates == 0
    assert all(th.equal(p, before[name]) for name, p in model.policy.named_parameters())
    model.learn(120, reset_num_timesteps=False)  # 240 frames >= 200: the update happens
    assert model._n_updates == 2
    with pytest.raises(ValueError, match="precollect_frames must be an integer >= 0"):
        make(RNNSPolicy, precollect_frames=-1)


def test_the_end_to_end_encoder_steps_on_its_own_adam_at_the_policys_learning_rate(tmp_path):
    schedule = lambda progress: 3e-4 * (0.5 + 0.5 * progress)  # noqa: E731
    model = make(RNNHNPolicy, separate_encoder_optimizer=True, learning_rate=schedule, clip_grad_per_module=True)
    encoder = {id(p) for p in model.policy.lstm_actor.parameters()}
    in_policy = {id(p) for group in model.policy.optimizer.param_groups for p in group["params"]}
    assert not encoder & in_policy
    assert in_policy | encoder == {id(p) for p in model.policy.parameters()}
    (group,) = model.inference_optimizer.param_groups
    assert {id(p) for p in group["params"]} == encoder and group["eps"] == 1e-8
    before = {name: p.detach().clone() for name, p in model.policy.lstm_actor.named_parameters()}
    model.learn(240)
    assert any(not th.equal(p, before[name]) for name, p in model.policy.lstm_actor.named_parameters())
    # Both follow the policy's schedule (the reference's VAE optimiser runs at lr_policy for these models).
    policy_lr = model.policy.optimizer.param_groups[0]["lr"]
    assert policy_lr == pytest.approx(3e-4 * 0.5) and group["lr"] == pytest.approx(policy_lr)
    model.save(tmp_path / "model.zip")
    loaded = MetaRecurrentPPO.load(tmp_path / "model.zip", env=model.get_env())
    assert loaded.separate_encoder_optimizer
    loaded.learn(120)
    with pytest.raises(ValueError, match="separate_encoder_optimizer is for the end-to-end policies"):
        make(TINaivePolicy, separate_encoder_optimizer=True)


def test_step_minibatches_cover_the_rollout_once_mix_sequences_and_equal_the_masked_loss():
    model = make(RNNHNPolicy, minibatch_sampling="steps", advantage_normalization="batch", value_loss="huber_clipped")
    model.learn(120)  # the buffer keeps the last rollout: 2 envs x 60 steps, minibatches of 40 steps
    model.policy.set_training_mode(True)
    minibatches = list(model._minibatches())
    (batch, _), length = minibatches[0], model.rollout_buffer.buffer_size
    selections = [select for _, select in minibatches]
    assert [len(select) for select in selections] == [40, 40, 40]
    real = th.nonzero(batch.mask > 1e-8).flatten()
    assert th.equal(th.cat(selections).sort().values, real)  # every real step once per epoch
    n_steps = batch.mask.shape[0] // batch.lstm_states.pi[0].shape[1]  # padded sequence length
    assert all(len(set((select // n_steps).tolist())) > 1 for select in selections)  # steps of several sequences
    # Each env's steps are one sequence re-run from the rollout's first step (here each rollout is one whole
    # meta-episode): sb3-contrib's get() would cut one env's steps at a random index.
    assert (batch.lstm_states.pi[0].shape[1], n_steps) == (model.n_envs, length)
    stored = th.as_tensor(model.rollout_buffer.hidden_states_pi[::length], dtype=batch.lstm_states.pi[0].dtype)
    assert th.equal(batch.lstm_states.pi[0].transpose(0, 1), stored)
    select = selections[0]
    th.manual_seed(0)
    loss, logged, _ = model._minibatch_loss(batch, 0.05, None, select)
    only = th.zeros_like(batch.mask).index_fill_(0, select, 1.0)
    th.manual_seed(0)
    masked, masked_logged, _ = model._minibatch_loss(batch._replace(mask=only), 0.05, None)  # the head on every step
    assert loss.item() == pytest.approx(masked.item(), rel=1e-5)
    for name in ("policy_gradient_loss", "value_loss", "entropy_loss"):
        assert logged[name].item() == pytest.approx(masked_logged[name].item(), rel=1e-5), name
    with pytest.raises(ValueError, match="minibatch_sampling must be one of"):
        make(RNNHNPolicy, minibatch_sampling="random")
