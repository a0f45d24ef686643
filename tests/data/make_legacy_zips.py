"""Build the saved models of ``tests/test_legacy_zips.py``: small models saved by the package before its layout
moved (commit 7decb10), and the deterministic actions they took. Their loading and acting alike after the move is
the test. Run from the repository root: ``python tests/data/make_legacy_zips.py`` (one torch thread)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3.common.env_util import make_vec_env

import envs  # noqa: F401

DATA = Path(__file__).parent
#: name -> (environment id, env kwargs, steps rolled out)
MODELS = {
    "rnn_hn_recurrent_ppo": ("GridNavi-v0", {}, 30),
    "ti_plus_plus_hn_meta_ppo": ("GridNavi-v0", dict(expose_task=True), 30),
    "hyper_sac": ("Pendulum-v1", {}, 20),
}


def rollout_actions(model, name: str) -> np.ndarray:
    """The deterministic actions ``model`` takes on the seeded environments of ``MODELS[name]``."""
    env_id, env_kwargs, steps = MODELS[name]
    env = make_vec_env(env_id, n_envs=model.n_envs, seed=0, env_kwargs=env_kwargs)
    obs, states, starts, actions = env.reset(), None, np.ones(model.n_envs, dtype=bool), []
    for _ in range(steps):
        action, states = model.predict(obs, state=states, episode_start=starts, deterministic=True)
        obs, _, starts, _ = env.step(action)
        actions.append(action)
    return np.stack(actions)


if __name__ == "__main__":
    from sb3_contrib import RecurrentPPO
    from stable_baselines3 import SAC

    from sb3_hypernet import HyperSACPolicy, MetaRecurrentPPO, RNNHNPolicy, TIPlusPlusHNPolicy

    th.set_num_threads(1)
    small = dict(gru_hidden_size=16, net_arch=[16, 16], state_embedding_dim=8, latent_embedding_dim=4)
    grid = dict(n_steps=60, batch_size=60, n_epochs=1, seed=0)
    built = {
        "rnn_hn_recurrent_ppo": lambda env: RecurrentPPO(RNNHNPolicy, env, policy_kwargs=small, **grid).learn(120),
        "ti_plus_plus_hn_meta_ppo": lambda env: MetaRecurrentPPO(
            TIPlusPlusHNPolicy, env, policy_kwargs=dict(small, latent_dim=5), **grid
        ).learn(120),
        "hyper_sac": lambda env: SAC(
            HyperSACPolicy,
            env,
            learning_starts=50,
            batch_size=32,
            buffer_size=1000,
            seed=0,
            policy_kwargs=dict(primary_widths=(8, 8, 8), blocks_per_stage=1, net_arch=[8, 8]),
        ).learn(100),
    }
    actions = {}
    for name, build in built.items():
        env_id, env_kwargs, _ = MODELS[name]
        model = build(make_vec_env(env_id, n_envs=1 if env_id == "Pendulum-v1" else 2, seed=0, env_kwargs=env_kwargs))
        model.save(DATA / f"{name}.zip")
        actions[name] = rollout_actions(model, name)
    np.savez(DATA / "legacy_actions.npz", **actions)
