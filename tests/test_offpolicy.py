"""Hypernetwork critics and actors for SAC and TD3 (ICML 2021): shapes, twin and target critics, where dQ/da flows,
the initialisation, the critic's learning rate, save/load, short training runs, the oracle-context model, zoo
configs, errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC, TD3
from test_policies import PointGoal  # a 2-D point steered to a goal: a continuous-action task family

from sb3_hypernet import (
    ContextHyperSACPolicy,
    ContextHyperTD3Policy,
    HyperSACPolicy,
    HyperTD3Policy,
    MetaEpisodeWrapper,
)
from sb3_hypernet.experiments.zoo import build_model, load_hyperparams
from sb3_hypernet.offpolicy.networks import GeneratedGainLinear, HyperNetwork
from sb3_hypernet.offpolicy.policies import ContextFeaturesExtractor, HyperContinuousCritic, scaled_learning_rate

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(primary_widths=(16, 32), blocks_per_stage=1, net_arch=dict(pi=[16], qf=[16]))
ALGOS = [(SAC, HyperSACPolicy), (TD3, HyperTD3Policy)]


def make(algo=SAC, policy=HyperSACPolicy, env="Pendulum-v1", **policy_kwargs):
    return algo(policy, env, policy_kwargs={**SMALL, **policy_kwargs}, learning_starts=20, batch_size=16, seed=0)


def params(module: th.nn.Module) -> th.Tensor:
    return th.cat([p.detach().flatten() for p in module.parameters()])


def meta_env(expose_task: bool = True) -> MetaEpisodeWrapper:
    return MetaEpisodeWrapper(PointGoal(), n_episodes=2, expose_task=expose_task, max_episode_steps=10)


@pytest.mark.parametrize("ordering", ["sa", "as"])
@pytest.mark.parametrize("algo, policy", ALGOS)
def test_shapes_twin_critics_and_targets(algo, policy, ordering):
    model = make(algo, policy, critic_ordering=ordering)
    critic, target = model.policy.critic, model.policy.critic_target
    assert isinstance(critic, HyperContinuousCritic) and critic.ordering == ordering and len(critic.q_networks) == 2
    obs = th.randn(5, 3)
    actions = th.rand(5, 1) * 2 - 1
    q1, q2 = critic(obs, actions)
    assert q1.shape == q2.shape == (5, 1) and not th.equal(q1, q2)  # twins initialised independently
    assert th.equal(critic.q1_forward(obs, actions), q1)
    assert th.equal(params(target), params(critic))  # target starts as a copy ...
    assert not {id(p) for p in target.parameters()} & {id(p) for p in critic.parameters()}  # ... not a view
    assert model.policy.actor(obs).shape == (5, 1)
    primary_in = critic.q_networks[0].network.primary.net[0].in_features
    assert primary_in == (3 if ordering == "sa" else 1)
    before = params(critic).clone()
    model.learn(60)
    after_critic, after_target = params(critic), params(target)
    assert not th.equal(after_critic, before)
    # Polyak averaging: the target moved towards the critic, by a small step (tau = 0.005).
    assert 0 < (after_target - before).abs().max() < (after_critic - before).abs().max()
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


def test_sa_hyper_gradient_wrt_the_action_flows_only_through_the_dynamic_network():
    th.manual_seed(0)
    net = HyperNetwork(3, 2, 1, hidden=(8,), primary_widths=(16, 32), blocks_per_stage=1)  # state primary
    state, action = th.randn(6, 3), th.randn(6, 2, requires_grad=True)
    (grad,) = th.autograd.grad(net(state, action).sum(), action)
    assert grad.abs().sum() > 0
    # The same gradient with the primary network cut out of the graph: it carries nothing of the action.
    (through_dynamic,) = th.autograd.grad(net.base_network(action, net.primary(state).detach()).sum(), action)
    assert th.equal(grad, through_dynamic)


def test_as_hyper_gradient_wrt_the_action_goes_through_the_primary_network():
    th.manual_seed(0)
    net = HyperNetwork(2, 3, 1, hidden=(8,), primary_widths=(16, 32), blocks_per_stage=1)  # action primary
    state, action = th.randn(6, 3), th.randn(6, 2, requires_grad=True)
    (grad,) = th.autograd.grad(net(action, state).sum(), action)
    assert grad.abs().sum() > 0
    cut = net.base_network(state, net.primary(action).detach())
    assert th.autograd.grad(cut.sum(), action, allow_unused=True) == (None,)  # no path left without the primary


@pytest.mark.parametrize("ordering", ["sa", "as"])
def test_the_actors_loss_computes_the_action_gradient_and_no_critic_gradients(ordering):
    model = make(critic_ordering=ordering)
    critic = model.policy.critic
    obs, actions = th.randn(6, 3), (th.rand(6, 1) * 2 - 1).requires_grad_()
    (grad,) = th.autograd.grad(sum(q.sum() for q in critic(obs, actions)), actions)
    assert all(p.grad is None for p in critic.parameters()) and all(p.requires_grad for p in critic.parameters())
    critic.freeze_for_actor = False
    (unfrozen,) = th.autograd.grad(sum(q.sum() for q in critic(obs, actions)), actions)
    assert th.equal(grad, unfrozen)
    critic.freeze_for_actor = True
    critic.q1_forward(obs, actions).sum().backward()
    assert all(p.grad is None for p in critic.parameters())
    # The critic's own loss (replay actions, no grad) still trains every parameter.
    sum(q.sum() for q in critic(obs, actions.detach())).backward()
    assert all(p.grad is not None for p in critic.parameters())


@pytest.mark.parametrize("algo, policy", ALGOS)
def test_freezing_the_critic_for_the_actor_trains_exactly_as_sb3(algo, policy):
    runs = []
    for freeze in (True, False):
        model = make(algo, policy, freeze_critic_for_actor=freeze)
        model.learn(80)
        runs.append(params(model.policy))
    assert th.equal(*runs)  # SB3 zeroes the critic's gradients from the actor's loss before using any


def test_gains_start_at_one_and_heads_follow_the_papers_init():
    net = HyperNetwork(3, 2, 1, hidden=(256,), primary_widths=(16, 32), blocks_per_stage=1)
    embedding = th.randn(10, 32)
    first, last = net.layers
    for layer, bound in ((first, 0.05), (last, 0.008)):
        assert isinstance(layer, GeneratedGainLinear)
        assert th.equal(layer.gains(embedding), th.ones(10, layer.out_features))
        for head in (layer.weight, layer.bias):
            assert head.weight.abs().max() <= bound and head.weight.abs().max() > 0.9 * bound
            assert not head.bias.any()
    assert (first.in_features, first.out_features, last.in_features, last.out_features) == (2, 256, 256, 1)
    sizes = [m.out_features for m in net.primary.net if isinstance(m, th.nn.Linear) and m.in_features != m.out_features]
    assert sizes == [16, 32]


def test_default_architecture_is_the_papers():
    model = SAC(HyperSACPolicy, "Pendulum-v1", seed=0)
    q_net = model.policy.critic.q_networks[0].network
    stages = [m for m in q_net.primary.net if isinstance(m, th.nn.Linear)]
    assert [m.out_features for m in stages] == [256, 512, 1024]
    assert len(q_net.primary.net) == 3 + 6  # three stage layers, two residual blocks each
    assert [(layer.in_features, layer.out_features) for layer in q_net.layers] == [(1, 256), (256, 1)]
    assert [m.out_features for m in model.policy.actor.latent_pi if isinstance(m, th.nn.Linear)] == [256, 256]


def test_critic_learning_rate_scales_every_critic_step():
    model = make(critic_learning_rate=1e-5)
    optimizer = model.policy.critic.optimizer
    assert optimizer.lr_scale == pytest.approx(1e-5 / 3e-4)
    assert model.policy.actor.optimizer.param_groups[0]["lr"] == pytest.approx(3e-4)
    # A scaled step is an Adam step at the scaled rate; SB3's rate stays on the group.
    torch_params = [th.nn.Parameter(th.ones(3)), th.nn.Parameter(th.ones(3))]
    scaled = scaled_learning_rate(th.optim.Adam)([torch_params[0]], lr=1e-2, lr_scale=0.1)
    plain = th.optim.Adam([torch_params[1]], lr=1e-3)
    for p in torch_params:
        p.grad = th.tensor([1.0, -2.0, 3.0])
    scaled.step(), plain.step()
    assert th.allclose(torch_params[0], torch_params[1]) and scaled.param_groups[0]["lr"] == 1e-2
    # Shared features extractor: SB3 leaves it out of the critic's optimiser, and so does the scaled one.
    shared = make(critic_learning_rate=1e-5, share_features_extractor=True)
    assert shared.policy.critic.features_extractor is shared.policy.actor.features_extractor
    names = {id(p) for g in shared.policy.critic.optimizer.param_groups for p in g["params"]}
    assert not names & {id(p) for p in shared.policy.critic.features_extractor.parameters()}
    assert names == {id(p) for n, p in shared.policy.critic.named_parameters() if "features_extractor" not in n}


@pytest.mark.parametrize("algo, policy", ALGOS)
def test_save_load_round_trip(algo, policy, tmp_path):
    model = make(algo, policy, critic_ordering="as", hyper_actor=True, critic_learning_rate=1e-4,
                 freeze_critic_for_actor=False)  # fmt: skip
    model.learn(40)
    model.save(tmp_path / "model.zip")
    loaded = algo.load(tmp_path / "model.zip", device="cpu")
    assert type(loaded.policy) is policy and loaded.policy.critic.ordering == "as" and loaded.policy.hyper_actor
    assert loaded.policy.freeze_critic_for_actor is False and loaded.policy.critic.freeze_for_actor is False
    assert loaded.policy.critic.optimizer.lr_scale == pytest.approx(model.policy.critic.optimizer.lr_scale)
    assert th.equal(params(loaded.policy), params(model.policy))
    obs = np.array([[0.5, -0.5, 0.1]], np.float32)
    assert np.array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    # The policy alone (SB3's BasePolicy.save/load, from its constructor parameters).
    model.policy.save(tmp_path / "policy.pth")
    alone = policy.load(tmp_path / "policy.pth", device="cpu")
    assert alone.critic.ordering == "as" and alone.hyper_actor and th.equal(params(alone), params(model.policy))


@pytest.mark.parametrize("algo, policy", [(SAC, ContextHyperSACPolicy), (TD3, ContextHyperTD3Policy)])
def test_context_model_conditions_on_the_task_descriptor(algo, policy):
    model = algo(policy, meta_env(), policy_kwargs=dict(SMALL), learning_starts=20, batch_size=16, seed=0)
    extractor = model.policy.actor.features_extractor
    assert isinstance(extractor, ContextFeaturesExtractor) and extractor.context_dim == 2
    actor_net = (model.policy.actor.latent_pi if algo is SAC else model.policy.actor.mu).network
    q_net = model.policy.critic.q_networks[0]
    assert actor_net.primary.net[0].in_features == 2 and actor_net.layers[0].in_features == 2  # context | state
    assert q_net.network.primary.net[0].in_features == 2 and q_net.network.layers[0].in_features == 2 + 2
    obs = model.env.reset()
    actions = []
    for task in ([0.9, 0.9], [-0.9, -0.9]):
        obs["task"] = np.array([task], np.float32)
        actions.append(model.predict(obs, deterministic=True)[0])
    assert not np.allclose(*actions)  # the task descriptor steers the actor
    model.learn(60)
    assert all(th.isfinite(p).all() for p in model.policy.parameters())


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="critic_ordering must be one of"):
        make(critic_ordering="sas")
    with pytest.raises(ValueError, match="use ContextFeaturesExtractor"):
        make(critic_ordering="context")
    with pytest.raises(ValueError, match="critic_learning_rate must be positive"):
        make(critic_learning_rate=0.0)
    with pytest.raises(ValueError, match="expose_task=True"):
        SAC(ContextHyperSACPolicy, meta_env(expose_task=False), policy_kwargs=dict(SMALL))
    with pytest.raises(TypeError, match="needs a Dict observation space"):
        SAC(ContextHyperSACPolicy, "Pendulum-v1", policy_kwargs=dict(SMALL))
    with pytest.raises(ValueError, match="needs a hidden layer"):
        make(hyper_actor=True, net_arch=dict(pi=[], qf=[16]))


@pytest.mark.parametrize(
    "conf, algo, policy", [("sac_hyper.yml", "sac", HyperSACPolicy), ("td3_hyper.yml", "td3", HyperTD3Policy)]
)
def test_zoo_configs_have_the_papers_critic(conf, algo, policy):
    for env_id in ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Ant-v5"):
        entry = load_hyperparams(REPO_ROOT / "zoo_configs" / conf, env_id, algo)
        assert entry["policy"] == f"sb3_hypernet.{policy.__name__}" and entry["learning_starts"] == 10000
        assert "critic_learning_rate=5e-5" in entry["policy_kwargs"]
    model, _ = build_model(REPO_ROOT / "zoo_configs" / conf, "HalfCheetah-v5", algo=algo)
    assert type(model.policy) is policy and model.policy.critic.ordering == "sa"
    assert model.policy.critic.optimizer.lr_scale == pytest.approx(5e-5 / 3e-4)


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_plain_rl_zoo3_trains_the_configs(algo, tmp_path):
    command = [
        sys.executable, "-m", "rl_zoo3.train", "--algo", algo, "--env", "HalfCheetah-v5", "--conf-file",
        str(REPO_ROOT / "zoo_configs" / f"{algo}_hyper.yml"), "-n", "120", "-f", str(tmp_path), "--seed", "0",
        "-params", "learning_starts:60", "batch_size:16",
        "policy_kwargs:dict(critic_learning_rate=5e-5, primary_widths=(16, 32), net_arch=dict(pi=[16], qf=[16]))",
    ]  # fmt: skip
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    (zip_path,) = (tmp_path / algo).glob("HalfCheetah-v5_*/HalfCheetah-v5.zip")
    model = (SAC if algo == "sac" else TD3).load(zip_path, device="cpu")
    assert model.num_timesteps == 120 and model.policy.critic.optimizer.lr_scale == pytest.approx(5e-5 / 3e-4)
