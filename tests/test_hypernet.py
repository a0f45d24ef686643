"""Hypernetwork initialisations, hidden hypernetwork layers, FiLM, computation modes and latent diagnostics."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure

import envs  # noqa: F401
from sb3_hypernet import LatentDiagnostics, RNNFiLMPolicy, RNNHNPolicy, RNNPolicy, RNNSPolicy
from sb3_hypernet.common.generated_layers import HYPER_INITS, FiLMLinear, GeneratedLinear, GeneratedMLP
from sb3_hypernet.experiments.zoo import load_hyperparams

SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], latent_embedding_dim=6, state_embedding_dim=12)


def make_model(policy_class, **policy_kwargs) -> RecurrentPPO:
    kwargs = {**SMALL, **policy_kwargs}
    if policy_class is RNNPolicy:
        kwargs.pop("state_embedding_dim")
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0)
    return RecurrentPPO(policy_class, env, n_steps=30, batch_size=20, n_epochs=1, seed=0, policy_kwargs=kwargs)


@pytest.mark.parametrize("role", ["hidden", "gaussian", "categorical", "critic"])
def test_bias_hyper_init_same_base_layer_for_every_input(role):
    layer = GeneratedLinear(7, 5, cond_features=4, role=role, hyper_init="bias")
    weights, biases = layer.generate(th.randn(100, 4) * 3)
    assert th.allclose(weights, weights[0].expand_as(weights))
    assert th.equal(biases, biases[0].expand_as(biases))
    assert weights[0].abs().sum() > 0
    if role == "critic":  # the reference's value output: kaiming-uniform bound sqrt(6 / fan_in), bias U(-1, 1)
        assert weights.abs().max() <= (6 / 7) ** 0.5 and biases.abs().max() <= 1.0 and biases.abs().sum() > 0
        assert weights.abs().max() > 1 / 7**0.5  # beyond nn.Linear's default bound, 1 / sqrt(fan_in)
    else:
        assert th.equal(biases, th.zeros_like(biases))


def test_weight_hyper_init_one_hot_selects_independent_base_layers():
    cond = 6
    layer = GeneratedLinear(9, 5, cond_features=cond, role="hidden", hyper_init="weight")
    weights, biases = layer.generate(th.eye(cond))
    # Each one-hot input gives a base layer drawn from the base init (normc gain 5/3: rows of norm 5/3)...
    assert th.allclose(weights.norm(dim=2), th.full((cond, 5), 5 / 3), atol=1e-5)
    assert th.equal(biases, th.zeros_like(biases))
    # ...and the base layers are different draws (no two alike, nearly uncorrelated).
    flat = weights.flatten(1)
    correlation = th.corrcoef(flat)
    off_diagonal = correlation[~th.eye(cond, dtype=bool)]
    assert off_diagonal.abs().max() < 0.6
    # A zero input generates an all-zero layer: head biases are 0.
    zero_weights, _ = layer.generate(th.zeros(1, cond))
    assert th.equal(zero_weights, th.zeros_like(zero_weights))


@pytest.mark.parametrize(("role", "gain"), [("hidden", 5 / 3), ("critic", 1.0)])
def test_hfi_generated_variance_matches_its_formula(role, gain):
    th.manual_seed(0)
    d_k, d_l = 64, 32
    layer = GeneratedLinear(d_k, 48, cond_features=d_l, role=role, hyper_init="hfi")
    weights, biases = layer.generate(th.randn(4000, d_l))  # inputs with E[z^2] = 1
    assert weights.var().item() == pytest.approx(gain**2 / (2 * d_k), rel=0.1)
    assert biases.var().item() == pytest.approx(gain**2 / 2, rel=0.1)
    with th.no_grad():
        assert th.equal(layer.weight[:, :, d_l], th.zeros_like(layer.weight[:, :, d_l]))  # head biases 0


def test_naive_schemes_apply_the_plain_initialisers_to_the_heads():
    out_features, in_features, cond = 5, 7, 4
    heads = {}
    for scheme in ("kaiming", "normc", "orthogonal"):
        layer = GeneratedLinear(in_features, out_features, cond_features=cond, hyper_init=scheme)
        weight = layer.weight.detach()
        assert th.equal(weight[:, :, cond], th.zeros_like(weight[:, :, cond]))  # head biases 0
        heads[scheme] = weight[:, :in_features, :cond].reshape(-1, cond)  # the weight head as (out*in, cond)
    assert heads["kaiming"].abs().max() <= 1 / math.sqrt(cond)
    assert th.allclose(heads["normc"].norm(dim=1), th.ones(out_features * in_features), atol=1e-5)
    q = heads["orthogonal"]
    assert th.allclose(q.T @ q, th.eye(cond), atol=1e-5)
    # Unlike the HyperInit schemes, these make the generated network depend strongly on the input at init.
    layer = GeneratedLinear(in_features, out_features, cond_features=cond, hyper_init="kaiming")
    weights, _ = layer.generate(th.randn(2, cond))
    assert not th.allclose(weights[0], weights[1])


def test_unknown_scheme_and_mode_are_named_errors():
    with pytest.raises(ValueError, match="hyper_init must be one of"):
        GeneratedLinear(3, 2, 2, hyper_init="xavier")
    with pytest.raises(ValueError, match="hypernet_mode must be one of"):
        GeneratedLinear(3, 2, 2, mode="fast")
    with pytest.raises(ValueError, match="hyper_init must be one of 'bias', 'kaiming'"):
        FiLMLinear(3, 2, 2, hyper_init="hfi")
    with pytest.raises(ValueError, match="hyper_init must be one of"):
        make_model(RNNHNPolicy, hyper_init="xavier")


@pytest.mark.parametrize("hyper_init", HYPER_INITS)
def test_hidden_hypernetwork_layers_work_with_every_scheme(hyper_init):
    mlp = GeneratedMLP(
        [6, 8, 3], cond_features=5, output_role="gaussian", hyper_init=hyper_init, hypernet_layers=[11, 9]
    )
    assert [m.out_features for m in mlp.hypernet_trunk if isinstance(m, th.nn.Linear)] == [11, 9]
    assert all(layer.cond_features == 9 for layer in mlp.layers)
    x, z = th.randn(4, 6), th.randn(4, 5)
    out = mlp(x, z)
    assert out.shape == (4, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in mlp.parameters())
    if hyper_init == "bias":
        same_state = mlp(x[:1].expand(50, 6), th.randn(50, 5) * 3)
        assert th.allclose(same_state, same_state[0].expand_as(same_state), atol=1e-6)


@pytest.mark.parametrize("hyper_init", HYPER_INITS)
def test_every_scheme_trains_in_the_policy(hyper_init):
    # An update with each scheme lowers the PPO loss on the rollout it trained on (20 epochs: Bias-HyperInit's value
    # output starts with the reference's U(-1, 1) bias, which a few epochs at the clipped gradient norm do not undo).
    model = make_model(RNNHNPolicy, hyper_init=hyper_init, hypernet_layers=[8])
    assert {layer.hyper_init for layer in model.policy.modules() if isinstance(layer, GeneratedLinear)} == {hyper_init}
    model.learning_rate, model.n_epochs = 3e-3, 20
    model._setup_lr_schedule()
    _, callback = model._setup_learn(model.n_steps * model.n_envs, CallbackList([]))
    model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    before = _ppo_loss(model)
    model.train()
    after = _ppo_loss(model)
    assert np.isfinite(after) and after < before, (before, after)


def _ppo_loss(model: RecurrentPPO) -> float:
    """RecurrentPPO's loss (clipped surrogate + value MSE - entropy bonus) on the whole rollout buffer."""
    policy = model.policy
    policy.set_training_mode(False)
    (batch,) = model.rollout_buffer.get(batch_size=None)
    with th.no_grad():
        values, log_prob, entropy = policy.evaluate_actions(
            batch.observations, batch.actions.long().flatten(), batch.lstm_states, batch.episode_starts
        )
    mask = batch.mask > 0
    advantages = batch.advantages[mask]
    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    ratio = th.exp(log_prob[mask] - batch.old_log_prob[mask])
    clip = model.clip_range(1.0)
    surrogate = -th.min(advantages * ratio, advantages * ratio.clamp(1 - clip, 1 + clip)).mean()
    value_loss = ((batch.returns[mask] - values.flatten()[mask]) ** 2).mean()
    return float(surrogate + model.vf_coef * value_loss - model.ent_coef * entropy[mask].mean())


