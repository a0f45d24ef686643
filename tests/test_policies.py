"""RNN, RNN+S and RNN+HN policies: shapes, gradients, one-call sequences, state handling, save/load, errors."""

from __future__ import annotations

import inspect

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.type_aliases import RNNStates
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import obs_as_tensor

import envs  # noqa: F401
import sb3_hypernet
from sb3_hypernet import MetaEpisodeWrapper, RNNFiLMPolicy, RNNHNPolicy, RNNPolicy, RNNSPolicy, TaskDistribution
from sb3_hypernet.common.generated_layers import GeneratedLinear
from sb3_hypernet.common.heads import FiLMHead, HeadSpec, HyperNetworkHead, RNNHead, RNNSHead, RunningNormalizer
from sb3_hypernet.common.policy_keywords import constructor_keywords
from sb3_hypernet.common.recurrent import HistoryEncoder, process_sequence

POLICIES = [RNNPolicy, RNNSPolicy, RNNHNPolicy, RNNFiLMPolicy]
SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], latent_embedding_dim=4, obs_embedding_dim=8)


def small_kwargs(policy_class: type) -> dict:
    kwargs = dict(SMALL)
    if policy_class is not RNNPolicy:
        kwargs["state_embedding_dim"] = 12
    return kwargs


class PointGoal(gym.Env, TaskDistribution):
    """A 2-D point pushed by Box actions; reward is minus the distance to a goal (the task)."""

    def __init__(self):
        self.observation_space = spaces.Box(-10.0, 10.0, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.task_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.goal = np.zeros(2, np.float32)
        self.pos = np.zeros(2, np.float32)

    def sample_task(self, rng):
        return rng.uniform(-1.0, 1.0, 2).astype(np.float32)

    def set_task(self, task):
        self.goal = np.asarray(task, np.float32)

    def task_descriptor(self):
        return self.goal

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = np.zeros(2, np.float32)
        return self.pos.copy(), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.1 * np.asarray(action, np.float32), -10, 10)
        return self.pos.copy(), -float(np.linalg.norm(self.pos - self.goal)), False, False, {}


def point_goal_env(n_episodes: int = 2) -> gym.Env:
    return MetaEpisodeWrapper(gym.wrappers.TimeLimit(PointGoal(), 5), n_episodes=n_episodes)


def make_model(policy_class: type, action_kind: str = "discrete", n_envs: int = 2, **kwargs) -> RecurrentPPO:
    if action_kind == "discrete":
        env = make_vec_env("GridNavi-v0", n_envs=n_envs, seed=0)
    else:
        env = make_vec_env(point_goal_env, n_envs=n_envs, seed=0)
    defaults = dict(n_steps=30, batch_size=20, n_epochs=1, seed=0, policy_kwargs=small_kwargs(policy_class))
    return RecurrentPPO(policy_class, env, **{**defaults, **kwargs})


def rollout_batch(model: RecurrentPPO, steps: int = 7):
    """Observations of ``steps`` rollout steps, as sequences (n_envs, steps) flattened env-major."""
    env = model.get_env()
    obs = env.reset()
    batch = []
    for _ in range(steps):
        batch.append(obs)
        obs, *_ = env.step(np.array([env.action_space.sample() for _ in range(env.num_envs)]))
    return {k: np.stack([o[k] for o in batch], axis=1).reshape(-1, *batch[0][k].shape[1:]) for k in batch[0]}


@pytest.mark.parametrize("policy_class", POLICIES)
@pytest.mark.parametrize("action_kind", ["discrete", "box"])
def test_shapes_and_gradients(policy_class, action_kind):
    model = make_model(policy_class, action_kind)
    policy = model.policy
    n_envs, steps = 2, 7
    obs = obs_as_tensor(rollout_batch(model, steps), "cpu")
    state = th.zeros(1, n_envs, 16)
    starts = th.zeros(n_envs * steps)
    starts[::steps] = 1.0
    actions = th.as_tensor(np.array([model.action_space.sample() for _ in range(n_envs * steps)]))
    values, log_prob, entropy = policy.evaluate_actions(obs, actions, RNNStates((state, state), (state, state)), starts)
    assert values.shape == (n_envs * steps, 1)
    assert log_prob.shape == entropy.shape == (n_envs * steps,)
    (values.sum() + log_prob.sum() + entropy.sum()).backward()
    for name, param in policy.named_parameters():
        assert param.grad is not None, name
        assert th.isfinite(param.grad).all(), name
    gru_grad = policy.lstm_actor.gru.weight_hh_l0.grad.abs().sum().item()
    first_layer = getattr(policy.mlp_extractor, "actor", None) and policy.mlp_extractor.actor.layers[0]
    if policy_class is RNNHNPolicy:
        # Bias-HyperInit: the generated networks ignore the latent at init, so no gradient reaches the GRU yet...
        assert gru_grad == 0.0
        assert first_layer.weight.grad[:, :, :-1].abs().sum() > 0  # ...but the heads' latent weights learn
    elif policy_class is RNNFiLMPolicy:
        assert gru_grad == 0.0  # scale 1, shift 0 for every latent at init
        assert first_layer.film.weight.grad.abs().sum() > 0
    else:
        assert gru_grad > 0.0


