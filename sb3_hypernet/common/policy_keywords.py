"""Checks of the recurrent meta-RL policies' constructor arguments: the meta-episode observation, sizes, the task
entry, and keywords that the policy or its head does not take (with the closest accepted name)."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_hypernet.common.task import META_OBS_KEYS, TASK_KEY


def check_meta_observation_space(observation_space: spaces.Space, policy_name: str) -> None:
    """Raise a ``ValueError`` unless ``observation_space`` is the Dict that :class:`MetaEpisodeWrapper` produces."""
    hint = (
        f"{policy_name} needs the Dict observation of sb3_hypernet.MetaEpisodeWrapper with keys "
        f"{', '.join(META_OBS_KEYS)}: use a registered meta-episode id (e.g. GridNavi-v0) or wrap your env."
    )
    if not isinstance(observation_space, spaces.Dict):
        raise ValueError(f"{hint} Got {observation_space}.")
    missing = [key for key in META_OBS_KEYS if key not in observation_space.spaces]
    if missing:
        raise ValueError(f"{hint} Missing: {', '.join(missing)}.")
    if not isinstance(observation_space["obs"], (spaces.Box, spaces.Discrete)):
        raise ValueError(f"{policy_name} supports Box or Discrete inner observations, got {observation_space['obs']}.")


def check_task_key(observation_space: spaces.Space, policy_name: str) -> None:
    """``ValueError`` telling to set ``expose_task`` unless the observation has the ``task`` entry."""
    if isinstance(observation_space, spaces.Dict) and TASK_KEY not in observation_space.spaces:
        raise ValueError(
            f"{policy_name} needs the task descriptor in the observation's {TASK_KEY!r} entry, which this env does not "
            f"have: make it with expose_task=True (gym.make(env_id, expose_task=True); in a zoo config, env_kwargs: "
            f"{{expose_task: true}})."
        )


def check_task_inference_weight(weight: Any, end_to_end: bool, policy_name: str) -> float:
    """The validated ``task_inference_weight`` (``ValueError`` naming the problem)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)) or not np.isfinite(weight):
        raise ValueError(f"task_inference_weight must be a finite number >= 0, got {weight!r}")
    if weight < 0:
        raise ValueError(f"task_inference_weight must be >= 0, got {weight!r}")
    if weight and not end_to_end:
        raise ValueError(
            f"task_inference_weight is the end-to-end + task-inference option of the end-to-end policies (RNN, "
            f"RNN+S, RNN+HN, FiLM; NeurIPS 2023 appendix 8.3); {policy_name} trains its task inference on its own."
        )
    return float(weight)


