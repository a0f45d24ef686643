"""End-to-end + task inference (NeurIPS 2023, appendix 8.3): the ``task_inference_weight`` option of the end-to-end
policies. The loss against a hand computation, its gradient reaching the shared encoder, masking, the acting
policy's independence of the task entry, errors, training with MetaRecurrentPPO and save/load."""

from __future__ import annotations

import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from test_task_inference import LENGTH, N_SEQ, sequences

import envs  # noqa: F401
from sb3_hypernet import MetaRecurrentPPO, RNNHNPolicy, RNNPolicy, RNNSPolicy, TINaivePolicy
from sb3_hypernet.meta_ppo.loading import load_meta_model

SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], latent_dim=3)
HN_SMALL = dict(SMALL, state_embedding_dim=12)


def make(policy=RNNHNPolicy, weight: float = 0.5, expose_task: bool = True, algo=MetaRecurrentPPO, **kwargs):
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0, env_kwargs=dict(expose_task=expose_task))
    small = SMALL if policy is RNNPolicy else HN_SMALL
    policy_kwargs = dict(small, task_inference_weight=weight)
    defaults = dict(n_steps=60, batch_size=40, n_epochs=2, seed=0, learning_rate=1e-3, policy_kwargs=policy_kwargs)
    return algo(policy, env, **{**defaults, **kwargs})


def batch(model):
    """RecurrentPPO-style sequences of GridNavi steps (test_task_inference's), with integer actions."""
    obs, actions, states, starts = sequences(model)
    return obs, actions.long(), states, starts


