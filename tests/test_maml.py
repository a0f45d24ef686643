"""MAML's building blocks: the functional inner step against a hand-computed SGD step, the second-order
meta-gradient against finite differences and against first-order MAML's (which drops exactly the Hessian term), and
the linear feature baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch as th
from torch import nn

from sb3_hypernet.maml.adaptation import forward_with, inner_step, parameters_of
from sb3_hypernet.maml.baseline import LinearFeatureBaseline


def tiny_problem():
    """A 2-layer tanh network and two quadratic losses (train and validation) on fixed data, in float64."""
    th.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    x_train, y_train = th.randn(6, 3, dtype=th.float64), th.randn(6, 2, dtype=th.float64)
    x_valid, y_valid = th.randn(5, 3, dtype=th.float64), th.randn(5, 2, dtype=th.float64)

    def train_loss(params):
        return (forward_with(net, params, x_train) - y_train).pow(2).mean()

    def valid_loss(params):
        return (forward_with(net, params, x_valid) - y_valid).pow(2).mean()

    return net, train_loss, valid_loss


def test_the_inner_step_is_an_sgd_step_on_every_parameter():
    net, train_loss, _ = tiny_problem()
    params = parameters_of(net)
    adapted = inner_step(train_loss(params), params, step_size=0.1)
    grads = th.autograd.grad(train_loss(params), list(params.values()))
    for (name, value), grad in zip(params.items(), grads, strict=True):
        assert th.allclose(adapted[name], value - 0.1 * grad), name
    per_parameter = {name: (0.5 if name.startswith("0.") else 0.0) for name in params}
    adapted = inner_step(train_loss(params), params, step_size=per_parameter)
    assert th.equal(adapted["2.weight"], params["2.weight"]) and not th.equal(adapted["0.weight"], params["0.weight"])


def meta_objective(net, train_loss, valid_loss, flat: th.Tensor, alpha: float, first_order: bool = False):
    """L_valid(theta - alpha grad L_train(theta)) as a function of the flat initial parameters."""
    shapes = [p.shape for p in net.parameters()]
    names = [name for name, _ in net.named_parameters()]
    chunks = th.split(flat, [s.numel() for s in shapes])
    params = {name: chunk.reshape(shape) for name, chunk, shape in zip(names, chunks, shapes, strict=True)}
    return valid_loss(inner_step(train_loss(params), params, alpha, first_order=first_order))


def test_the_second_order_meta_gradient_matches_finite_differences():
    net, train_loss, valid_loss = tiny_problem()
    theta = th.cat([p.detach().flatten() for p in net.parameters()]).requires_grad_(True)
    alpha = 0.3
    (gradient,) = th.autograd.grad(meta_objective(net, train_loss, valid_loss, theta, alpha), theta)
    eps = 1e-6
    numeric = th.zeros_like(theta)
    with th.enable_grad():
        for i in range(len(theta)):
            step = th.zeros_like(theta)
            step[i] = eps
            plus = meta_objective(net, train_loss, valid_loss, (theta + step).detach().requires_grad_(True), alpha)
            minus = meta_objective(net, train_loss, valid_loss, (theta - step).detach().requires_grad_(True), alpha)
            numeric[i] = (plus - minus).item() / (2 * eps)
    assert th.allclose(gradient, numeric, atol=1e-7, rtol=1e-5)


def test_first_order_maml_drops_exactly_the_hessian_term():
    net, train_loss, valid_loss = tiny_problem()
    theta = th.cat([p.detach().flatten() for p in net.parameters()]).requires_grad_(True)
    alpha = 0.3
    (second,) = th.autograd.grad(meta_objective(net, train_loss, valid_loss, theta, alpha), theta)
    (first,) = th.autograd.grad(meta_objective(net, train_loss, valid_loss, theta, alpha, first_order=True), theta)

    def flat_train(flat):
        names = [name for name, _ in net.named_parameters()]
        chunks = th.split(flat, [p.numel() for p in net.parameters()])
        return train_loss({n: c.reshape(p.shape) for n, c, p in zip(names, chunks, net.parameters(), strict=True)})

    def flat_valid(flat):
        names = [name for name, _ in net.named_parameters()]
        chunks = th.split(flat, [p.numel() for p in net.parameters()])
        return valid_loss({n: c.reshape(p.shape) for n, c, p in zip(names, chunks, net.parameters(), strict=True)})

    (train_grad,) = th.autograd.grad(flat_train(theta), theta)
    adapted = (theta - alpha * train_grad).detach().requires_grad_(True)
    (valid_grad,) = th.autograd.grad(flat_valid(adapted), adapted)
    hessian = th.autograd.functional.hessian(flat_train, theta.detach())
    assert th.allclose(first, valid_grad, atol=1e-12)  # first order: the gradient at the adapted parameters
    assert th.allclose(second - first, -alpha * hessian @ valid_grad, atol=1e-10)  # the Hessian term, exactly


def test_the_linear_baseline_fits_returns_that_its_features_explain():
    th.manual_seed(0)
    steps, episodes, obs_dim = 30, 4, 2
    observations = th.randn(steps, episodes, obs_dim)
    mask = th.ones(steps, episodes)
    mask[20:, 0] = 0.0  # a shorter episode
    baseline = LinearFeatureBaseline(obs_dim)
    weights = th.randn(baseline.feature_dim)
    returns = baseline.features(observations, mask) @ weights
    baseline.fit(observations, returns, mask)
    assert th.allclose(baseline.predict(observations, mask), returns, atol=1e-3)
    features = baseline.features(observations, mask)
    assert th.equal(features[20:, 0], th.zeros_like(features[20:, 0]))  # nothing on steps that do not exist
    assert features[4, 1, -4].item() == pytest.approx(5 / 100)  # the 1-based time step / 100
    unfitted = LinearFeatureBaseline(obs_dim)
    assert th.equal(unfitted.predict(observations, mask), th.zeros(steps, episodes))


def test_the_baseline_survives_singular_features_and_rejects_bad_sizes():
    baseline = LinearFeatureBaseline(1)
    observations = th.zeros(5, 2, 1)  # state features all zero: X^T X singular without the ridge term
    baseline.fit(observations, th.ones(5, 2), th.ones(5, 2))
    assert th.isfinite(baseline.weight).all()
    with pytest.raises(ValueError, match="obs_dim must be >= 1"):
        LinearFeatureBaseline(0)


def test_the_trpo_step_backtracks_until_the_loss_improves_inside_the_kl_bound():
    from sb3_hypernet.maml.trpo import trpo_step

    theta = nn.Parameter(th.zeros(1, dtype=th.float64))

    def surrogate():
        # KL 0.5 d^2 (Hessian 1) and a loss that the full step (d = 1) overshoots: -d + 2 d^2.
        d = theta.sum()
        return -d + 2 * d**2, 0.5 * d**2

    info = trpo_step([theta], surrogate, max_kl=0.5, line_search_steps=20, backtrack_ratio=0.8)
    # Full step d = 1 (the trust region of KL 0.5); d = 0.8, 0.64, 0.512 still raise the loss; 0.8^4 lowers it.
    assert info.accepted and info.line_search_steps == 5
    assert info.step_fraction == pytest.approx(0.8**4)
    assert theta.item() == pytest.approx(0.8**4, rel=1e-3)
    assert info.kl < 0.5 and info.loss_after < info.loss_before


def test_the_trpo_step_stays_in_the_trust_region_of_a_gaussian_policy():
    from sb3_hypernet.maml.trpo import trpo_step

    th.manual_seed(0)
    features, advantages = th.randn(200, 4), th.randn(200)
    policy = nn.Linear(4, 1)
    actions = policy(features).detach().squeeze(-1) + th.randn(200)
    old_mean = policy(features).detach().squeeze(-1)

    def log_prob(mean):
        return -0.5 * (actions - mean) ** 2

    def surrogate():
        mean = policy(features).squeeze(-1)
        ratio = th.exp(log_prob(mean) - log_prob(old_mean))
        return -(ratio * advantages).mean(), 0.5 * ((mean - old_mean) ** 2).mean()  # KL of unit-variance Gaussians

    before = [p.detach().clone() for p in policy.parameters()]
    info = trpo_step(list(policy.parameters()), surrogate, max_kl=1e-2)
    assert info.accepted and info.loss_after < info.loss_before
    kl = 0.5 * ((policy(features).detach().squeeze(-1) - old_mean) ** 2).mean()
    assert kl.item() < 1e-2 and kl.item() == pytest.approx(info.kl)
    assert any(not th.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))


def test_a_trpo_step_that_cannot_improve_leaves_the_parameters_alone():
    from sb3_hypernet.maml.trpo import trpo_step

    theta = nn.Parameter(th.tensor([1.0], dtype=th.float64))

    def surrogate():  # the gradient says "go up", but every step along it raises the loss above the start
        d = theta.sum() - 1.0
        return -d + 100 * d**2 + 10 * d.abs() ** 0.5, 0.5 * d**2

    info = trpo_step([theta], surrogate, max_kl=0.5, line_search_steps=5)
    assert not info.accepted and info.step_fraction == 0.0 and theta.item() == 1.0


@pytest.mark.parametrize("policy_name", ["MAMLPolicy", "ContextMAMLPolicy", "HyperMAMLPolicy"])
def test_the_policies_read_the_context_as_their_kind_does_and_run_functionally(policy_name):
    import gymnasium as gym

    from sb3_hypernet.maml import policies

    space = policies.context_observation_space(gym.spaces.Box(-1, 1, (3,)), 2)
    kwargs = {"primary_widths": (16, 32), "blocks_per_stage": 1, "net_arch": (8,)} if "Hyper" in policy_name else {}
    policy = getattr(policies, policy_name)(space, gym.spaces.Box(-1, 1, (2,)), **kwargs)
    obs = {"obs": th.randn(6, 3), "context": th.rand(6, 2)}
    distribution = policy(obs)
    assert distribution.mean.shape == (6, 2) and th.allclose(distribution.stddev, th.ones(6, 2))
    other = {"obs": obs["obs"], "context": th.rand(6, 2)}
    assert th.equal(policy(other).mean, distribution.mean) != policy.uses_context
    params = {name: value + 0.01 for name, value in parameters_of(policy).items()}
    shifted = forward_with(policy, params, obs)
    assert not th.allclose(shifted.mean, distribution.mean)
    assert th.allclose(shifted.stddev, th.full((6, 2), math.exp(0.01)))
    with pytest.raises(ValueError, match="takes the observation space"):
        getattr(policies, policy_name)(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (2,)))


# -- the algorithm -------------------------------------------------------------------------------------------------


def make_maml(policy: str = "MlpPolicy", **kwargs):
    import envs  # noqa: F401
    from sb3_hypernet.maml.maml import MAML

    policy_kwargs = {"net_arch": (16, 16)} if policy != "HyperPolicy" else {
        "primary_widths": (16, 32), "blocks_per_stage": 1, "net_arch": (8,)}  # fmt: skip
    settings = dict(n_envs=4, meta_batch_size=3, n_train_tasks=6, n_test_tasks=2, seed=0, policy_kwargs=policy_kwargs)
    return MAML(policy, "Navigation2DTask-v0", **{**settings, **kwargs})


def test_gae_matches_a_hand_computation():
    from sb3_hypernet.maml.maml import Episodes, gae_advantages

    rewards = th.tensor([[1.0], [0.0], [2.0]])
    mask = th.ones(3, 1)
    values = th.tensor([[0.5], [1.0], [0.2]])
    episodes = Episodes(th.zeros(3, 1, 2), th.zeros(3, 1, 2), rewards, mask, th.zeros(1, 2))
    gamma, lam = 0.9, 0.5
    deltas = [1.0 + 0.9 * 1.0 - 0.5, 0.0 + 0.9 * 0.2 - 1.0, 2.0 + 0.0 - 0.2]
    raw = [0.0, 0.0, 0.0]
    raw[2] = deltas[2]
    raw[1] = deltas[1] + gamma * lam * raw[2]
    raw[0] = deltas[0] + gamma * lam * raw[1]
    raw = th.tensor(raw)
    expected = (raw - raw.mean()) / (raw.std(unbiased=False) + 1e-8)
    assert th.allclose(gae_advantages(episodes, values, gamma, lam)[:, 0], expected, atol=1e-6)
    assert th.allclose(episodes.returns(0.9)[:, 0], th.tensor([1 + 0.81 * 2, 0.9 * 2, 2.0]))


def test_sampled_episodes_are_masked_after_they_end():
    model = make_maml()
    task = np.array([0.05, 0.0])  # reachable in one step: episodes can end early
    episodes = model.sample_episodes(model.env, task)
    steps, n = episodes.mask.shape
    assert n == 4 and steps <= 100
    lengths = episodes.mask.sum(dim=0)
    for i in range(n):  # a mask is ones, then zeros
        assert th.equal(episodes.mask[: int(lengths[i]), i], th.ones(int(lengths[i])))
    assert model.num_timesteps == int(lengths.sum())
    assert th.allclose(episodes.context, th.tensor([[0.55, 0.5]] * 4))  # the goal rescaled from [-0.5, 0.5]


def test_second_order_meta_gradients_differ_from_first_order_and_trpo_keeps_the_kl_bound():
    # Built and trained one after the other (SB3 seeds torch's global generator when it builds a model): the same
    # episodes, a different meta-gradient.
    first = make_maml(first_order=True).learn(1)
    second = make_maml(first_order=False).learn(1)
    assert first.num_timesteps == second.num_timesteps
    parameters = [th.cat([p.detach().flatten() for p in m.policy.parameters()]) for m in (first, second)]
    assert not th.allclose(parameters[0], parameters[1])
    for model in (first, second):
        assert model.logger.name_to_value["train/kl"] < model.max_kl or model.logger.name_to_value[
            "train/step_fraction"] == 0.0  # fmt: skip


def test_learn_counts_steps_is_reproducible_and_save_load_round_trips(tmp_path):
    from sb3_hypernet.maml.maml import MAML

    model = make_maml("HyperPolicy", inner_lr=5e-5).learn(500)
    assert model.num_timesteps >= 500 and model.iterations >= 1
    again = make_maml("HyperPolicy", inner_lr=5e-5).learn(500)
    assert all(th.equal(a, b) for a, b in zip(model.policy.parameters(), again.policy.parameters(), strict=True))
    model.save(tmp_path / "maml.zip")
    loaded = MAML.load(tmp_path / "maml.zip", env=model.get_env())
    assert loaded.train_tasks[0].tolist() == model.train_tasks[0].tolist() and loaded.inner_lr == 5e-5
    assert all(th.equal(a, b) for a, b in zip(model.policy.parameters(), loaded.policy.parameters(), strict=True))
    loaded.learn(100, reset_num_timesteps=False)


def test_evaluation_reports_pre_and_post_adaptation_returns_without_counting_steps():
    from sb3_hypernet.maml.evaluation import evaluate_maml

    model = make_maml()
    steps = model.num_timesteps
    result = evaluate_maml(model, n_inner_steps=2)
    assert result.inner_returns.shape == (2, 3) and model.num_timesteps == steps
    assert result.summary()["inner_labels"] == ["pre-adaptation", "after 1 step", "after 2 steps"]
    assert "after 2 steps return" in str(result.summary())


def test_maml_refuses_an_env_without_the_task_interface_and_bad_settings():
    from sb3_hypernet.maml.maml import MAML

    with pytest.raises(TypeError, match="needs a task env"):
        MAML("MlpPolicy", "Pendulum-v1", n_envs=2)
    with pytest.raises(ValueError, match="meta_batch_size must be an integer >= 1"):
        make_maml(meta_batch_size=0)
    with pytest.raises(ValueError, match="inner_lr and max_kl must be > 0"):
        make_maml(inner_lr=0.0)


def test_rl_zoo3_trains_maml_and_the_evaluator_reports_each_stage(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from sb3_hypernet import evaluate, train
    from sb3_hypernet.maml import MAML

    argv = [
        "train", "--algo", "maml", "--env", "Navigation2DTask-v0", "--gym-packages", "envs", "--conf-file",
        "hyper_maml", "-n", "300", "--eval-freq", "-1", "-f", str(tmp_path), "--seed", "0", "-params", "n_envs:2",
        "meta_batch_size:2", "n_train_tasks:3", "n_test_tasks:2",
        "policy_kwargs:dict(primary_widths=(16, 32), blocks_per_stage=1, net_arch=(8,))",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    train.main()
    path = tmp_path / "maml" / "Navigation2DTask-v0_1" / "Navigation2DTask-v0.zip"
    model = MAML.load(path)
    assert type(model.policy).__name__ == "HyperMAMLPolicy" and model.inner_lr == 5e-5
    capsys.readouterr()
    evaluate.main(
        ["--model", str(path), "--env", "Navigation2DTask-v0", "--json", "--inner-steps", "2", "--n-envs", "2"]
    )
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"] == "maml" and result["inner_labels"] == [
        "pre-adaptation",
        "after 1 step",
        "after 2 steps",
    ]
    assert result["n_meta_episodes"] == 2


@pytest.mark.parametrize("config", ["maml", "context_maml", "hyper_maml"])
def test_the_maml_zoo_entries_are_the_references(config):
    from sb3_hypernet.experiments.zoo import load_hyperparams

    for env_id in ("CheetahVelTask-v0", "AntVelTask-v0", "CheetahDirTask-v0", "AntDirFwdBackTask-v0",
                   "Navigation2DTask-v0"):  # fmt: skip
        entry = load_hyperparams(config, env_id, "maml")
        assert (entry["n_envs"], entry["gamma"], entry["gae_lambda"], entry["max_kl"]) == (20, 0.95, 1.0, 0.01)
        assert (entry["cg_iters"], entry["cg_damping"], entry["line_search_steps"]) == (10, 1e-5, 20)
        assert entry["inner_lr"] == (5e-5 if config == "hyper_maml" else 0.1)
        assert entry["first_order"] is True  # the reference's effective meta-gradient
        assert (
            entry["policy"]
            == {"maml": "MlpPolicy", "context_maml": "ContextPolicy", "hyper_maml": "HyperPolicy"}[config]
        )


def test_the_progress_bar_and_tensorboard_keys(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = make_maml(tensorboard_log=str(tmp_path))
    model.learn(300, progress_bar=True)
    assert model.iterations >= 1
    (events,) = tmp_path.rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    tags = set(accumulator.Tags()["scalars"])
    expected = {"rollout/pre_adaptation_return", "rollout/post_adaptation_return", "train/kl", "train/step_fraction",
                "train/surrogate_loss"}  # fmt: skip
    assert expected <= tags, tags
