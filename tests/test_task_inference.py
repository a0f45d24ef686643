"""Task-inference policies: stop-gradients, the KL term and its priors, the target, masking of
padded steps, the acting policy's independence of the task entry, errors, training and save/load; the multi-task
pre-training phase and its switch; Multi+HN."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import obs_as_tensor

import envs  # noqa: F401
from sb3_hypernet import (
    BIPlusPlusHNPolicy,
    MetaRecurrentPPO,
    MultiTaskHNPolicy,
    TIHNPolicy,
    TINaivePolicy,
    TIPlusPlusHNPolicy,
    TIPlusPlusPolicy,
    TIPolicy,
)
from sb3_hypernet.common.belief import gaussian_kl
from sb3_hypernet.meta_ppo.loading import load_meta_model

SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], state_embedding_dim=12, latent_dim=3, decoder_layers=[8])
N_SEQ, LENGTH = 3, 6


def make(expose_task: bool = True, algo: type = MetaRecurrentPPO, **kwargs) -> MetaRecurrentPPO:
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0, env_kwargs=dict(expose_task=expose_task))
    defaults = dict(n_steps=60, batch_size=40, n_epochs=2, seed=0, learning_rate=1e-3, policy_kwargs=SMALL)
    return algo(TINaivePolicy, env, **{**defaults, **kwargs})


def sequences(model) -> tuple[dict[str, th.Tensor], th.Tensor, RNNStates, th.Tensor]:
    """N_SEQ sequences of LENGTH steps as RecurrentPPO lays them out (sequence-major), with actions, random initial
    states and the first sequence starting a meta-episode."""
    env = model.get_env()
    env.seed(0)
    obs = env.reset()
    rng = np.random.default_rng(0)
    steps = []
    for _ in range(N_SEQ * LENGTH // env.num_envs + 1):
        steps.append(obs)
        obs, *_ = env.step(rng.integers(0, 5, env.num_envs))
    flat = {key: np.concatenate([step[key] for step in steps])[: N_SEQ * LENGTH] for key in steps[0]}
    observations = obs_as_tensor(flat, "cpu")
    actions = th.as_tensor(rng.integers(0, 5, N_SEQ * LENGTH)).float()
    hidden = th.randn(1, N_SEQ, 16, generator=th.Generator().manual_seed(0))
    starts = th.zeros(N_SEQ * LENGTH)
    starts[0] = 1.0
    return observations, actions, RNNStates((hidden, hidden), (hidden, hidden)), starts


def losses_and_outputs(model, mask=None, observations=None):
    obs, actions, states, starts = sequences(model)
    obs = observations or obs
    mask = th.ones(N_SEQ * LENGTH, dtype=th.bool) if mask is None else mask
    th.manual_seed(1)  # the bottleneck's sample
    return model.policy.evaluate_actions_and_losses(obs, actions.long(), states, starts, mask)


def gradients(policy, loss: th.Tensor) -> dict[str, float]:
    """Gradient norm of ``loss`` for each module of the task-inference policy."""
    modules = {
        "encoder": policy.lstm_actor,
        "decoder": th.nn.ModuleList([policy.task_decoder, policy.reward_decoder]),
        "belief_projection": policy.belief_projection,
        "head": policy.mlp_extractor,
        "outputs": th.nn.ModuleList([policy.action_net, policy.value_net]),
    }
    parameters = {name: list(module.parameters()) for name, module in modules.items()}
    grads = th.autograd.grad(loss, [p for ps in parameters.values() for p in ps], allow_unused=True, retain_graph=True)
    norms, i = {}, 0
    for name, ps in parameters.items():
        chunk = [g for g in grads[i : i + len(ps)] if g is not None]
        norms[name] = float(sum(g.pow(2).sum() for g in chunk)) ** 0.5 if chunk else 0.0
        i += len(ps)
    return norms


def vae_batch(model, n: int = 4) -> dict:
    """``n`` whole meta-episodes from the model's VAE buffer (filled by a short training run)."""
    if not len(model.meta_episode_buffer):
        model.learn(240)
    np.random.seed(0)
    return model.meta_episode_buffer.sample(n)


