"""MetaRecurrentPPO: RecurrentPPO's update by default, the reference's value loss, per-module gradient clipping,
auxiliary losses on their own optimiser, save/load, and errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure
from stable_baselines3.common.save_util import load_from_zip_file
from torch import nn

import envs  # noqa: F401
from sb3_hypernet import MetaRecurrentPPO, RNNHNPolicy, RNNPolicy
from sb3_hypernet.meta_ppo import algorithm_of, load_meta_model, meta_ppo
from sb3_hypernet.meta_ppo.meta_ppo import clipped_huber_value_loss

SMALL = dict(gru_hidden_size=16, net_arch=[16, 8], latent_embedding_dim=4)
PPO = dict(n_steps=60, batch_size=40, n_epochs=2, seed=0, learning_rate=3e-3)


def make(algo: type = MetaRecurrentPPO, policy=RNNPolicy, expose_task: bool = False, **kwargs):
    env = make_vec_env("GridNavi-v0", n_envs=2, seed=0, env_kwargs=dict(expose_task=expose_task))
    policy_kwargs = kwargs.pop("policy_kwargs", dict(SMALL))
    return algo(policy, env, policy_kwargs=policy_kwargs, **{**PPO, **kwargs})


def parameters(model) -> th.Tensor:
    return th.cat([p.detach().flatten() for p in model.policy.parameters()])


@pytest.mark.parametrize("policy", [RNNPolicy, RNNHNPolicy, "MultiInputLstmPolicy"])
def test_default_update_is_recurrent_ppos_bit_for_bit(policy):
    kwargs = {} if policy != "MultiInputLstmPolicy" else dict(policy_kwargs=dict(lstm_hidden_size=16, net_arch=[16]))
    trained = []
    for algo in (RecurrentPPO, MetaRecurrentPPO):  # built and trained in turn: both seed the global RNGs
        trained.append(parameters(make(algo, policy, **kwargs).learn(240)))
    assert th.equal(*trained)


def test_logged_training_terms_and_kl_early_stopping_are_recurrent_ppos(tmp_path):
    # The update keeps its terms on the device and reads them once; the log and the early stop must not change.
    rows, trained = [], []
    for algo in (RecurrentPPO, MetaRecurrentPPO):
        model = make(algo, RNNHNPolicy, policy_kwargs=dict(SMALL), target_kl=2e-4, n_epochs=4)
        model.set_logger(configure(str(tmp_path / algo.__name__), ["csv"]))
        trained.append(parameters(model.learn(600)))
        with open(tmp_path / algo.__name__ / "progress.csv") as f:
            train_rows = [row for row in csv.DictReader(f) if row["train/loss"]]
            rows.append([{k: v for k, v in row.items() if k.startswith("train/")} for row in train_rows])
    assert th.equal(*trained)
    stock, ours = rows
    assert len(stock) == len(ours) == 4
    assert int(stock[-1]["train/n_updates"]) < 4 * 4  # some update stopped early
    for expected, actual in zip(stock, ours, strict=True):
        assert expected.keys() == actual.keys()
        for key in expected:
            assert float(expected[key]) == pytest.approx(float(actual[key]), rel=1e-6, abs=1e-9), key


def test_clipped_huber_value_loss_matches_its_formula():
    values = th.tensor([0.5, 3.0, -2.0, 0.0, 9.0])
    old_values = th.tensor([0.4, 1.0, 0.0, 0.0, 0.0])
    returns = th.tensor([1.0, 0.0, -2.5, 0.2, 0.0])
    mask = th.tensor([True, True, True, True, False])  # the last step is padding
    clip = 0.2

    def huber(error: float) -> float:
        return 0.5 * error**2 if abs(error) < 1 else abs(error) - 0.5

    expected = []
    for v, v_old, r in zip(values[:4].tolist(), old_values[:4].tolist(), returns[:4].tolist(), strict=True):
        clipped = v_old + min(max(v - v_old, -clip), clip)
        expected.append(0.5 * max(huber(v - r), huber(clipped - r)))
    # Step 1: quadratic and unclipped; step 2: linear, the clipped value (1.2) is closer; step 3: the clipped value
    # (-0.2) is farther (2.3 > 0.5), so its loss counts.
    assert expected[2] == pytest.approx(0.5 * (2.3 - 0.5))
    loss = clipped_huber_value_loss(values, old_values, returns, clip, mask)
    assert loss.item() == pytest.approx(np.mean(expected), rel=1e-6)


def test_huber_value_loss_option_is_what_trains(monkeypatch):
    calls = []

    def spy(values, old_values, returns, clip_range, mask):
        calls.append(clip_range)
        return clipped_huber_value_loss(values, old_values, returns, clip_range, mask)

    monkeypatch.setattr(meta_ppo, "clipped_huber_value_loss", spy)
    make(clip_range=0.07).learn(120)  # SB3's squared error: the Huber loss is not used
    assert calls == []
    huber = make(value_loss="huber_clipped", clip_range=0.07)
    huber.learn(120)  # one update: 2 epochs x 3 minibatches, each with the PPO clip range
    assert calls == [pytest.approx(0.07)] * 6
    mse = make()
    mse.learn(120)
    assert not th.equal(parameters(huber), parameters(mse))


def _gradient_norms_at_each_step(model) -> list[dict[str, float]]:
    """Norms of each gradient group when the optimiser steps, over one update."""
    norms = []
    step = model.policy.optimizer.step

    def recording_step(*args, **kwargs):
        groups = model.policy.gradient_groups()
        norms.append({name: th.norm(th.stack([p.grad.norm() for p in ps if p.grad is not None])).item()
                      for name, ps in groups.items()})  # fmt: skip
        return step(*args, **kwargs)

    model.policy.optimizer.step = recording_step
    model.learn(120)
    return norms


def test_per_module_clipping_bounds_each_group_and_global_clipping_the_sum():
    tiny = 1e-4  # every unclipped gradient is larger: clipping always acts
    for per_module in (True, False):
        norms = _gradient_norms_at_each_step(make(clip_grad_per_module=per_module, max_grad_norm=tiny))
        assert len(norms) == 6
        for step in norms:
            total = float(np.hypot(step["encoder"], step["actor_critic"]))
            if per_module:
                assert step["encoder"] == pytest.approx(tiny, rel=1e-3)
                assert step["actor_critic"] == pytest.approx(tiny, rel=1e-3)
            else:
                assert total == pytest.approx(tiny, rel=1e-3)
                assert step["encoder"] < tiny and step["actor_critic"] < tiny


def test_gradient_groups_partition_the_parameters():
    policy = make(policy=RNNHNPolicy).policy
    groups = policy.gradient_groups()
    encoder, actor_critic = ({id(p) for p in ps} for ps in groups.values())
    assert encoder == {id(p) for p in policy.lstm_actor.parameters()}
    assert not encoder & actor_critic
    assert encoder | actor_critic == {id(p) for p in policy.parameters()}


class TaskDecoderPolicy(RNNPolicy):
    """A toy auxiliary loss: a decoder predicts the task descriptor from the (detached) latent, on real steps only."""

    def _build_inference_module(self) -> None:
        self.decoder = nn.Linear(self._head_spec.condition_dim, self.observation_space["task"].shape[0])

    def inference_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters()) if hasattr(self, "decoder") else []

    def evaluate_actions_and_losses(self, obs, actions, lstm_states, episode_starts, mask):
        values, log_prob, entropy = self.evaluate_actions(obs, actions, lstm_states, episode_starts)
        features = self.extract_features(obs, self.features_extractor)
        latent, _ = self._process_sequence(features, lstm_states.pi, episode_starts, self.lstm_actor)
        error = (self.decoder(latent.detach()) - obs["task"]).pow(2).sum(dim=-1)
        return values, log_prob, entropy, {"task": error[mask].mean()}


def test_auxiliary_losses_train_the_inference_module_on_its_own_optimiser(tmp_path):
    model = make(policy=TaskDecoderPolicy, expose_task=True, inference_learning_rate=5e-3)
    decoder = list(model.policy.decoder.parameters())
    in_main = {id(p) for group in model.policy.optimizer.param_groups for p in group["params"]}
    assert not in_main & {id(p) for p in decoder}
    (group,) = model.inference_optimizer.param_groups
    assert [id(p) for p in group["params"]] == [id(p) for p in decoder]
    assert (group["lr"], group["eps"]) == (5e-3, 1e-8)

    before = [p.detach().clone() for p in decoder]
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(360)  # 3 updates; SB3 writes an update's train/ records with the next rollout's
    assert all(not th.equal(a, b) for a, b in zip(before, decoder, strict=True))
    with open(tmp_path / "progress.csv") as file:
        rows = list(csv.DictReader(file))
    logged = [float(row["train/aux_task"]) for row in rows if row.get("train/aux_task")]
    assert len(logged) == 2 and all(value > 0 for value in logged)

    model.save(tmp_path / "model.zip")
    loaded = MetaRecurrentPPO.load(tmp_path / "model.zip", custom_objects={"policy_class": TaskDecoderPolicy})
    assert loaded.inference_learning_rate == 5e-3
    saved_state = model.inference_optimizer.state_dict()["state"]
    loaded_state = loaded.inference_optimizer.state_dict()["state"]
    assert saved_state.keys() == loaded_state.keys() and saved_state
    for key, state in saved_state.items():
        assert th.equal(state["exp_avg"], loaded_state[key]["exp_avg"])


def test_options_survive_save_and_load(tmp_path):
    model = make(value_loss="huber_clipped", clip_grad_per_module=True)
    model.learn(120)
    model.save(tmp_path / "model.zip")
    loaded = MetaRecurrentPPO.load(tmp_path / "model.zip")
    assert (loaded.value_loss, loaded.clip_grad_per_module) == ("huber_clipped", True)
    assert loaded.inference_optimizer is None
    assert th.equal(parameters(loaded), parameters(model))


def test_the_zip_records_its_algorithm_and_loading_follows_the_record(tmp_path):
    # Even with no MetaRecurrentPPO-only option in the data, the record says what to load it as.
    model = make()
    model.save(tmp_path / "meta.zip")
    data, _, _ = load_from_zip_file(tmp_path / "meta.zip")
    assert data["algorithm_class"] == "MetaRecurrentPPO"
    data.pop("inference_learning_rate")
    assert algorithm_of(data) is MetaRecurrentPPO
    make(RecurrentPPO).save(tmp_path / "stock.zip")
    assert type(load_meta_model(tmp_path / "stock.zip")) is RecurrentPPO
    assert type(load_meta_model(tmp_path / "meta.zip")) is MetaRecurrentPPO
    with pytest.raises(ValueError, match="saved by 'MyPPO'"):
        algorithm_of({"algorithm_class": "MyPPO"})


def test_bad_options_are_named_errors():
    with pytest.raises(ValueError, match="value_loss must be one of 'mse', 'huber_clipped', got 'huber'"):
        make(value_loss="huber")
    with pytest.raises(ValueError, match="clip_grad_per_module needs a policy with gradient_groups"):
        make(policy="MultiInputLstmPolicy", clip_grad_per_module=True, policy_kwargs=dict(lstm_hidden_size=16))