def check_size(name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_sizes(
    net_arch: list[int] | dict[str, list[int]], head_kwargs: dict[str, Any], **sizes: int
) -> dict[str, list[int]]:
    """Validate every size argument (``ValueError`` naming the bad one); returns ``net_arch`` as ``dict(pi, vf)``."""
    arch = dict(net_arch) if isinstance(net_arch, dict) else {"pi": list(net_arch), "vf": list(net_arch)}
    if set(arch) != {"pi", "vf"}:
        raise ValueError(f"net_arch must be a list of layer sizes or dict(pi=[...], vf=[...]), got {net_arch!r}")
    embeddings_that_may_be_zero = ("action_embedding_dim", "reward_embedding_dim")
    for key, value in {**sizes, "state_embedding_dim": head_kwargs.get("state_embedding_dim", 1)}.items():
        check_size(key, value, minimum=0 if key in embeddings_that_may_be_zero else 1)
    for key, layers in [
        ("net_arch", [*arch["pi"], *arch["vf"]]),
        ("hypernet_layers", head_kwargs.get("hypernet_layers", [])),
    ]:
        if not isinstance(layers, (list, tuple)):
            raise ValueError(f"{key} must be a list of layer sizes, got {layers!r}")
        for value in layers:
            check_size(f"{key} entries", value)
    return arch


def constructor_keywords(klass: type, stop_at: type | None = None) -> set[str]:
    """Keyword parameters named in ``klass``'s constructor, following ``**kwargs`` into base classes until one
    takes no ``**kwargs`` or is ``stop_at``."""
    names: set[str] = set()
    for base in klass.__mro__:
        if "__init__" not in base.__dict__:
            continue
        parameters = inspect.signature(base.__init__).parameters.values()
        names |= {p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name != "self"}
        if base is stop_at or not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    return names


#: sb3-contrib's RecurrentActorCriticPolicy keywords that these policies do not take, and what to do instead.
RECURRENT_PPO_KEYWORDS = {
    "lstm_hidden_size": "the recurrent core is a GRU: use 'gru_hidden_size'",
    "n_lstm_layers": "the recurrent core is a GRU: use 'n_gru_layers'",
    "lstm_kwargs": "the recurrent core is a GRU built from the size keywords (gru_hidden_size, n_gru_layers)",
    "shared_lstm": "the GRU is always shared by actor and critic and trained by both losses",
    "enable_critic_lstm": "the GRU is always shared by actor and critic and trained by both losses",
    "ortho_init": "initialisation follows the reference implementation; see hyper_init for hypernetworks",
    "features_extractor_class": "the meta-episode observation has its own fixed per-input embeddings",
    "features_extractor_kwargs": "size the embeddings with obs_embedding_dim, action_embedding_dim, "
    "reward_embedding_dim",
    "share_features_extractor": "actor and critic always share the trajectory encoder",
    "normalize_images": "not supported",
    "full_std": "not supported (gSDE is not supported)",
    "use_expln": "not supported (gSDE is not supported)",
    "squash_output": "not supported (gSDE is not supported)",
}


def check_policy_keywords(policy_class: type, head_class: type, head_kwargs: dict[str, Any], stop_at: type) -> None:
    """``TypeError`` for keywords that neither ``policy_class`` (up to ``stop_at``) nor its head takes, naming the
    closest accepted one, or what to use instead of sb3-contrib's keyword."""
    accepted_by_head = constructor_keywords(head_class) - {"spec"}
    unknown = sorted(set(head_kwargs) - accepted_by_head)
    if not unknown:
        return
    positional = {"observation_space", "action_space", "lr_schedule"}
    accepted = sorted((constructor_keywords(policy_class, stop_at=stop_at) | accepted_by_head) - positional)
    hints = []
    for key in unknown:
        if key in RECURRENT_PPO_KEYWORDS:
            hints.append(f"{key!r} ({RECURRENT_PPO_KEYWORDS[key]})")
            continue
        close = difflib.get_close_matches(key, accepted, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TypeError(
        f"{policy_class.__name__} got unknown policy keyword argument(s) {', '.join(hints)}. "
        f"It accepts: {', '.join(accepted)}."
    )


def policy_signature(policy_class: type, stop_at: type, head_class: type) -> inspect.Signature:
    """The constructor signature of a policy whose keywords pass through ``**kwargs`` to ``stop_at`` and through
    ``**head_kwargs`` to its head: ``stop_at``'s parameters as they are, then every other keyword the policy or its
    head takes (keyword-only, with its default), so that ``inspect.signature`` and ``help()`` list them all."""
    own: list[inspect.Parameter] = []
    for base in policy_class.__mro__:
        if "__init__" not in base.__dict__:
            continue
        parameters = list(inspect.signature(base.__dict__["__init__"]).parameters.values())[1:]
        if base is stop_at:
            break
        own += parameters
    ordered = [p for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    extra = own + list(inspect.signature(head_class.__init__).parameters.values())
    for parameter in extra:
        if parameter.name not in {"self", "spec", *(p.name for p in ordered)} and parameter.kind not in (
            parameter.VAR_KEYWORD,
            parameter.VAR_POSITIONAL,
        ):
            ordered.append(parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY))
    return inspect.Signature(ordered)