def test_film_bias_hyper_init_starts_at_scale_one_shift_zero():
    layer = FiLMLinear(6, 4, cond_features=5, role="hidden", hyper_init="bias")
    x = th.randn(30, 6)
    np.testing.assert_allclose(layer(x, th.randn(30, 5) * 4).detach(), layer.linear(x).detach(), atol=1e-6)
    scale, shift = layer.film(th.randn(30, 5)).chunk(2, dim=-1)
    assert th.equal(scale, th.ones_like(scale)) and th.equal(shift, th.zeros_like(shift))

    model = make_model(RNNFiLMPolicy)
    head = model.policy.mlp_extractor
    logits, values = head(th.randn(40, head.spec.condition_dim) * 5, th.randn(1, 2).expand(40, 2))
    assert th.allclose(logits, logits[0].expand_as(logits), atol=1e-6)
    assert th.allclose(values, values[0].expand_as(values), atol=1e-6)
    model.learn(60)
    with pytest.raises(ValueError, match="hyper_init"):
        make_model(RNNFiLMPolicy, hyper_init="weight")
    with pytest.raises(TypeError, match="hypernet_mode"):
        make_model(RNNFiLMPolicy, hypernet_mode="materialized")


def test_materialised_and_factorised_layers_agree_in_value_and_gradient():
    th.manual_seed(0)
    factorised = GeneratedLinear(13, 7, cond_features=5, hyper_init="hfi", mode="factorized")
    materialised = GeneratedLinear(13, 7, cond_features=5, mode="materialized")
    materialised.load_state_dict(factorised.state_dict())
    results = []
    for layer in (factorised, materialised):
        x = th.randn(32, 13, generator=th.Generator().manual_seed(1), requires_grad=True)
        z = th.randn(32, 5, generator=th.Generator().manual_seed(2), requires_grad=True)
        y = layer(x, z)
        (y * th.linspace(-1, 1, 7)).sum().backward()
        results.append((y.detach(), x.grad, z.grad, layer.weight.grad))
    for a, b in zip(*results, strict=True):
        assert th.allclose(a, b, atol=1e-5)