def vae_losses(model, batch) -> dict[str, th.Tensor]:
    th.manual_seed(1)  # the bottleneck's sample
    return model.policy.meta_episode_losses(batch)


def test_stop_gradients_separate_the_inference_module_from_the_policy():
    model = make()
    values, log_prob, entropy, losses = losses_and_outputs(model)
    assert losses == {}  # the belief trains on whole meta-episodes, never on PPO's minibatches (rlloss_through_encoder)
    ppo = gradients(model.policy, values.sum() + log_prob.sum() + entropy.sum())
    assert ppo["encoder"] == 0.0 and ppo["decoder"] == 0.0  # the PPO loss never reaches the inference module
    assert ppo["belief_projection"] > 0 and ppo["head"] > 0 and ppo["outputs"] > 0
    vae = vae_losses(model, vae_batch(model))
    assert set(vae) == {"reward_reconstruction", "kl", "task"}
    inference = gradients(model.policy, sum(vae.values()))
    assert inference["belief_projection"] == inference["head"] == inference["outputs"] == 0.0  # nor the reverse
    assert inference["encoder"] > 0 and inference["decoder"] > 0
    assert gradients(model.policy, vae["kl"])["encoder"] > 0


def test_gaussian_kl_is_the_closed_form():
    g = th.Generator().manual_seed(0)
    mean, prior_mean = th.randn(7, 4, generator=g), th.randn(7, 4, generator=g)
    logvar, prior_logvar = th.randn(7, 4, generator=g), th.randn(7, 4, generator=g)
    expected = th.distributions.kl_divergence(
        th.distributions.Normal(mean, th.exp(0.5 * logvar)),
        th.distributions.Normal(prior_mean, th.exp(0.5 * prior_logvar)),
    ).sum(-1)
    assert th.allclose(gaussian_kl(mean, logvar, prior_mean, prior_logvar), expected, atol=1e-5)
    assert th.allclose(gaussian_kl(mean, logvar, mean, logvar), th.zeros(7), atol=1e-6)


def test_the_task_term_is_the_squared_error_averaged_over_dimensions_summed_over_latents_and_meta_episodes():
    # The reference's vae.py: compute_task_reconstruction_loss (mean over the target's dimensions), then summed over
    # the ELBO terms and over the trajectories of the batch; the reward decoder stays on (decode_reward=True).
    model = make(policy_kwargs={**SMALL, "task_loss_weight": 0.7})
    policy = model.policy
    batch = vae_batch(model)
    assert th.equal(policy.inference_target(batch["task"]), batch["task"].float())  # TI Naive: the descriptor itself
    losses = vae_losses(model, batch)
    with th.no_grad():
        _, latent = policy.encode_meta_episodes(batch["obs"])
        mean, logvar = latent.chunk(2, dim=-1)
        th.manual_seed(1)
        z = mean + th.exp(0.5 * logvar) * th.randn_like(mean)
        expected = 0.0
        for episode in range(len(batch["lengths"])):
            for j in range(int(batch["lengths"][episode]) + 1):  # latents after 0 .. T transitions
                error = policy.task_decoder(z[episode, j]) - batch["task"][episode].float()
                expected += float(error.pow(2).mean())
    assert losses["task"].item() == pytest.approx(0.7 * expected, rel=1e-5)
    assert losses["reward_reconstruction"].item() > 0


