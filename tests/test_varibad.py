"""VI and VI+HN (VariBAD): the meta-episode buffer and its recorder, the ELBO against a hand computation, coverage of
every step from every latent, masking of padding, subsampling, stop-gradients both ways, the algorithm's VAE steps
and settings, save/load and a short training run."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

import envs  # noqa: F401
from sb3_hypernet import MetaRecurrentPPO, RNNHNPolicy, TINaivePolicy, VIHNPolicy, VIPolicy
from sb3_hypernet.common.belief import choose_steps, gaussian_kl
from sb3_hypernet.common.meta_episode_buffer import MetaEpisodeBuffer
from sb3_hypernet.meta_ppo.loading import load_meta_model

SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], state_embedding_dim=12, latent_dim=3, reward_decoder_layers=[8])
GRID_STEPS = 60  # GridNavi: 4 inner episodes of 15 steps


def make(policy=VIPolicy, n_envs: int = 2, norm_obs: bool = False, policy_kwargs=None, **kwargs) -> MetaRecurrentPPO:
    env = VecNormalize(make_vec_env("GridNavi-v0", n_envs=n_envs, seed=0), norm_obs=norm_obs, norm_reward=True)
    defaults = dict(n_steps=60, batch_size=60, n_epochs=2, seed=0, learning_rate=1e-3, vae_batch_size=4)
    return MetaRecurrentPPO(policy, env, policy_kwargs={**SMALL, **(policy_kwargs or {})}, **{**defaults, **kwargs})


def tiny_batch(policy: VIPolicy, lengths=(2,), n_steps: int = 2, seed: int = 0) -> dict:
    """A hand-made batch of meta-episodes of ``n_steps`` transitions in GridNavi's spaces, padded to ``n_steps``."""
    rng = np.random.default_rng(seed)
    space = policy.observation_space
    n = len(lengths)
    obs = {
        "obs": rng.integers(0, 5, (n, n_steps + 1, 2)).astype(np.float32),
        # Consecutive steps with different actions, so a_t and a_{t+1} cannot be confused.
        "prev_action": np.eye(5, dtype=np.float32)[(np.arange(n_steps + 1) + np.arange(n)[:, None]) % 5],
        "prev_reward": rng.normal(size=(n, n_steps + 1, 1)).astype(np.float32),
        "episode_done": np.zeros((n, n_steps + 1, 1), np.float32),
    }
    assert all(obs[key].shape[2:] == space[key].shape for key in obs)
    return {
        "obs": {key: th.as_tensor(value) for key, value in obs.items()},
        "reward": th.as_tensor(rng.normal(size=(n, n_steps)).astype(np.float32)),
        "next_state": th.as_tensor(rng.integers(0, 5, (n, n_steps, 2)).astype(np.float32)),
        "lengths": th.as_tensor(lengths),
    }


# ---------------------------------------------------------------------------------------------------------------------
# The meta-episode buffer
# ---------------------------------------------------------------------------------------------------------------------


def rollout(env: gym.Env, steps: int, seed: int = 0) -> list[dict]:
    """A random rollout of one meta-episode env as a VecEnv steps it: per step the observation before, the one
    after (the next meta-episode's first after a meta-episode's end, with the terminal one in ``info``), the reward,
    the done flag and the info."""
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        new_obs, reward, terminated, truncated, info = env.step(int(rng.integers(0, 5)))
        done = terminated or truncated
        if done:
            info = dict(info, terminal_observation=new_obs)
            new_obs, _ = env.reset()
        out.append(dict(obs=obs, new_obs=new_obs, reward=reward, done=done, info=info))
        obs = new_obs
    return out


def feed(buffer: MetaEpisodeBuffer, steps: list[dict], first: int = 0) -> None:
    """Give ``buffer`` steps ``first ..`` of a single-env rollout."""
    buffer.start(np.array([first == 0]))
    for step in steps[first:]:
        as_batch = {key: np.asarray(value)[None] for key, value in step["obs"].items()}
        new_batch = {key: np.asarray(value)[None] for key, value in step["new_obs"].items()}
        buffer.add(as_batch, new_batch, np.array([step["reward"]]), np.array([step["done"]]), [step["info"]])