def test_hypernetwork_learns_to_use_the_latent():
    # ...but one update makes the generated networks depend on the latent, and the GRU starts to learn.
    model = make_model(RNNHNPolicy, learning_rate=1e-2)
    policy = model.policy
    obs = obs_as_tensor(rollout_batch(model, 1), "cpu")
    histories = [th.zeros(1, 2, 16), th.randn(1, 2, 16, generator=th.Generator().manual_seed(0))]

    def logits():
        policy.set_training_mode(False)
        return [policy.get_distribution(obs, (h, h), th.zeros(2))[0].distribution.logits for h in histories]

    assert th.equal(*logits())  # Bias-HyperInit: the same network whatever the history
    gru_before = policy.lstm_actor.gru.weight_hh_l0.detach().clone()
    model.learn(120)
    assert not th.allclose(*logits())  # the generated network now depends on the history
    assert not th.equal(gru_before, policy.lstm_actor.gru.weight_hh_l0)  # a gradient reached the GRU


@pytest.mark.parametrize("policy_class", POLICIES)
@pytest.mark.parametrize("action_kind", ["discrete", "box"])
def test_actions_are_the_mode_of_the_head_output_on_each_action_space(policy_class, action_kind):
    model = make_model(policy_class, action_kind, n_envs=3)
    policy = model.policy
    obs = model.get_env().reset()
    actions, _ = model.predict(obs, episode_start=np.ones(3, bool), deterministic=True)
    # The actor's output computed from its parts: encoder -> head -> SB3's action layer (identity if generated).
    with th.no_grad():
        head_inputs, _ = policy._encode(policy.obs_to_tensor(obs)[0], (th.zeros(1, 3, 16),) * 2, th.ones(3))
        output = policy.action_net(policy.mlp_extractor.forward_actor(*head_inputs)).numpy()
    if action_kind == "box":
        assert actions.shape == (3, 2) and actions.dtype == np.float32
        # Gaussian: the deterministic action is the mean, clipped to the bounds by predict.
        np.testing.assert_allclose(actions, np.clip(output, -1.0, 1.0), atol=1e-6)
        np.testing.assert_array_equal(policy.log_std.detach().numpy(), [0.0, 0.0])  # log_std_init, not generated
    else:
        assert actions.shape == (3,) and actions.dtype.kind == "i"
        assert output.shape == (3, 5)
        np.testing.assert_array_equal(actions, output.argmax(axis=1))  # Categorical: the most likely action


def test_bias_hyper_init_generates_the_same_network_for_every_latent():
    layer = GeneratedLinear(6, 4, cond_features=3, role="hidden")
    weights, biases = layer.generate(th.randn(50, 3) * 10)
    assert th.allclose(weights, weights[0].expand_as(weights))
    assert th.equal(biases, th.zeros_like(biases))
    # normc gain 5/3: every generated row has norm 5/3
    assert th.allclose(weights[0].norm(dim=1), th.full((4,), 5 / 3), atol=1e-5)

    model = make_model(RNNHNPolicy)
    head = model.policy.mlp_extractor
    state = th.randn(1, 2).expand(64, 2)
    logits, values = head(th.randn(64, head.spec.condition_dim) * 5, state)
    assert th.allclose(logits, logits[0].expand_as(logits), atol=1e-6)
    assert th.allclose(values, values[0].expand_as(values), atol=1e-6)