def test_the_acting_policy_does_not_read_the_task_entry():
    model = make(learning_rate=3e-3)
    model.learn(120)
    obs, _, states, starts = sequences(model)
    changed = dict(obs, task=obs["task"] + 3.0)
    policy = model.policy
    with th.no_grad():
        # Everything the acting path reads is unchanged (the logits alone can hide a dependence behind saturation).
        features, latent, _ = policy._encode_latent(obs, states.pi, starts)
        other_features, other_latent, _ = policy._encode_latent(changed, states.pi, starts)
        assert th.equal(features, other_features) and th.equal(latent, other_latent)
        a, _ = policy.get_distribution(obs, states.pi, starts)
        b, _ = policy.get_distribution(changed, states.pi, starts)
    assert th.equal(a.distribution.logits, b.distribution.logits)


def test_an_env_without_the_task_entry_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expose_task=True"):
        make(expose_task=False)


def test_plain_recurrent_ppo_is_a_clear_error():
    model = make(algo=RecurrentPPO)
    with pytest.raises(TypeError, match="MetaRecurrentPPO"):
        model.learn(120)


def test_training_lowers_the_task_term_and_saves_and_loads(tmp_path):
    model = make(learning_rate=1e-3, inference_learning_rate=1e-2, vae_batch_size=8, vae_updates=3)
    batch = vae_batch(model, 8)
    before = vae_losses(model, batch)["task"].item()
    model.learn(1200, reset_num_timesteps=False)
    after = vae_losses(model, batch)["task"].item()
    # Before the goal is found the best guess is the mean goal: a real but bounded drop.
    assert after < 0.8 * before, (before, after)
    obs, _, states, starts = sequences(model)
    model.save(tmp_path / "model.zip")
    loaded = MetaRecurrentPPO.load(tmp_path / "model.zip")
    assert type(loaded.policy) is TINaivePolicy
    with th.no_grad():
        for policy in (model.policy, loaded.policy):
            policy.set_training_mode(False)
        expected = model.policy.get_distribution(obs, states.pi, starts)[0].distribution.logits
        assert th.equal(loaded.policy.get_distribution(obs, states.pi, starts)[0].distribution.logits, expected)
    model.policy.save(str(tmp_path / "policy.pth"))
    policy = TINaivePolicy.load(str(tmp_path / "policy.pth"))
    assert policy._decoder_layers == [8] and policy.task_decoder[0].out_features == 8


def test_unknown_keyword_lists_the_task_inference_keywords():
    with pytest.raises(TypeError) as error:
        make(policy_kwargs={**SMALL, "decoder_layer": [8]})
    message = str(error.value)
    assert "did you mean 'decoder_layers'" in message
    accepted = set(message.split("It accepts: ")[1].rstrip(".").split(", "))
    assert {"decoder_layers", "kl_weight", "gru_hidden_size", "state_embedding_dim"} <= accepted
    with pytest.raises(ValueError, match="decoder_layers entries must be an integer >= 1"):
        make(policy_kwargs={**SMALL, "decoder_layers": [0]})


# ---------------------------------------------------------------------------------------------------------------------
# Multi-task pre-training (TI, TI++, TI+HN, TI++HN) and Multi+HN
# ---------------------------------------------------------------------------------------------------------------------


def make_pretraining(policy=TIPolicy, pretrain_updates: int = 2, **kwargs) -> MetaRecurrentPPO:
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0, env_kwargs=dict(expose_task=True))
    defaults = dict(n_steps=60, batch_size=40, n_epochs=2, seed=0, learning_rate=1e-3, policy_kwargs=SMALL)
    return MetaRecurrentPPO(policy, env, pretrain_updates=pretrain_updates, **{**defaults, **kwargs})


def snapshot(module: th.nn.Module) -> dict[str, th.Tensor]:
    return {name: value.detach().clone() for name, value in module.state_dict().items()}


def around_the_switch(model: MetaRecurrentPPO) -> tuple[dict, dict, int]:
    """The policy's state just before and just after the switch to meta-training, and the optimiser's state size."""
    policy = model.policy
    switch = policy.end_pretraining
    states: list[dict] = []

    def recording_switch():
        states.append(snapshot(policy))
        switch()
        states.append(snapshot(policy))

    policy.end_pretraining = recording_switch
    model.learn(240)
    assert len(states) == 2, "the switch happened once, after the last pre-training update"
    return states[0], states[1], len(policy.optimizer.state)