def test_the_buffer_stores_each_meta_episode_with_its_true_next_states_and_raw_rewards():
    env = gym.make("GridNavi-v0")
    steps = rollout(env, GRID_STEPS)
    observations = [step["obs"] for step in steps] + [steps[-1]["info"]["terminal_observation"]]
    buffer = MetaEpisodeBuffer(4, env.observation_space, n_envs=1)
    feed(buffer, steps)
    assert len(buffer) == 1 and buffer.lengths[0] == GRID_STEPS and buffer.max_length >= GRID_STEPS  # grew from 16
    for key in ("obs", "prev_action", "prev_reward", "episode_done"):
        expected = np.stack([o[key] for o in observations])
        np.testing.assert_array_equal(buffer.storage[f"obs/{key}"][0, : GRID_STEPS + 1], expected)
    np.testing.assert_allclose(buffer.storage["reward"][0, :GRID_STEPS], [step["reward"] for step in steps])
    boundaries = [t for t in range(GRID_STEPS) if "inner_terminal_observation" in steps[t]["info"]]
    assert boundaries == [14, 29, 44]
    for t in range(GRID_STEPS):
        info = steps[t]["info"]
        expected = info["inner_terminal_observation"] if t in boundaries else observations[t + 1]["obs"]
        np.testing.assert_array_equal(buffer.storage["next_state"][0, t], expected)
    # At a boundary the agent sees the next episode's start, but the transition's next state is where it ended.
    assert all(observations[t + 1]["episode_done"][0] == 1.0 for t in boundaries)


def test_the_buffer_keeps_the_most_recent_complete_meta_episodes_only():
    env = gym.make("GridNavi-v0")
    steps = rollout(env, 3 * GRID_STEPS)
    rewards = np.float32([step["reward"] for step in steps])
    buffer = MetaEpisodeBuffer(2, env.observation_space, n_envs=1)
    feed(buffer, steps[:GRID_STEPS], first=10)  # joined mid-episode: the first one is partial
    assert len(buffer) == 0
    feed(buffer, steps)
    assert len(buffer) == 2  # a ring of 2: the 2nd and 3rd meta-episodes
    stored = {tuple(buffer.storage["reward"][i, :GRID_STEPS]) for i in range(2)}
    assert stored == {tuple(rewards[k * GRID_STEPS : (k + 1) * GRID_STEPS]) for k in (1, 2)}
    with pytest.raises(ValueError, match="buffer size"):
        MetaEpisodeBuffer(0, env.observation_space, n_envs=1)
    with pytest.raises(ValueError, match="empty"):
        MetaEpisodeBuffer(2, env.observation_space, n_envs=1).sample(3)


def test_training_records_raw_rewards_under_reward_normalisation():
    model = make(n_envs=2)
    model.learn(240)
    buffer = model.meta_episode_buffer
    assert len(buffer) == 4 and set(buffer.lengths[:4]) == {GRID_STEPS}
    rewards = buffer.storage["reward"][:4, :GRID_STEPS]
    assert np.isclose(rewards[..., None], [-0.1, 1.0]).any(-1).all()  # GridNavi's raw rewards, not normalised
    # Each transition's reward is what the next observation shows as the previous reward.
    np.testing.assert_allclose(buffer.storage["obs/prev_reward"][:4, 1 : GRID_STEPS + 1, 0], rewards)


def test_normalised_observations_are_a_clear_error():
    model = make(norm_obs=True)
    with pytest.raises(ValueError, match="norm_obs=False"):
        model.learn(120)


# ---------------------------------------------------------------------------------------------------------------------
# The ELBO
# ---------------------------------------------------------------------------------------------------------------------


