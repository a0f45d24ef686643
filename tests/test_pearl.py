"""PEARL and Hyper-PEARL: the encoder's posterior and KL against hand computations, which losses reach the encoder,
per-task buffers, the task split, the collection schedule, save/load, evaluation and errors."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch as th

import envs  # noqa: F401
from sb3_hypernet.offpolicy.policies import HyperContinuousCritic
from sb3_hypernet.pearl import (
    PEARL,
    ContextEncoder,
    HyperPEARLPolicy,
    PEARLPolicy,
    draw_task_split,
    evaluate_pearl,
    kl_to_standard_normal,
    product_of_gaussians,
)
from sb3_hypernet.pearl.buffers import TaskReplayBuffer
from sb3_hypernet.pearl.policies import LOG_STD_HEAD_INIT

SMALL = dict(net_arch=[32, 32], encoder_net_arch=[32])
SMALL_HYPER = dict(primary_widths=(32, 64), blocks_per_stage=1, net_arch=dict(pi=[16], qf=[16]), encoder_net_arch=[32])
SCHEDULE = dict(n_train_tasks=4, n_test_tasks=2, meta_batch_size=4, batch_size=32, context_batch_size=16,
                initial_steps=40, tasks_per_iteration=2, prior_steps=20, extra_posterior_steps=20,
                gradient_steps=5)  # fmt: skip


def make(policy: str = "MlpPolicy", env: str = "PointRobotTask-v0", **kwargs) -> PEARL:
    policy_kwargs = kwargs.pop("policy_kwargs", SMALL_HYPER if policy == "HyperPolicy" else SMALL)
    return PEARL(policy, env, policy_kwargs=policy_kwargs, **{**SCHEDULE, "seed": 0, **kwargs})


def parameters(module: th.nn.Module) -> th.Tensor:
    return th.cat([p.detach().flatten() for p in module.parameters()])


# -- encoder -------------------------------------------------------------------------------------------------------


def test_the_product_of_gaussians_matches_a_hand_computation():
    means = th.tensor([[1.0, 0.0], [3.0, 2.0]])  # two factors, 2-D latent
    variances = th.tensor([[1.0, 2.0], [1.0, 2.0 / 3.0]])
    mean, variance = product_of_gaussians(means, variances)
    # dim 0: precisions 1, 1 -> variance 1/2, mean (1 + 3) / 2; dim 1: precisions 1/2, 3/2 -> variance 1/2,
    # mean (0 * 1/2 + 2 * 3/2) / 2.
    assert th.allclose(variance, th.tensor([0.5, 0.5]))
    assert th.allclose(mean, th.tensor([2.0, 1.5]))


def test_the_kl_to_the_prior_matches_a_hand_computation():
    mean, variance = th.tensor([1.0, -2.0]), th.tensor([2.0, 0.25])
    expected = 0.5 * ((2.0 + 1.0 - 1.0 - math.log(2.0)) + (0.25 + 4.0 - 1.0 - math.log(0.25)))
    assert float(kl_to_standard_normal(mean, variance)) == pytest.approx(expected)
    assert float(kl_to_standard_normal(th.zeros(3), th.ones(3))) == 0.0
    reference = th.distributions.kl_divergence(
        th.distributions.Normal(mean, variance.sqrt()), th.distributions.Normal(th.zeros(2), th.ones(2))
    ).sum()
    assert float(kl_to_standard_normal(mean, variance)) == pytest.approx(float(reference))


def test_the_posterior_ignores_order_and_an_empty_context_is_the_prior():
    th.manual_seed(0)
    encoder = ContextEncoder(5, 3, [8])
    context = th.randn(2, 6, 5)
    mean, variance = encoder(context)
    shuffled_mean, shuffled_variance = encoder(context[:, th.randperm(6)])
    assert th.allclose(mean, shuffled_mean, atol=1e-6) and th.allclose(variance, shuffled_variance, atol=1e-6)
    prior_mean, prior_variance = encoder(th.zeros(2, 0, 5))
    assert th.equal(prior_mean, th.zeros(2, 3)) and th.equal(prior_variance, th.ones(2, 3))
    with pytest.raises(ValueError, match="context transitions have 4 numbers; the encoder takes 5"):
        encoder(th.zeros(1, 3, 4))


# -- buffers and tasks ---------------------------------------------------------------------------------------------


def test_a_batch_or_context_never_mixes_tasks():
    buffer = TaskReplayBuffer(n_tasks=3, capacity=50, obs_dim=2, action_dim=1)
    for task in range(3):
        n = 10 + 5 * task
        buffer.add(task, np.full((n, 2), task), np.full((n, 1), task), np.full(n, task), np.full((n, 2), task),
                   np.zeros(n))  # fmt: skip
    rng = np.random.default_rng(0)
    batch = buffer.sample([2, 0, 2, 1], 64, rng)
    for row, task in enumerate([2, 0, 2, 1]):
        for name in ("observations", "actions", "rewards", "next_observations"):
            assert th.all(batch[name][row] == task), name
    context = buffer.sample_context([1, 0], 8, rng)
    assert context.shape == (2, 8, 4) and th.all(context[0] == 1) and th.all(context[1] == 0)
    buffer.clear(1)
    with pytest.raises(ValueError, match=r"no transitions stored for task\(s\) \[1\]"):
        buffer.sample([0, 1], 4, rng)


def test_the_buffer_is_circular_per_task():
    buffer = TaskReplayBuffer(n_tasks=2, capacity=4, obs_dim=1, action_dim=1)
    buffer.add(0, np.arange(6)[:, None], np.zeros((6, 1)), np.zeros(6), np.zeros((6, 1)), np.zeros(6))
    assert buffer.size(0) == 4 and buffer.size(1) == 0
    kept = buffer.sample([0], 200, np.random.default_rng(0))["observations"].unique().tolist()
    assert sorted(kept) == [2.0, 3.0, 4.0, 5.0]


def test_train_and_test_tasks_are_disjoint_and_seeded():
    model = make(n_train_tasks=20, n_test_tasks=10)
    assert len(model.train_tasks) == 20 and len(model.test_tasks) == 10
    assert not set(model.train_tasks) & set(model.test_tasks)
    again = make(n_train_tasks=20, n_test_tasks=10)
    assert again.train_tasks == model.train_tasks and again.test_tasks == model.test_tasks
    other = make(n_train_tasks=20, n_test_tasks=10, task_seed=1)
    assert other.train_tasks != model.train_tasks


def test_given_tasks_replace_the_draw():
    model = make(train_tasks=[0.5, 2.5], n_train_tasks=99, meta_batch_size=2)
    assert (model.train_tasks, model.test_tasks, model.n_train_tasks) == ([0.5, 2.5], [], 2)
    model.learn(1)
    assert model.replay_buffer.size(0) > 0 and model.replay_buffer.size(1) > 0
    with pytest.raises(ValueError, match="test_tasks needs train_tasks"):
        make(test_tasks=[1.0])


def test_a_task_env_with_a_test_range_gives_its_test_tasks_from_it():
    pytest.importorskip("mujoco")
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env("CheetahVelMediumTask-v0", n_envs=1)
    train, test = draw_task_split(env, 30, 10, seed=0)
    assert all(0.0 <= v <= 2.5 for v in train) and all(2.5 <= v <= 3.0 for v in test)
    assert env.get_attr("split")[0] == "train"


def test_an_env_without_the_task_interface_is_refused():
    with pytest.raises(TypeError, match=r"needs a task env .* lacks sample_task, set_task, task_descriptor"):
        PEARL("MlpPolicy", "Pendulum-v1", policy_kwargs=SMALL)
    with pytest.raises(ValueError, match="n_train_tasks must be an integer >= 1, got 0"):
        make(n_train_tasks=0)
    with pytest.raises(ValueError, match="nothing to collect"):
        make(prior_steps=0, extra_posterior_steps=0)


# -- losses --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def collected() -> PEARL:
    model = make()
    model.learn(200)
    return model


def _meta_batch(model: PEARL):
    rng = np.random.default_rng(1)
    tasks = np.arange(model.n_train_tasks)
    context = model.encoder_buffer.sample_context(tasks, model.context_batch_size, rng)
    return context, model.replay_buffer.sample(tasks, 8, rng)


@pytest.mark.parametrize("policy", ["MlpPolicy", "HyperPolicy"])
def test_the_encoder_learns_from_the_critics_loss_and_not_the_actors(policy, collected):
    model = collected if policy == "MlpPolicy" else make(policy).learn(200)
    context, batch = _meta_batch(model)
    model.policy.zero_grad()
    losses, actor_inputs = model._critic_losses(context, batch)
    model._actor_loss(*actor_inputs).backward(retain_graph=True)
    assert all(p.grad is None or not p.grad.any() for p in model.encoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.actor.parameters())
    losses["critic_loss"].backward()
    assert all(p.grad is not None and p.grad.any() for p in model.encoder.parameters())


def test_the_critic_target_is_sacs_with_the_reward_scale(collected):
    model = collected
    context, batch = _meta_batch(model)
    th.manual_seed(3)
    with th.no_grad():
        losses, (observation, *_rest) = model._critic_losses(context, batch)
    # Recompute by hand with the same z (same seed) and next actions.
    th.manual_seed(3)
    mean, variance = model.encoder(context)
    z = (mean + variance.sqrt() * th.randn_like(mean))[:, None].expand(-1, 8, -1).reshape(-1, model.latent_dim)
    flat = {k: v.reshape(-1, v.shape[-1]) for k, v in batch.items()}
    model.actor.get_action_dist_params({"latent": z, "obs": flat["observations"]})
    model.actor.action_dist.log_prob_from_params(*model.actor.get_action_dist_params(observation)[:2])
    following = {"latent": z.detach(), "obs": flat["next_observations"]}
    with th.no_grad():
        next_actions, next_log_prob = model.actor.action_log_prob(following)
        q1, q2 = model.critic_target(following, next_actions)
        target = 5.0 * flat["rewards"] + (1 - flat["dones"]) * 0.99 * (th.min(q1, q2) - next_log_prob[:, None])
        current = model.critic({"latent": z, "obs": flat["observations"]}, flat["actions"])
        expected = sum(((q - target) ** 2).mean() for q in current)
    assert float(losses["critic_loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(losses["kl_divergence"]) == pytest.approx(float(kl_to_standard_normal(mean, variance).sum()), rel=1e-5)


def test_a_training_step_moves_encoder_actor_and_critics(collected):
    model = collected
    before = {name: parameters(module) for name, module in
              (("encoder", model.encoder), ("actor", model.actor), ("critic", model.critic))}  # fmt: skip
    model.train(1, batch_size=16)
    for name, module in (("encoder", model.encoder), ("actor", model.actor), ("critic", model.critic)):
        assert not th.equal(before[name], parameters(module)), name


# -- schedule, budget, reproducibility -----------------------------------------------------------------------------


def test_the_collection_schedule_fills_the_buffers_as_the_reference():
    model = make(gradient_steps=1)
    model.learn(1)  # one iteration: 4 tasks x 40 initial steps, then 2 tasks x (20 prior + 20 extra posterior)
    sizes = [model.replay_buffer.size(t) for t in range(4)]
    assert sum(sizes) == 4 * 40 + 2 * 40 == model.num_timesteps
    encoder_sizes = [model.encoder_buffer.size(t) for t in range(4)]
    # A task collected on this iteration had its encoder buffer cleared and refilled by the 20 prior steps only.
    assert sorted(set(encoder_sizes)) in ([20, 40], [20])
    assert model.iterations == 1


def test_learn_counts_environment_steps_and_is_reproducible():
    # SB3 seeds torch's global generator when it builds a model: build and train one after the other.
    first = make().learn(250)
    second = make().learn(250)
    assert first.num_timesteps >= 250 and first.num_timesteps == second.num_timesteps
    assert th.equal(parameters(first.policy), parameters(second.policy))


# -- policies ------------------------------------------------------------------------------------------------------


def test_hyper_pearls_networks_are_the_references():
    model = make("HyperPolicy")
    assert isinstance(model.policy, HyperPEARLPolicy) and isinstance(model.critic, HyperContinuousCritic)
    q_net = model.critic.q_networks[0]
    obs_dim, latent_dim, action_dim = 2, 5, 2
    features = latent_dim + obs_dim
    assert q_net.primary_slices == [(latent_dim, features)]  # the state
    assert q_net.dynamic_slices == [(features, features + action_dim), (0, latent_dim)]  # [action, z]
    actor_net = model.actor.latent_pi
    assert actor_net.primary_slices == [(0, latent_dim)] and actor_net.dynamic_slices == [(latent_dim, features)]
    last = actor_net.network.layers[-1]
    weight = last.weight.weight.view(last.in_features, last.out_features, -1)
    assert weight[:, action_dim:].abs().max() <= LOG_STD_HEAD_INIT
    assert weight[:, :action_dim].abs().max() > LOG_STD_HEAD_INIT
    assert model.policy.critic_learning_rate == 5e-5


def test_a_policy_without_the_latent_observation_is_refused():
    with pytest.raises(ValueError, match="takes the observation space"):
        PEARLPolicy(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Box(-1, 1, (2,)), lambda _: 3e-4)


# -- save, load, evaluate ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["MlpPolicy", "HyperPolicy"])
def test_save_load_round_trip(policy, tmp_path, collected):
    model = collected if policy == "MlpPolicy" else make(policy).learn(200)
    model.save(tmp_path / "pearl.zip")
    loaded = PEARL.load(tmp_path / "pearl.zip", env=gym.make("PointRobotTask-v0"))
    assert type(loaded.policy) is type(model.policy)
    assert loaded.train_tasks == model.train_tasks and loaded.test_tasks == model.test_tasks
    assert th.equal(parameters(loaded.policy), parameters(model.policy))
    saved_state = model.policy.encoder.optimizer.state_dict()["state"]
    loaded_state = loaded.policy.encoder.optimizer.state_dict()["state"]
    assert th.equal(saved_state[0]["exp_avg"], loaded_state[0]["exp_avg"])
    observation = np.array([0.3, -0.2], np.float32)
    latent = model.sample_latent(None)
    loaded.latent = latent
    np.testing.assert_array_equal(model.predict(observation, deterministic=True)[0],
                                  loaded.predict(observation, deterministic=True)[0])  # fmt: skip
    steps = loaded.num_timesteps
    loaded.learn(100, reset_num_timesteps=False)  # trains on, first refilling the buffers it was saved without
    assert loaded.num_timesteps - steps >= 4 * loaded.initial_steps
    model.save_replay_buffer(tmp_path / "buffers.pkl")
    resumed = PEARL.load(tmp_path / "pearl.zip", env=gym.make("PointRobotTask-v0"))
    resumed.load_replay_buffer(tmp_path / "buffers.pkl")
    assert [resumed.replay_buffer.size(t) for t in range(4)] == [model.replay_buffer.size(t) for t in range(4)]
    steps = resumed.num_timesteps
    resumed.learn(1, reset_num_timesteps=False)  # one iteration, no initial collection
    assert resumed.num_timesteps - steps == 2 * 40


def test_evaluation_reports_each_episode_and_uses_the_posterior_after_exploration(collected, monkeypatch):
    contexts = []
    original = collected.sample_latent

    def spy(context=None):
        contexts.append(None if context is None else len(context))
        return original(context)

    monkeypatch.setattr(collected, "sample_latent", spy)
    result = evaluate_pearl(collected, "PointRobotTask-v0", n_episodes=3, exploration_episodes=1)
    assert result.inner_returns.shape == (2, 3)  # the 2 test tasks
    # Per task: the prior, then the posterior after each episode on all 20, 40, 60 transitions so far.
    assert contexts == [None, 20, 40, 60] * 2
    assert result.reference[0] == "Oracle" and result.inner_successes is not None
    again = evaluate_pearl(collected, "PointRobotTask-v0", n_episodes=3, exploration_episodes=1)
    np.testing.assert_array_equal(result.inner_returns, again.inner_returns)
    with pytest.raises(ValueError, match="exploration_episodes in"):
        evaluate_pearl(collected, "PointRobotTask-v0", n_episodes=2, exploration_episodes=3)


def test_the_primary_network_on_distinct_rows_gives_the_same_outputs_and_gradients():
    from sb3_hypernet.offpolicy.networks import HyperNetwork

    th.manual_seed(0)
    plain = HyperNetwork(3, 4, 2, hidden=[8], primary_widths=(16, 32), blocks_per_stage=1)
    distinct = HyperNetwork(3, 4, 2, hidden=[8], primary_widths=(16, 32), blocks_per_stage=1, distinct_primary=True)
    distinct.load_state_dict(plain.state_dict())
    z = th.randn(3, 3).repeat_interleave(5, dim=0)  # 3 tasks x 5 transitions
    x = th.randn(15, 4)
    out_plain, out_distinct = plain(z, x), distinct(z, x)
    assert th.allclose(out_plain, out_distinct, atol=1e-6)
    out_plain.square().sum().backward()
    out_distinct.square().sum().backward()
    for a, b in zip(plain.parameters(), distinct.parameters(), strict=True):
        assert th.allclose(a.grad, b.grad, atol=1e-5)
    z.requires_grad_(True)  # a z that needs its gradient takes the plain path
    distinct(z, x).sum().backward()
    assert z.grad is not None


def test_a_users_own_task_env_object_the_progress_bar_and_tensorboard_keys(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from envs.point_robot import PointRobot

    env = gym.wrappers.TimeLimit(PointRobot(dense=True), 20)  # an env object, not a registered id
    model = make(env=env, n_train_tasks=2, meta_batch_size=2, initial_steps=20, tasks_per_iteration=1,
                 tensorboard_log=str(tmp_path))  # fmt: skip
    model.learn(60, progress_bar=True)
    assert model.num_timesteps >= 60
    (events,) = tmp_path.rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events))
    accumulator.Reload()
    expected = {"train/critic_loss", "train/actor_loss", "train/kl_divergence", "train/z_variance", "train/iterations"}
    assert expected <= set(accumulator.Tags()["scalars"])


def test_rl_zoo3_trains_pearl_and_the_evaluator_runs_its_protocol(tmp_path, monkeypatch, capsys):
    import json
    import sys

    from sb3_hypernet import evaluate, train

    small = "dict(net_arch=[16], encoder_net_arch=[16])"
    argv = [
        "train", "--algo", "pearl", "--env", "PointRobotTask-v0", "--gym-packages", "envs", "--conf-file", "pearl",
        "-n", "200", "-f", str(tmp_path), "--seed", "0", "-params", "n_train_tasks:3",
        "n_test_tasks:2", "initial_steps:40", "gradient_steps:2", "batch_size:16", "context_batch_size:8",
        "meta_batch_size:2", f"policy_kwargs:{small}",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    train.main()
    path = tmp_path / "pearl" / "PointRobotTask-v0_1" / "PointRobotTask-v0.zip"
    assert PEARL.load(path).n_train_tasks == 3
    capsys.readouterr()
    evaluate.main(["--model", str(path), "--env", "PointRobotTask-v0", "--json", "--episodes", "2"])
    result = json.loads(capsys.readouterr().out)
    assert result["protocol"] == "pearl" and result["tasks"] == "test" and result["n_meta_episodes"] == 2
    assert len(result["inner_returns"]) == 2 and result["reference"]["label"] == "Oracle"
    with pytest.raises(SystemExit, match="PointRobot-v0 is a meta-episode env"):
        evaluate.main(["--model", str(path), "--env", "PointRobot-v0"])


PEARL_ENVS = ["CheetahVelTask-v0", "AntVelTask-v0", "CheetahDirTask-v0", "AntDirFwdBackTask-v0",
              "CheetahVelMediumTask-v0", "PointRobotTask-v0", "PointRobotDenseTask-v0"]  # fmt: skip


@pytest.mark.parametrize("config", ["pearl", "hyper_pearl"])
def test_the_zoo_entries_are_the_references_and_build(config):
    from sb3_hypernet.experiments.zoo import build_model, load_hyperparams

    entries = {env_id: load_hyperparams(config, env_id, "pearl") for env_id in PEARL_ENVS}
    velocity = entries["CheetahVelTask-v0"]
    assert (velocity["n_train_tasks"], velocity["n_test_tasks"], velocity["meta_batch_size"]) == (100, 30, 16)
    assert (velocity["prior_steps"], velocity["extra_posterior_steps"], velocity["gradient_steps"]) == (400, 600, 2000)
    assert (velocity["reward_scale"], velocity["kl_weight"], velocity["context_batch_size"]) == (5.0, 0.1, 100)
    assert velocity["learning_rate"] == (1e-4 if config == "hyper_pearl" else 3e-4)
    assert velocity["policy"] == ("HyperPolicy" if config == "hyper_pearl" else "MlpPolicy")
    assert entries["CheetahDirTask-v0"]["train_tasks"] == [1.0, -1.0]
    assert entries["AntDirFwdBackTask-v0"]["train_tasks"] == [0.0, pytest.approx(math.pi)]
    model, _ = build_model(config, "PointRobotTask-v0", algo="pearl", seed=0)
    assert (model.n_train_tasks, len(model.test_tasks), model.reward_scale, model.gamma) == (80, 20, 100.0, 0.9)


def test_the_launcher_turns_rl_zoo3_evaluation_off_and_refuses_to_score_by_it():
    from sb3_hypernet.experiments.zoo import use_meta_algorithm_evaluation

    for algo in ("pearl", "maml"):
        argv = ["--algo", algo, "--env", "PointRobotTask-v0"]
        assert use_meta_algorithm_evaluation(argv) == [*argv, "--eval-freq", "-1"]
        assert use_meta_algorithm_evaluation([*argv, "--eval-freq", "-1"]) == [*argv, "--eval-freq", "-1"]
        with pytest.raises(SystemExit, match=f"--eval-freq: rl_zoo3's EvalCallback cannot evaluate --algo {algo}"):
            use_meta_algorithm_evaluation([*argv, "--eval-freq", "5000"])
        with pytest.raises(SystemExit, match=f"-optimize cannot tune --algo {algo}"):
            use_meta_algorithm_evaluation([*argv, "-optimize"])
    other = ["--algo", "meta_ppo_lstm", "--eval-freq", "5000", "-optimize"]
    assert use_meta_algorithm_evaluation(other) == other