def test_generated_layer_equals_materialised_weights():
    layer = GeneratedLinear(5, 3, cond_features=4)
    with th.no_grad():
        layer.weight.normal_()
    x, z = th.randn(8, 5), th.randn(8, 4)
    weights, biases = layer.generate(z)
    expected = th.bmm(weights, x.unsqueeze(-1)).squeeze(-1) + biases
    assert th.allclose(layer(x, z), expected, atol=1e-5)


def test_one_call_sequence_equals_step_by_step():
    th.manual_seed(0)
    encoder = HistoryEncoder(obs_dim=2, action_dim=5, hidden_size=8, latent_dim=3)
    n_seq, length = 3, 6
    features = th.randn(n_seq * length, encoder.input_size)
    starts = th.zeros(n_seq * length)
    starts[length] = 1.0  # the second sequence starts a new episode
    h0 = th.randn(1, n_seq, 8)
    output, (h, _) = process_sequence(features, (h0, h0), starts, encoder)

    steps = features.reshape(n_seq, length, -1)
    state = h0 * (1 - starts.reshape(n_seq, length)[:, 0]).view(1, n_seq, 1)
    expected = []
    for t in range(length):
        out, (state, _) = encoder(steps[:, t].unsqueeze(0), (state, state))
        expected.append(out[0])
    expected = th.stack(expected, dim=1).reshape(n_seq * length, -1)
    assert th.allclose(output, expected, atol=1e-6)
    assert th.allclose(h, state, atol=1e-6)


def test_episode_start_inside_a_sequence_is_rejected():
    encoder = HistoryEncoder(obs_dim=2, action_dim=5, hidden_size=8, latent_dim=3)
    starts = th.zeros(6)
    starts[2] = 1.0
    h0 = th.zeros(1, 1, 8)
    with pytest.raises(ValueError, match="episode start inside a sequence"):
        process_sequence(th.randn(6, encoder.input_size), (h0, h0), starts, encoder)


@pytest.mark.parametrize("policy_class", POLICIES)
def test_training_sequences_reproduce_rollout_log_probs_and_values(policy_class):
    # n_steps=90 puts meta-episode boundaries (every 60 steps) inside the rollout and cuts sequences there.
    model = make_model(policy_class, n_steps=90, batch_size=45, learning_rate=3e-3)
    model.learn(180)  # the state normaliser now holds statistics of earlier rollouts
    from stable_baselines3.common.callbacks import CallbackList

    callback = CallbackList([])
    callback.init_callback(model)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    model.policy.set_training_mode(True)  # what train() does first: must not change the policy
    n_checked = 0
    for batch in model.rollout_buffer.get(batch_size=45):
        actions = batch.actions.long().flatten() if isinstance(model.action_space, spaces.Discrete) else batch.actions
        with th.no_grad():
            values, log_prob, _ = model.policy.evaluate_actions(
                batch.observations, actions, batch.lstm_states, batch.episode_starts
            )
        mask = batch.mask > 0
        assert th.allclose(log_prob[mask], batch.old_log_prob[mask], atol=1e-5)
        assert th.allclose(values.flatten()[mask], batch.old_values[mask], atol=1e-5)
        n_checked += int(mask.sum())
    assert n_checked == 90 * 2


def test_recurrent_state_is_carried_across_inner_episodes_and_reset_between_meta_episodes():
    model = make_model(RNNHNPolicy, n_steps=130, batch_size=130)
    model.learn(260)
    from stable_baselines3.common.callbacks import CallbackList

    callback = CallbackList([])
    callback.init_callback(model)
    model._last_obs = model.get_env().reset()
    model._last_episode_starts = np.ones(2, bool)
    model.collect_rollouts(model.get_env(), callback, model.rollout_buffer, 130)
    buffer = model.rollout_buffer
    starts = buffer.episode_starts.reshape(130, 2)
    # SB3 sees only meta-episodes: episode starts at steps 0, 60, 120; inner boundaries (15, 30, 45) are not starts.
    np.testing.assert_array_equal(np.flatnonzero(starts[:, 0]), [0, 60, 120])
    episode_done = buffer.observations["episode_done"].reshape(130, 2)
    np.testing.assert_array_equal(np.flatnonzero(episode_done[:, 0]), [15, 30, 45, 75, 90, 105])

    # The buffer holds the state each step started from. Step t + 1 must start from the state the encoder produces
    # on step t from the state step t started with (carried), or from zeros at a meta-episode start (reset).
    policy = model.policy
    hidden = th.as_tensor(buffer.hidden_states_pi[:, 0, 0])  # (steps, hidden) of env 0
    observations = {key: th.as_tensor(value[:, 0]) for key, value in buffer.observations.items()}
    features = policy.extract_features(observations, policy.features_extractor)

    def next_state(t: int, state: th.Tensor) -> th.Tensor:
        with th.no_grad():
            _, (h, _) = policy.lstm_actor(features[t].view(1, 1, -1), (state.view(1, 1, -1),) * 2)
        return h.view(-1)

    zero = th.zeros_like(hidden[0])
    for t in (15, 30, 44, 45):  # the first steps of inner episodes 2-4, and a step inside one
        assert th.allclose(hidden[t + 1], next_state(t, hidden[t]), atol=1e-6), t
        assert not th.allclose(hidden[t + 1], next_state(t, zero), atol=1e-4), t
    for t in (60, 120):  # the first steps of new meta-episodes
        assert th.allclose(hidden[t + 1], next_state(t, zero), atol=1e-6), t
        assert not th.allclose(hidden[t + 1], next_state(t, hidden[t]), atol=1e-4), t