def changed(before: dict, after: dict, prefix: str) -> bool:
    names = [name for name in before if name.startswith(prefix)]
    assert names, prefix
    return any(not th.equal(before[name], after[name]) for name in names)


@pytest.mark.parametrize("policy", [TIPolicy, TIHNPolicy])
def test_hard_reset_reinitialises_everything_but_the_task_embedding_and_inference(policy):
    model = make_pretraining(policy)
    before, after, optimizer_state = around_the_switch(model)
    survivors = ("task_embedding.", "lstm_actor.", "task_decoder.", "reward_decoder.",
                 "mlp_extractor.state_normalizer.", "belief_normalizer.")  # fmt: skip
    for kept in survivors:
        assert not changed(before, after, kept), kept
    outputs = "action_net." if policy is TIPolicy else "mlp_extractor.actor."
    for reset in ("mlp_extractor.state_embedding.", "belief_projection.", outputs):
        assert changed(before, after, reset), reset
    assert optimizer_state == 0  # a fresh optimiser for the fresh policy
    if policy is TIPolicy:
        # Freshly drawn base init: normc rows of norm 5/3 and zero biases again (training had moved them).
        layer = model.policy.mlp_extractor.policy_net[0]
        assert th.allclose(layer.weight.norm(dim=1), th.full((layer.out_features,), 5 / 3), atol=1e-5)
        assert th.equal(layer.bias, th.zeros_like(layer.bias))
        trained = before["mlp_extractor.policy_net.0.weight"]
        assert not th.allclose(trained.norm(dim=1), th.full((trained.shape[0],), 5 / 3), atol=1e-5)


@pytest.mark.parametrize("policy", [TIPlusPlusPolicy, TIPlusPlusHNPolicy])
def test_reuse_keeps_every_multi_task_parameter(policy):
    model = make_pretraining(policy)
    before, after, optimizer_state = around_the_switch(model)
    assert before.keys() == after.keys()
    for name in before:
        if name != "pretraining":
            assert th.equal(before[name], after[name]), name
    assert bool(before["pretraining"]) and not bool(after["pretraining"])
    assert optimizer_state > 0  # Adam's moments carry over with the parameters


def test_the_multi_task_policy_acts_on_the_task_and_the_meta_policy_does_not():
    model = make_pretraining(TIPolicy)
    policy = model.policy
    assert policy.in_pretraining
    obs, _, states, starts = sequences(model)
    moved = dict(obs, task=obs["task"] + 3.0)

    def logits(observations):
        with th.no_grad():
            return policy.get_distribution(observations, states.pi, starts)[0].distribution.logits

    assert not th.allclose(logits(obs), logits(moved))
    policy.end_pretraining()
    assert th.equal(logits(obs), logits(moved))


@pytest.mark.parametrize(("policy", "trains_inference"), [(TIPolicy, False), (TIPlusPlusPolicy, True)])
def test_inference_is_frozen_while_pretraining_except_for_the_plus_plus_variants(policy, trains_inference, tmp_path):
    model = make_pretraining(policy, pretrain_updates=3)
    before = snapshot(model.policy)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(240)  # two updates, both pre-training
    assert model.policy.in_pretraining
    after = snapshot(model.policy)
    assert changed(before, after, "lstm_actor.") == trains_inference
    assert changed(before, after, "task_decoder.") == trains_inference
    assert changed(before, after, "reward_decoder.") == trains_inference
    assert changed(before, after, "task_embedding.")  # g is learned by the multi-task policy
    logged = model.logger.name_to_value
    assert ("train/vae_task" in logged) == trains_inference
    assert logged["pretrain/active"] == 1