def test_elbo_terms_match_a_hand_computation():
    policy = make(policy_kwargs=dict(reward_decoder_inputs=["state", "action", "next_state"], decode_state=True,
                                     obs_embedding_dim=5, action_embedding_dim=4,
                                     state_decoder_layers=[6], kl_weight=0.3, reward_loss_weight=2.0,
                                     state_loss_weight=0.5)).policy  # fmt: skip
    batch = tiny_batch(policy, lengths=(2,), n_steps=2)
    th.manual_seed(5)
    losses = policy.meta_episode_losses(batch)

    _, latent = policy.encode_meta_episodes(batch["obs"])
    mean, logvar = latent[0].detach().chunk(2, dim=-1)  # 3 latents: after o_0, o_1, o_2
    th.manual_seed(5)
    z = mean + th.exp(0.5 * logvar) * th.randn_like(mean[None])[0]
    state, action = batch["obs"]["obs"][0], batch["obs"]["prev_action"][0]
    rewards, states = policy.reward_decoder, policy.state_decoder
    reward_loss, state_loss, kl = 0.0, 0.0, 0.0
    for j in range(3):
        for t in range(2):
            # The reference's decoders: [z, s_{t+1}, a_t, s_t] with each state and the action embedded (ReLU).
            next_state = batch["next_state"][0, t]
            inputs = [z[j], rewards.state_embedding(next_state), rewards.action_embedding(action[t + 1]),
                      rewards.state_embedding(state[t])]  # fmt: skip
            reward_loss += (rewards.net(th.cat(inputs)).item() - batch["reward"][0, t].item()) ** 2
            inputs = [z[j], states.action_embedding(action[t + 1]), states.state_embedding(state[t])]
            state_loss += (states.net(th.cat(inputs)) - next_state).pow(2).mean().item()  # mean over dimensions
        prior = (th.zeros(3), th.zeros(3)) if j == 0 else (mean[j - 1], logvar[j - 1])
        # Closed form of KL(N(m1, v1) || N(m0, v0)), written out per dimension.
        m1, v1, m0, v0 = mean[j], logvar[j].exp(), prior[0], prior[1].exp()
        kl += (0.5 * (th.log(v0 / v1) + (v1 + (m1 - m0) ** 2) / v0 - 1)).sum().item()
    assert losses["reward_reconstruction"].item() == pytest.approx(2.0 * reward_loss, rel=1e-5)
    assert losses["state_reconstruction"].item() == pytest.approx(0.5 * state_loss, rel=1e-5)
    assert losses["kl"].item() == pytest.approx(0.3 * kl, rel=1e-5)
    assert gaussian_kl(mean[1], logvar[1], mean[0], logvar[0]).item() > 0


def test_every_latent_reconstructs_every_step_past_and_future():
    policy = make().policy
    batch = tiny_batch(policy, lengths=(5,), n_steps=5)
    seen = {}
    hook = policy.reward_decoder.net[-1].register_forward_hook(lambda module, args, out: seen.update(predictions=out))
    th.manual_seed(0)
    policy.meta_episode_losses(batch)
    hook.remove()
    predictions = seen["predictions"][0, ..., 0]  # (latents, transitions)
    assert predictions.shape == (6, 5)
    _, latent = policy.encode_meta_episodes(batch["obs"])
    th.manual_seed(0)
    mean, logvar = latent[0].chunk(2, dim=-1)
    z = mean + th.exp(0.5 * logvar) * th.randn_like(mean[None])[0]
    # Each prediction is the decoder applied to (latent j, next state t) as one input (the first layer is applied to
    # the two apart and summed, which must give the same numbers).
    for j in range(6):
        for t in range(5):
            decoder = policy.reward_decoder
            expected = decoder.net(th.cat([z[j], decoder.state_embedding(batch["next_state"][0, t].float())]))
            assert th.allclose(predictions[j, t], expected[0], atol=1e-6), (j, t)