def test_materialised_mode_in_the_policy_gives_the_same_actions():
    factorised = make_model(RNNHNPolicy, hyper_init="hfi")
    materialised = make_model(RNNHNPolicy, hyper_init="hfi", hypernet_mode="materialized")
    materialised.policy.load_state_dict(factorised.policy.state_dict())
    obs = factorised.get_env().reset()
    for model in (factorised, materialised):
        model.policy.set_training_mode(False)
    dist_a, _ = factorised.policy.get_distribution(*_step_inputs(factorised, obs))
    dist_b, _ = materialised.policy.get_distribution(*_step_inputs(materialised, obs))
    assert th.allclose(dist_a.distribution.logits, dist_b.distribution.logits, atol=1e-5)


def _step_inputs(model, obs):
    policy = model.policy
    tensor_obs, _ = policy.obs_to_tensor(obs)
    state = th.zeros(1, 2, 16)
    return tensor_obs, (state, state), th.ones(2)


def test_parameter_counts_add_up():
    for policy_class in (RNNPolicy, RNNSPolicy, RNNHNPolicy, RNNFiLMPolicy):
        counts = make_model(policy_class).policy.parameter_counts()
        assert counts["encoder"] > 0 and counts["base_network"] > 0
        assert (counts["hypernetwork"] > 0) == (policy_class in (RNNHNPolicy, RNNFiLMPolicy))
    policy = make_model(RNNHNPolicy).policy
    counts = policy.parameter_counts()
    assert counts["total"] == sum(p.numel() for p in policy.parameters())
    generated = [m for m in policy.modules() if isinstance(m, GeneratedLinear)]
    assert counts["hypernetwork"] == sum(m.weight.numel() for m in generated)
    # Per sample, the base network has one generated parameter per weight and bias of 12 -> 16 -> 8 -> out.
    assert sum(m.n_generated for m in generated) == (12 + 1) * 16 * 2 + (16 + 1) * 8 * 2 + (8 + 1) * (5 + 1)