@pytest.mark.parametrize("policy_class", POLICIES)
def test_save_load_round_trip_gives_identical_actions(policy_class, tmp_path):
    model = make_model(policy_class, learning_rate=3e-3)
    model.learn(120)
    obs = rollout_batch(model, 1)

    def act_sequence(predictor):
        state, actions = None, []
        starts = np.ones(2, bool)
        for _ in range(5):
            action, state = predictor.predict(obs, state=state, episode_start=starts, deterministic=True)
            actions.append(action)
            starts = np.zeros(2, bool)
        return np.array(actions), state

    expected, expected_state = act_sequence(model)
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip")
    assert type(loaded.policy) is policy_class
    actions, state = act_sequence(loaded)
    np.testing.assert_array_equal(actions, expected)
    np.testing.assert_allclose(state[0], expected_state[0], atol=1e-6)

    model.policy.save(str(tmp_path / "policy.pth"))
    policy = policy_class.load(str(tmp_path / "policy.pth"))
    np.testing.assert_array_equal(act_sequence(policy)[0], expected)
    if policy_class is not RNNPolicy:
        normalizer = policy.mlp_extractor.state_normalizer
        assert normalizer.count > 0
        assert th.equal(normalizer.mean, model.policy.mlp_extractor.state_normalizer.mean)


def test_loading_a_policy_file_of_another_class_is_a_clear_error(tmp_path):
    make_model(RNNPolicy).policy.save(str(tmp_path / "rnn.pth"))
    with pytest.raises(ValueError, match="holds a RNNPolicy, not a RNNHNPolicy"):
        RNNHNPolicy.load(str(tmp_path / "rnn.pth"))


def test_same_seed_same_training_on_cpu():
    params = []
    for _ in range(2):
        model = make_model(RNNHNPolicy, learning_rate=3e-3)
        model.learn(120)
        params.append(th.cat([p.detach().flatten() for p in model.policy.parameters()]))
    assert th.equal(params[0], params[1])


def test_running_normalizer_commits_only_on_request():
    normalizer = RunningNormalizer(3)
    batches = [th.randn(50, 3) * 4 + 2 for _ in range(3)]
    normalizer.observe(batches[0])
    assert th.equal(normalizer.mean, th.zeros(3))  # pending until commit
    normalizer.commit()
    for batch in batches[1:]:
        normalizer.observe(batch)
    normalizer.commit()
    data = th.cat(batches).double()
    assert th.allclose(normalizer.mean.double(), data.mean(0), atol=1e-5)
    assert th.allclose(normalizer.var.double(), data.var(0, unbiased=False), atol=1e-4)
    assert normalizer.count.item() == 150


def test_unknown_policy_kwarg_names_the_problem():
    with pytest.raises(TypeError, match=r"'latent_dims' \(did you mean 'latent_dim'\?\)"):
        make_model(RNNHNPolicy, policy_kwargs=dict(latent_dims=4))
    with pytest.raises(TypeError, match="state_embedding_dim"):
        make_model(RNNPolicy, policy_kwargs=dict(state_embedding_dim=4))