def test_padding_of_shorter_meta_episodes_does_not_count():
    policy = make(policy_kwargs=dict(decode_state=True)).policy
    batch = tiny_batch(policy, lengths=(4, 2), n_steps=4)
    th.manual_seed(0)
    losses = policy.meta_episode_losses(batch)
    changed = {**batch, "reward": batch["reward"].clone(), "next_state": batch["next_state"].clone()}
    changed["obs"] = {key: value.clone() for key, value in batch["obs"].items()}
    changed["reward"][1, 2:] += 50.0
    changed["next_state"][1, 2:] += 50.0
    for value in changed["obs"].values():
        value[1, 3:] += 7.0  # observations after the second meta-episode's end (o_0 .. o_2 are real)
    th.manual_seed(0)
    again = policy.meta_episode_losses(changed)
    for name in losses:
        assert losses[name].item() == pytest.approx(again[name].item(), rel=1e-6), name


def test_subsampling_draws_distinct_real_steps():
    valid = th.arange(10)[None] < th.tensor([[10], [4]])
    th.manual_seed(0)
    index, real = choose_steps(valid, 6)
    assert index.shape == (2, 6)
    assert len(set(index[0].tolist())) == 6 and real[0].all()
    assert set(index[1, real[1]].tolist()) == {0, 1, 2, 3} and int(real[1].sum()) == 4
    full_index, full_real = choose_steps(valid, None)
    assert th.equal(full_index[0], th.arange(10)) and th.equal(full_real, valid)
    policy = make(policy_kwargs=dict(n_elbo_samples=3, n_decode_samples=2)).policy
    seen = {}
    policy.reward_decoder.net[-1].register_forward_hook(lambda module, args, out: seen.update(shape=out.shape))
    policy.meta_episode_losses(tiny_batch(policy, lengths=(5,), n_steps=5))
    assert seen["shape"][:3] == (1, 3, 2)


# ---------------------------------------------------------------------------------------------------------------------
# Stop-gradients, the algorithm, save/load, training
# ---------------------------------------------------------------------------------------------------------------------


def _norms(policy, loss) -> dict[str, float]:
    modules = {"encoder": policy.lstm_actor, "decoder": policy.reward_decoder, "head": policy.mlp_extractor,
               "projection": policy.belief_projection}  # fmt: skip
    out = {}
    for name, module in modules.items():
        grads = th.autograd.grad(loss, list(module.parameters()), allow_unused=True, retain_graph=True)
        out[name] = sum(0.0 if g is None else g.norm().item() for g in grads)
    return out


@pytest.mark.parametrize("policy_class", [VIPolicy, VIHNPolicy])
def test_the_ppo_loss_never_reaches_the_vae_and_the_vae_loss_never_reaches_the_policy(policy_class):
    model = make(policy_class)
    model.learn(120)
    batch = next(model.rollout_buffer.get(60))
    mask = batch.mask > 1e-8
    values, log_prob, entropy, auxiliary = model.policy.evaluate_actions_and_losses(
        batch.observations, batch.actions.long().flatten(), batch.lstm_states, batch.episode_starts, mask
    )
    assert auxiliary == {}
    ppo = _norms(model.policy, (values.flatten() - log_prob + entropy).sum())
    assert ppo["encoder"] == 0 and ppo["decoder"] == 0
    assert ppo["head"] > 0 and ppo["projection"] > 0
    vae = _norms(model.policy, sum(model.policy.meta_episode_losses(model.meta_episode_buffer.sample(2)).values()))
    assert vae["encoder"] > 0 and vae["decoder"] > 0
    assert vae["head"] == 0 and vae["projection"] == 0