def test_the_target_is_the_task_embedding_with_a_stop_gradient():
    model = make_pretraining(TIPlusPlusHNPolicy)
    policy = model.policy
    batch = vae_batch(model)
    target = policy.inference_target(batch["task"])
    assert target.shape == (4, 25)
    assert th.equal(target, policy.task_embedding(batch["task"].float()).detach())
    assert not target.requires_grad
    task_term = vae_losses(model, batch)["task"]
    assert gradients(policy, task_term)["decoder"] > 0
    (embedding_grad,) = th.autograd.grad(task_term, [policy.task_embedding.linear.weight], allow_unused=True)
    assert embedding_grad is None


def test_pretraining_counts_in_the_frame_budget_logs_and_announces_the_switch(capsys):
    model = make_pretraining(TIHNPolicy, verbose=1)
    model.learn(360)  # 3 updates: 2 pre-training, 1 meta-training
    assert (model.num_timesteps, model.pretrain_updates_done) == (360, 2)
    assert not model.policy.in_pretraining
    assert "Multi-task pre-training done after 2 updates (240 frames)" in capsys.readouterr().out
    assert model.logger.name_to_value["pretrain/updates"] == 2
    assert model.logger.name_to_value["pretrain/active"] == 0


def test_checkpoints_resume_in_the_phase_they_were_saved_in(tmp_path):
    model = make_pretraining(TIPlusPlusPolicy)
    model.learn(120)
    model.save(tmp_path / "during.zip")
    model.learn(240, reset_num_timesteps=False)
    model.save(tmp_path / "after.zip")
    env = model.get_env()

    during = MetaRecurrentPPO.load(tmp_path / "during.zip", env=env)
    assert during.policy.in_pretraining and during.pretrain_updates_done == 1
    during.learn(120, reset_num_timesteps=False)  # the last pre-training update, then the switch
    assert not during.policy.in_pretraining and during.pretrain_updates_done == 2

    after = MetaRecurrentPPO.load(tmp_path / "after.zip", env=env)
    assert not after.policy.in_pretraining and after.pretrain_updates_done == 2
    after.learn(120, reset_num_timesteps=False)
    assert after.pretrain_updates_done == 2


def test_pretraining_needs_a_policy_that_has_the_phase():
    with pytest.raises(ValueError, match="TINaivePolicy has no multi-task pre-training phase"):
        make_pretraining(TINaivePolicy)
    with pytest.raises(ValueError, match="pretrain_updates must be an integer >= 0"):
        make_pretraining(TIPolicy, pretrain_updates=-1)


def test_multi_task_hn_conditions_on_the_true_task_only():
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0, env_kwargs=dict(expose_task=True))
    kwargs = dict(gru_hidden_size=16, net_arch=[16, 8], state_embedding_dim=12, hyper_init="kaiming")
    model = MetaRecurrentPPO(MultiTaskHNPolicy, env, n_steps=60, batch_size=40, seed=0, policy_kwargs=kwargs)
    policy = model.policy
    obs, _, states, starts = sequences(model)
    with th.no_grad():
        logits = policy.get_distribution(obs, states.pi, starts)[0].distribution.logits
        moved = policy.get_distribution(dict(obs, task=obs["task"] + 3.0), states.pi, starts)[0].distribution.logits
        other_history = policy.get_distribution(obs, (states.pi[0] * 0, states.pi[1] * 0), starts)[0]
    assert not th.allclose(logits, moved)  # the task decides the network
    assert th.equal(logits, other_history.distribution.logits)  # the history does not
    assert model.inference_optimizer is None
    model.learn(120)
    with pytest.raises(ValueError, match="expose_task=True"):
        MetaRecurrentPPO(MultiTaskHNPolicy, make_vec_env("GridNavi-v0", n_envs=1), policy_kwargs=kwargs)


