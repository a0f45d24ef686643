"""Loading a saved recurrent meta-RL model as the algorithm that trained it."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

from sb3_contrib import RecurrentPPO
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.save_util import load_from_zip_file

from sb3_hypernet.meta_ppo.meta_ppo import MetaRecurrentPPO

#: What a zip's ``algorithm_class`` entry may name.
RECURRENT_ALGORITHMS: dict[str, type[RecurrentPPO]] = {
    "RecurrentPPO": RecurrentPPO,
    "MetaRecurrentPPO": MetaRecurrentPPO,
}


def algorithm_of(data: dict[str, Any], path: str | os.PathLike = "the model") -> type[RecurrentPPO]:
    """The algorithm class a saved model's ``data`` records (``algorithm_class``, saved by MetaRecurrentPPO).
    Zips without the entry are sb3-contrib's RecurrentPPO, or MetaRecurrentPPO saved before version 0.2, which
    the options only it saves (``inference_learning_rate``) tell apart."""
    name = data.get("algorithm_class")
    if name is None:
        return MetaRecurrentPPO if "inference_learning_rate" in data else RecurrentPPO
    if name not in RECURRENT_ALGORITHMS:
        raise ValueError(
            f"{path} was saved by {name!r}, which is not one of {', '.join(RECURRENT_ALGORITHMS)}: load it with "
            "that class's load()."
        )
    return RECURRENT_ALGORITHMS[name]


#: What every SB3 model zip holds.
REQUIRED_MEMBERS = ("data", "policy.pth")


def check_model_file(path: str | os.PathLike) -> None:
    """``ValueError`` saying that the file at ``path`` is damaged (truncated, corrupted) or not an SB3 model zip,
    and why; nothing if it reads whole. Reads the whole file once (every member's checksum)."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is damaged or not a model file: it is not a readable zip archive (truncated?)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            missing = [name for name in REQUIRED_MEMBERS if name not in names]
            if missing:
                raise ValueError(
                    f"{path} is damaged or not an SB3 model: it has no {' or '.join(map(repr, missing))} entry "
                    f"(it holds {', '.join(names[:5])}{', ...' if len(names) > 5 else ''})"
                )
            bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ValueError(f"{path} is damaged: its zip archive cannot be read ({error})") from None
    if bad is not None:
        raise ValueError(f"{path} is damaged: its entry {bad!r} fails its checksum")


def load_meta_model(path: str | os.PathLike, device: str = "auto") -> RecurrentPPO:
    """Load a RecurrentPPO or MetaRecurrentPPO ``.zip`` as the algorithm that saved it; a clear ``ValueError`` if the
    file is damaged (:func:`check_model_file`) or holds another kind of model."""
    path = Path(path)
    if not path.exists() and path.with_suffix(".zip").exists():
        path = path.with_suffix(".zip")
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    check_model_file(path)
    data, _, _ = load_from_zip_file(path, device="cpu", load_data=True)
    policy_class = (data or {}).get("policy_class")
    if not (isinstance(policy_class, type) and issubclass(policy_class, RecurrentActorCriticPolicy)):
        name = getattr(policy_class, "__qualname__", policy_class)
        raise ValueError(
            f"{path} holds a model with policy {name!r}, not a recurrent policy: meta-episode evaluation needs a "
            "RecurrentPPO model (e.g. trained with --algo ppo_lstm and an sb3_hypernet policy)."
        )
    return algorithm_of(data, path).load(path, device=device)