def test_vae_settings_defaults_and_errors():
    model = make()
    assert (model.vae_buffer_size, model.vae_batch_size, model.vae_updates) == (10_000, 4, 1)
    assert model.meta_episode_buffer.capacity == 10_000
    with pytest.raises(ValueError, match="vae_updates must be an integer >= 1"):
        make(vae_updates=0)
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0, env_kwargs=dict(expose_task=True))
    with pytest.raises(ValueError, match="does not train on whole meta-episodes"):
        MetaRecurrentPPO(RNNHNPolicy, env, vae_updates=3, n_steps=8, batch_size=16)
    assert MetaRecurrentPPO(RNNHNPolicy, env, n_steps=8, batch_size=16).meta_episode_buffer is None
    assert MetaRecurrentPPO(TINaivePolicy, env, n_steps=8, batch_size=16).meta_episode_buffer is not None
    with pytest.raises(ValueError, match="reward_decoder_inputs"):
        make(policy_kwargs=dict(reward_decoder_inputs=["reward"]))
    with pytest.raises(ValueError, match="state_decoder_inputs"):
        make(policy_kwargs=dict(state_decoder_inputs=["next_state"]))
    with pytest.raises(TypeError, match="MetaRecurrentPPO"):
        RecurrentPPO(VIPolicy, make_vec_env("GridNavi-v0", n_envs=2), n_steps=60, batch_size=60,
                     policy_kwargs=SMALL).learn(120)  # fmt: skip


def test_vae_steps_follow_each_ppo_update_and_training_lowers_the_reconstruction_loss():
    model = make(n_envs=4, vae_updates=3, vae_batch_size=8, learning_rate=3e-4, inference_learning_rate=3e-3)
    steps = []
    original = model.policy.meta_episode_losses
    model.policy.meta_episode_losses = lambda batch: steps.append(model._n_updates) or original(batch)
    model.learn(240)  # one rollout of 4 meta-episodes, one PPO update
    assert steps == [2, 2, 2]  # 3 VAE steps after the update's 2 epochs
    model.policy.meta_episode_losses = original
    first = model.logger.name_to_value["train/vae_reward_reconstruction"]
    model.learn(240 * 11, reset_num_timesteps=False)
    # A third less after 11 more updates (the reward reconstruction of a policy still exploring at random)
    assert model.logger.name_to_value["train/vae_reward_reconstruction"] < 0.75 * first
    assert "train/vae_kl" in model.logger.name_to_value


@pytest.mark.parametrize("policy_class", [VIPolicy, VIHNPolicy])
def test_save_and_load_round_trip(policy_class, tmp_path):
    model = make(policy_class, vae_updates=2, policy_kwargs=dict(decode_state=True, n_elbo_samples=7))
    model.learn(240)
    model.save(tmp_path / "vi.zip")
    loaded = load_meta_model(tmp_path / "vi.zip")
    assert isinstance(loaded, MetaRecurrentPPO) and type(loaded.policy) is policy_class
    assert (loaded.vae_buffer_size, loaded.vae_batch_size, loaded.vae_updates) == (10_000, 4, 2)
    assert len(loaded.meta_episode_buffer) == 0  # not saved, as the rollout buffer
    assert loaded.policy._vae_config == model.policy._vae_config
    for (name, a), (_, b) in zip(model.policy.state_dict().items(), loaded.policy.state_dict().items(), strict=True):
        assert th.equal(a, b), name
    assert (
        loaded.inference_optimizer.state_dict()["state"].keys()
        == model.inference_optimizer.state_dict()["state"].keys()
    )
    batch = model.meta_episode_buffer.sample(3)
    th.manual_seed(0)
    expected = model.policy.meta_episode_losses(batch)
    th.manual_seed(0)
    actual = loaded.policy.meta_episode_losses(batch)
    assert {k: v.item() for k, v in expected.items()} == {k: v.item() for k, v in actual.items()}
    # It refills its buffer and trains on, also with another number of envs than it was trained with.
    env = VecNormalize(make_vec_env("GridNavi-v0", n_envs=3, seed=1), norm_obs=False)
    resumed = MetaRecurrentPPO.load(tmp_path / "vi.zip", env=env)
    resumed.learn(180, reset_num_timesteps=False)
    assert len(resumed.meta_episode_buffer) == 3