def test_wrong_observation_space_names_the_problem():
    with pytest.raises(ValueError, match="MetaEpisodeWrapper"):
        RecurrentPPO(RNNHNPolicy, "CartPole-v1")
    with pytest.raises(ValueError, match="Missing: prev_action"):
        RNNPolicy(spaces.Dict({"obs": spaces.Box(0, 1, (2,))}), spaces.Discrete(2), lambda _: 1e-3)


def test_unsupported_action_space_and_sde_are_rejected():
    obs_space = point_goal_env().observation_space
    with pytest.raises(ValueError, match="Discrete and Box"):
        RNNPolicy(obs_space, spaces.MultiDiscrete([2, 3]), lambda _: 1e-3)
    with pytest.raises(ValueError, match="gSDE"):
        RNNPolicy(obs_space, spaces.Box(-1, 1, (2,)), lambda _: 1e-3, use_sde=True)


def test_task_key_is_not_a_policy_input():
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0, env_kwargs=dict(expose_task=True))
    model = RecurrentPPO(RNNHNPolicy, env, n_steps=30, batch_size=20, seed=0, policy_kwargs=small_kwargs(RNNHNPolicy))
    obs = env.reset()
    action, _ = model.predict(obs, deterministic=True)
    changed = dict(obs, task=obs["task"] + 3.0)
    np.testing.assert_array_equal(model.predict(changed, deterministic=True)[0], action)


@pytest.mark.parametrize("policy_class", [RNNSPolicy, RNNHNPolicy])
def test_saving_straight_after_learn_keeps_predictions(policy_class, tmp_path):
    # The last rollout's state statistics are still pending after learn(); they must travel with the file.
    model = make_model(policy_class, learning_rate=3e-3)
    model.learn(120)
    model.save(tmp_path / "model.zip")
    loaded = RecurrentPPO.load(tmp_path / "model.zip")
    obs = rollout_batch(model, 1)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    assert th.equal(loaded.policy.mlp_extractor.state_normalizer.mean, model.policy.mlp_extractor.state_normalizer.mean)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(latent_embedding_dim=0), "latent_embedding_dim must be an integer >= 1"),
        (dict(state_embedding_dim=0), "state_embedding_dim must be an integer >= 1"),
        (dict(net_arch=[256, "128"]), "net_arch entries must be an integer >= 1"),
        (dict(hypernet_layers=64), "hypernet_layers must be a list"),
        (dict(reward_embedding_dim=-1), "reward_embedding_dim must be an integer >= 0"),
    ],
)
def test_invalid_sizes_are_named_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_model(RNNHNPolicy, policy_kwargs={**small_kwargs(RNNHNPolicy), **kwargs})


def test_plain_ppo_is_a_clear_error():
    from stable_baselines3 import PPO

    model = PPO(RNNHNPolicy, make_vec_env("GridNavi-v0", n_envs=1), n_steps=8, batch_size=8,
                policy_kwargs=small_kwargs(RNNHNPolicy))  # fmt: skip
    with pytest.raises(TypeError, match="RecurrentPPO"):
        model.learn(8)


@pytest.mark.parametrize(
    ("keyword", "hint"),
    [
        ("lstm_hidden_size", "use 'gru_hidden_size'"),
        ("n_lstm_layers", "use 'n_gru_layers'"),
        ("shared_lstm", "always shared by actor and critic"),
        ("enable_critic_lstm", "always shared by actor and critic"),
        ("ortho_init", "reference implementation"),
        ("features_extractor_class", "fixed per-input embeddings"),
    ],
)
def test_recurrent_ppo_keywords_are_mapped_to_ours_in_the_error(keyword, hint):
    with pytest.raises(TypeError) as error:
        make_model(RNNHNPolicy, policy_kwargs={**small_kwargs(RNNHNPolicy), keyword: 1})
    message = str(error.value)
    explanation = message.split(f"{keyword!r} (")[1].split(")")[0]
    assert hint in explanation
    assert f"did you mean {keyword!r}" not in message
    assert keyword not in message.split("It accepts: ")[1]