@pytest.mark.parametrize("policy", [RNNPolicy, RNNSPolicy, RNNHNPolicy])
def test_the_loss_is_the_weighted_squared_error_of_the_latent_readout(policy):
    model = make(policy, weight=0.25)
    obs, actions, states, starts = batch(model)
    mask = th.ones(N_SEQ * LENGTH, dtype=th.bool)
    *_, losses = model.policy.evaluate_actions_and_losses(obs, actions, states, starts, mask)
    assert set(losses) == {"task_inference"}

    _, latent, _ = model.policy._encode_latent(obs, states.pi, starts)
    readout = model.policy.task_readout
    assert readout.in_features == 2 * 3 and readout.out_features == 2  # latent -> GridNavi's (x, y) goal
    by_hand = latent.detach() @ readout.weight.detach().T + readout.bias.detach() - obs["task"].float()
    expected = 0.25 * by_hand.pow(2).sum(-1).mean()
    assert losses["task_inference"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_the_task_inference_gradient_reaches_the_shared_encoder_but_not_the_actor_critic():
    """Appendix 8.3: no bottleneck and no stop-gradient, the encoder is trained by both objectives."""
    model = make()
    policy = model.policy
    obs, actions, states, starts = batch(model)
    *_, losses = policy.evaluate_actions_and_losses(obs, actions, states, starts, th.ones(N_SEQ * LENGTH, dtype=bool))
    groups = {"encoder": policy.lstm_actor, "readout": policy.task_readout, "head": policy.mlp_extractor}
    parameters = [p for module in groups.values() for p in module.parameters()]
    grads = th.autograd.grad(losses["task_inference"], parameters, allow_unused=True)
    norms, i = {}, 0
    for name, module in groups.items():
        n = len(list(module.parameters()))
        norms[name] = sum(0.0 if g is None else g.norm().item() for g in grads[i : i + n])
        i += n
    assert norms["encoder"] > 0 and norms["readout"] > 0
    assert norms["head"] == 0
    # The readout belongs to the encoder's clipping group and to the policy's own optimiser.
    assert {id(p) for p in policy.task_readout.parameters()} <= {id(p) for p in policy.gradient_groups()["encoder"]}
    optimised = {id(p) for group in policy.optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in policy.task_readout.parameters()} <= optimised
    assert model.inference_optimizer is None


def test_padded_steps_do_not_count():
    model = make()
    obs, actions, states, starts = batch(model)
    mask = th.ones(N_SEQ * LENGTH, dtype=th.bool)
    mask[4:6] = False
    *_, masked = model.policy.evaluate_actions_and_losses(obs, actions, states, starts, mask)
    changed = {key: value.clone() for key, value in obs.items()}
    changed["task"][4:6] += 100.0  # labels of padded steps only
    *_, again = model.policy.evaluate_actions_and_losses(changed, actions, states, starts, mask)
    assert masked["task_inference"].item() == pytest.approx(again["task_inference"].item())
    *_, unmasked = model.policy.evaluate_actions_and_losses(changed, actions, states, starts, th.ones_like(mask))
    assert unmasked["task_inference"].item() > 10 * masked["task_inference"].item()


def test_the_acting_policy_does_not_read_the_task_entry():
    model = make()
    obs, actions, states, starts = batch(model)
    changed = {key: value.clone() for key, value in obs.items()}
    changed["task"] = th.flip(changed["task"], dims=[0]) + 3.0
    mask = th.ones(N_SEQ * LENGTH, dtype=th.bool)
    first = model.policy.evaluate_actions_and_losses(obs, actions, states, starts, mask)
    second = model.policy.evaluate_actions_and_losses(changed, actions, states, starts, mask)
    for a, b in zip(first[:3], second[:3], strict=True):
        assert th.equal(a, b)
    assert first[3]["task_inference"].item() != second[3]["task_inference"].item()


def test_weight_zero_is_the_end_to_end_policy_unchanged():
    with_weight = make(weight=0.0).policy
    assert not hasattr(with_weight, "task_readout")
    obs, actions, states, starts = batch(make(weight=0.0))
    *_, losses = with_weight.evaluate_actions_and_losses(obs, actions, states, starts, th.ones(N_SEQ * LENGTH) > 0)
    assert losses == {}
    # Same seed, same parameters as the policy built without the keyword.
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0)
    plain = RecurrentPPO(RNNHNPolicy, env, n_steps=60, batch_size=40, seed=0, policy_kwargs=HN_SMALL).policy
    for (name, a), (_, b) in zip(plain.state_dict().items(), with_weight.state_dict().items(), strict=True):
        assert th.equal(a, b), name


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="expose_task"):
        make(expose_task=False)
    with pytest.raises(ValueError, match="task_inference_weight must be >= 0"):
        make(weight=-0.1)
    with pytest.raises(ValueError, match="finite"):
        make(weight=float("nan"))
    with pytest.raises(ValueError, match=r"appendix 8\.3"):
        make(TINaivePolicy, weight=0.1, policy_kwargs=dict(HN_SMALL, decoder_layers=[8], task_inference_weight=0.1))
    model = make(algo=RecurrentPPO)
    with pytest.raises(TypeError, match="MetaRecurrentPPO"):
        model.learn(120)


def test_training_lowers_the_task_inference_loss_and_saves_and_loads(tmp_path):
    model = make(RNNSPolicy, weight=1.0, n_steps=120, batch_size=60, n_epochs=4, learning_rate=3e-3)
    model.learn(240)
    first = model.logger.name_to_value["train/aux_task_inference"]
    for _ in range(10):  # more updates on the same rollout: the readout and encoder fit its labels
        model.train()
    assert model.logger.name_to_value["train/aux_task_inference"] < 0.5 * first

    obs, actions, states, starts = batch(model)
    mask = th.ones(N_SEQ * LENGTH, dtype=th.bool)
    model.save(tmp_path / "model.zip")
    loaded = load_meta_model(tmp_path / "model.zip")
    assert isinstance(loaded, MetaRecurrentPPO) and loaded.policy._task_inference_weight == 1.0
    reloaded = loaded.policy.evaluate_actions_and_losses(obs, actions, states, starts, mask)
    original = model.policy.evaluate_actions_and_losses(obs, actions, states, starts, mask)
    for a, b in zip(original[:3], reloaded[:3], strict=True):
        assert th.equal(a, b)
    assert original[3]["task_inference"].item() == reloaded[3]["task_inference"].item()