def test_bi_infers_the_base_network_the_current_hypernetworks_generate_for_the_true_task():
    # The reference's task_bn_params: the policy's own hypernetworks on g(c), detached, before and after the switch.
    model = make_pretraining(BIPlusPlusHNPolicy, pretrain_updates=1)
    policy = model.policy
    head = policy.mlp_extractor
    expected_size = sum(layer.n_generated for network in (head.actor, head.critic) for layer in network.layers)
    assert policy.inference_target_dim() == expected_size == policy.task_decoder[-1].out_features

    def generated(network, condition):
        parts = []
        for layer in network.layers:
            weights, biases = layer.generate(network.hypernet_trunk(condition))
            parts += [weights.flatten(1), biases]
        return th.cat(parts, dim=1)

    task = th.tensor([[2.0, 3.0], [4.0, 1.0]])
    for phase in ("pre-training", "meta-training"):
        with th.no_grad():
            condition = policy.task_embedding(task)
            own = th.cat([generated(head.actor, condition), generated(head.critic, condition)], dim=1)
        target = policy.inference_target(task)
        assert th.equal(target, own) and not target.requires_grad, phase
        model.learn(240)  # the switch after the first update, then a meta-training update
        assert not policy.in_pretraining


def test_bi_loads_a_model_saved_with_the_frozen_target_copy():
    model = make_pretraining(BIPlusPlusHNPolicy, pretrain_updates=1)
    state = model.policy.state_dict()
    actor = model.policy.mlp_extractor.actor.state_dict()
    old = {**state, **{f"target_hypernetworks.0.{key}": value for key, value in actor.items()}}
    model.policy.load_state_dict(old)  # older saves kept a frozen copy of the hypernetworks: dropped on load


def test_the_progress_bar_shows_the_phase(capsys):
    from stable_baselines3.common.callbacks import ProgressBarCallback

    class RecordingProgressBar(ProgressBarCallback):
        """SB3's progress bar, remembering the descriptions it was given (a captured bar renders only its end)."""

        def _on_training_start(self) -> None:
            super()._on_training_start()
            self.descriptions = []
            show = self.pbar.set_description_str
            self.pbar.set_description_str = lambda text, **kwargs: (
                self.descriptions.append(text),
                show(text, **kwargs),
            )

    bar = RecordingProgressBar()
    make_pretraining(TIPolicy, pretrain_updates=2).learn(360, callback=bar)
    assert bar.descriptions == ["pre-training 0/2", "pre-training 1/2", "meta-training"]
    assert "meta-training" in capsys.readouterr().out


@pytest.mark.parametrize(
    "policy_class",
    [TINaivePolicy, TIPolicy, TIPlusPlusPolicy, TIHNPolicy, TIPlusPlusHNPolicy, BIPlusPlusHNPolicy, MultiTaskHNPolicy],
)
def test_every_method_saves_and_loads_with_identical_behaviour(policy_class, tmp_path):
    pretrain = 1 if getattr(policy_class, "pretrains", False) else 0
    kwargs = {} if policy_class is not MultiTaskHNPolicy else dict(policy_kwargs={**SMALL, "hyper_init": "kaiming"})
    if policy_class is MultiTaskHNPolicy:
        kwargs["policy_kwargs"].pop("decoder_layers")
    model = make_pretraining(policy_class, pretrain_updates=pretrain, **kwargs)
    model.learn(240)
    obs, _, states, starts = sequences(model)
    model.save(tmp_path / "model.zip")
    model.policy.save(str(tmp_path / "policy.pth"))
    loaded = load_meta_model(tmp_path / "model.zip", device="cpu")  # what sb3_hypernet.evaluate loads
    assert type(loaded) is MetaRecurrentPPO and type(loaded.policy) is policy_class
    assert loaded.pretrain_updates_done == model.pretrain_updates_done
    for other in (loaded.policy, policy_class.load(str(tmp_path / "policy.pth"))):
        for policy in (model.policy, other):
            policy.set_training_mode(False)
        with th.no_grad():
            expected = model.policy.get_distribution(obs, states.pi, starts)[0].distribution.logits
            assert th.equal(other.get_distribution(obs, states.pi, starts)[0].distribution.logits, expected)