@pytest.mark.parametrize("policy_class", POLICIES)
def test_unknown_keyword_error_lists_exactly_the_accepted_keywords(policy_class):
    with pytest.raises(TypeError) as error:
        make_model(policy_class, policy_kwargs={**small_kwargs(policy_class), "no_such_keyword": 1})
    listed = set(str(error.value).split("It accepts: ")[1].rstrip(".").split(", "))
    common = {
        "net_arch", "activation_fn", "gru_hidden_size", "n_gru_layers", "latent_dim", "obs_embedding_dim",
        "action_embedding_dim", "reward_embedding_dim", "latent_embedding_dim", "log_std_init", "use_sde",
        "optimizer_class", "optimizer_kwargs", "task_inference_weight", "image_embedding",
    }  # fmt: skip
    per_head = {
        RNNPolicy: set(),
        RNNSPolicy: {"state_embedding_dim", "normalize_state"},
        RNNHNPolicy: {"state_embedding_dim", "normalize_state", "hyper_init", "hypernet_layers", "hypernet_mode"},
        RNNFiLMPolicy: {"state_embedding_dim", "normalize_state", "hyper_init", "hypernet_layers"},
    }
    assert listed == common | per_head[policy_class]


@pytest.mark.parametrize("head_class", [RNNHead, RNNSHead, HyperNetworkHead, FiLMHead])
@pytest.mark.parametrize("action_kind", ["categorical", "gaussian"])
def test_heads_are_built_from_a_spec_and_condition_on_what_they_are_given(head_class, action_kind):
    spec = HeadSpec(
        condition_dim=7, state_dim=3, action_dim=4, action_kind=action_kind, net_arch={"pi": [8], "vf": [6]}
    )
    head = head_class(spec, latent_embedding_dim=5)
    condition, state = th.randn(11, 7), th.randn(11, 3)
    actor, critic = head(condition, state)
    assert actor.shape == (11, head.latent_dim_pi) and critic.shape == (11, head.latent_dim_vf)
    assert head.latent_embedding[0].in_features == 7
    assert (head.latent_dim_pi, head.latent_dim_vf) == ((4, 1) if head.generates_outputs else (8, 6))
    reads_state = head_class is not RNNHead
    changed_state = head.forward_actor(condition, state + 1.0)
    assert (not th.allclose(changed_state, actor)) == reads_state


def test_head_spec_rejects_an_unknown_action_kind():
    with pytest.raises(ValueError, match="action_kind"):
        HeadSpec(condition_dim=2, state_dim=2, action_dim=2, action_kind="beta")


def test_a_policy_chooses_what_its_head_conditions_on():
    class ConstantConditionPolicy(RNNHNPolicy):
        def _head_inputs(self, obs, features, latent):
            condition, state = super()._head_inputs(obs, features, latent)
            return th.zeros_like(condition), state

    logits = {}
    for policy_class in (RNNHNPolicy, ConstantConditionPolicy):
        policy = make_model(policy_class, policy_kwargs={**small_kwargs(RNNHNPolicy), "hyper_init": "kaiming"}).policy
        obs = obs_as_tensor(rollout_batch(make_model(RNNPolicy), 1), "cpu")
        # Same current observations, two different histories (recurrent states).
        states = [th.zeros(1, 2, 16), th.randn(1, 2, 16, generator=th.Generator().manual_seed(3))]
        logits[policy_class] = [
            policy.get_distribution(obs, (h, h), th.zeros(2))[0].distribution.logits for h in states
        ]
    assert not th.allclose(*logits[RNNHNPolicy])  # the GRU latent reaches the hypernetwork
    assert th.allclose(*logits[ConstantConditionPolicy])  # the override replaced it


@pytest.mark.parametrize(
    "policy_class",
    [
        sb3_hypernet.RNNPolicy,
        sb3_hypernet.RNNSPolicy,
        sb3_hypernet.RNNHNPolicy,
        sb3_hypernet.RNNFiLMPolicy,
        sb3_hypernet.TINaivePolicy,
        sb3_hypernet.TIPlusPlusHNPolicy,
        sb3_hypernet.BIPlusPlusHNPolicy,
        sb3_hypernet.MultiTaskHNPolicy,
        sb3_hypernet.VIHNPolicy,
    ],
)
def test_the_signature_shows_exactly_the_keywords_the_policy_takes(policy_class):
    shown = set(inspect.signature(policy_class).parameters)
    taken = constructor_keywords(policy_class, stop_at=sb3_hypernet.MetaRecurrentPolicy)
    taken |= constructor_keywords(policy_class.head_class) - {"spec"}
    assert shown == taken
    if "hyper_init" in taken:
        assert inspect.signature(policy_class).parameters["hyper_init"].default == "bias"