@pytest.mark.parametrize("policy_class", [RNNPolicy, RNNSPolicy, RNNHNPolicy])
def test_latent_gradient_norms_match_the_jacobians(policy_class):
    model = make_model(policy_class, hyper_init="kaiming") if policy_class is RNNHNPolicy else make_model(policy_class)
    policy = model.policy
    obs, states, starts = _step_inputs(model, model.get_env().reset())
    measured = policy.latent_gradient_norms(obs, states, starts)
    with th.no_grad():
        (condition, state), _ = policy._encode(obs, states, starts)
        latent, embedded_state = policy.mlp_extractor.embed(condition, state)
    actor_norms, value_norms = [], []
    for i in range(latent.shape[0]):
        s = None if embedded_state is None else embedded_state[i : i + 1]
        actor = th.autograd.functional.jacobian(
            lambda e, s=s: policy.action_net(policy.mlp_extractor.actor_output(e.unsqueeze(0), s))[0], latent[i]
        )
        value = th.autograd.functional.jacobian(
            lambda e, s=s: policy.value_net(policy.mlp_extractor.critic_output(e.unsqueeze(0), s))[0, 0], latent[i]
        )
        assert actor.shape == (5, latent.shape[1]) and value.shape == (latent.shape[1],)
        actor_norms.append(actor.norm())
        value_norms.append(value.norm())
    assert measured["actor"] == pytest.approx(th.stack(actor_norms).mean().item(), rel=1e-5)
    assert measured["value"] == pytest.approx(th.stack(value_norms).mean().item(), rel=1e-5)
    assert measured["actor"] > 0 and measured["value"] > 0
    assert measured["actor"] != pytest.approx(measured["value"])


def test_latent_diagnostics_callback_logs_gradient_norms_and_parameter_counts(tmp_path):
    norms = {}
    for name, policy_class, kwargs in [
        ("bias", RNNHNPolicy, {}),
        ("kaiming", RNNHNPolicy, {"hyper_init": "kaiming"}),
        ("rnn", RNNPolicy, {}),
    ]:
        model = make_model(policy_class, **kwargs)
        folder = tmp_path / name
        model.set_logger(configure(str(folder), ["csv"]))
        model.learn(30, callback=CallbackList([LatentDiagnostics()]))
        with open(folder / "progress.csv") as file:
            row = next(csv.DictReader(file))
        assert int(row["params/total"]) == model.policy.parameter_counts()["total"]
        norms[name] = {part: float(row[f"diagnostics/{part}_latent_grad_norm"]) for part in ("actor", "value")}
    # Measured after the first rollout, before any update: Bias-HyperInit ignores the latent entirely.
    assert norms["bias"] == {"actor": 0.0, "value": 0.0}
    assert all(value > 0.0 for name in ("kaiming", "rnn") for value in norms[name].values())


@pytest.mark.parametrize("scheme", HYPER_INITS)
def test_init_ablation_configs_differ_from_rnn_hn_only_in_the_scheme(scheme):
    configs = Path(__file__).resolve().parents[1] / "zoo_configs"
    for env_id in ("GridNavi-v0", "GridNaviShow-v0", "GridNaviDense-v0"):
        ablation = load_hyperparams(configs / "init_ablation" / f"rnn_hn_{scheme}.yml", env_id)
        reference = load_hyperparams(configs / "sb3_loss" / "rnn_hn.yml", env_id)
        kwargs = eval(ablation.pop("policy_kwargs"))
        assert kwargs.pop("hyper_init") == scheme
        assert kwargs == eval(reference.pop("policy_kwargs"))
        assert ablation.pop("callback") == ["sb3_hypernet.MetaEpisodeLogger", "sb3_hypernet.LatentDiagnostics"]
        reference.pop("callback")
        assert ablation == reference


@pytest.mark.parametrize("hypernet_layers", [[], [8]])
def test_actor_and_critic_share_the_first_outer_product_with_the_same_numbers(hypernet_layers, monkeypatch):
    """HyperNetworkHead.forward builds the (state, latent) outer product once for both first layers; values and
    gradients equal those of the actor and critic computed apart. With a hypernetwork trunk (different z) it does not
    share."""
    from sb3_hypernet.common.heads import HeadSpec, HyperNetworkHead

    th.manual_seed(0)
    spec = HeadSpec(
        condition_dim=6, state_dim=4, action_dim=3, action_kind="categorical", net_arch={"pi": [16, 8], "vf": [16, 8]}
    )
    head = HyperNetworkHead(
        spec, latent_embedding_dim=5, state_embedding_dim=12, hyper_init="weight", hypernet_layers=hypernet_layers
    )
    condition, state = th.randn(7, 6), th.randn(7, 4)
    calls = []
    original = GeneratedLinear.outer
    monkeypatch.setattr(GeneratedLinear, "outer", staticmethod(lambda x, z: calls.append(1) or original(x, z)))
    actor, critic = head(condition, state)
    shared_calls = len(calls)
    grads = th.autograd.grad((actor.square().sum() + critic.sum()), list(head.parameters()))
    apart_actor, apart_critic = head.forward_actor(condition, state), head.forward_critic(condition, state)
    apart = th.autograd.grad((apart_actor.square().sum() + apart_critic.sum()), list(head.parameters()))
    assert th.allclose(actor, apart_actor, atol=1e-6) and th.allclose(critic, apart_critic, atol=1e-6)
    assert all(th.allclose(g, h, atol=1e-5) for g, h in zip(grads, apart, strict=True))
    # Shared: 1 product for the first layers + one per later layer of each network (2 + 2); apart: 3 + 3.
    assert shared_calls == (5 if not hypernet_layers else 6)


def test_modes_of_before_0_2_keep_their_british_spelling_working():
    # Saved models and configs of earlier versions carry "factorised"/"materialised".
    assert GeneratedLinear(3, 2, cond_features=4, mode="materialised").mode == "materialized"
    assert GeneratedLinear(3, 2, cond_features=4, mode="factorised").mode == "factorized"
    with pytest.raises(ValueError, match="hypernet_mode"):
        GeneratedLinear(3, 2, cond_features=4, mode="materialist")


def test_layer_names_of_before_0_2_still_resolve_with_a_warning():
    from sb3_hypernet import offpolicy
    from sb3_hypernet.common import generated_layers
    from sb3_hypernet.offpolicy import networks

    with pytest.warns(DeprecationWarning, match="HyperMLP is now GeneratedMLP"):
        assert generated_layers.HyperMLP is generated_layers.GeneratedMLP
    for module in (offpolicy, networks):
        with pytest.warns(DeprecationWarning, match="DynamicLayer is now GeneratedGainLinear"):
            assert module.DynamicLayer is networks.GeneratedGainLinear
    with pytest.raises(AttributeError, match="no attribute 'HyperMLPs'"):
        generated_layers.HyperMLPs  # noqa: B018
