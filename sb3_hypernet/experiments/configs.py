"""Where the zoo entries are: ``zoo_configs/`` in a clone of the repository, ``sb3_hypernet.zoo_configs`` in an
installed package (the same files; a wheel carries them as rl_zoo3 carries its ``hyperparams/``).

The command lines take a method name wherever they take a config file (``--conf-file rnn_hn``, ``sweep --methods
rnn_hn``); a path that exists is used as it is (``--conf-file my_entry.yml``), and ``zoo_configs/<name>.yml``, the
form the README uses in a clone, is found by name anywhere.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

#: The folder name of the configs in the repository.
FOLDER = "zoo_configs"


def config_dir() -> Path:
    """The folder of the zoo configs that belong to the imported ``sb3_hypernet``: the clone's ``zoo_configs/`` when
    the package runs from a clone (an editable install or ``PYTHONPATH``), else the installed copy."""
    clone = Path(__file__).resolve().parents[2] / FOLDER
    if (clone / "__init__.py").is_file() and (clone / "rnn_hn.yml").is_file():
        return clone
    return Path(str(importlib.resources.files("sb3_hypernet.zoo_configs")))


def config_names(folder: str | os.PathLike | None = None) -> list[str]:
    """Every config of ``folder`` (default: :func:`config_dir`) by name, subfolders as ``scale/rnn_hn_256``."""
    root = Path(folder) if folder is not None else config_dir()
    return sorted(path.relative_to(root).with_suffix("").as_posix() for path in root.rglob("*.yml"))


def zoo_config(name_or_path: str | os.PathLike, folder: str | os.PathLike | None = None) -> Path:
    """The config file for a method name (``rnn_hn``, ``scale/rnn_hn_256``) or a path; ``ValueError`` naming the
    known configs if there is none.

    :param name_or_path: an existing file (used as it is), a method name, or ``zoo_configs/<name>.yml``
    :param folder: where names are looked up (default: :func:`config_dir`)
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    root = Path(folder) if folder is not None else config_dir()
    name = path.as_posix()
    if name.startswith(f"{FOLDER}/"):
        name = name[len(FOLDER) + 1 :]
    candidate = root / (name if name.endswith(".yml") else f"{name}.yml")
    if candidate.is_file():
        return candidate
    raise ValueError(
        f"no zoo config {str(name_or_path)!r}: not a file, and not one of the configs in {root}: "
        f"{', '.join(config_names(root))}"
    )


#: rl_zoo3 train's option for the config file.
CONF_FILE_OPTIONS = ("-conf", "--conf-file")


def use_zoo_configs(argv: list[str]) -> list[str]:
    """``argv`` with the value of rl_zoo3's ``--conf-file`` resolved by :func:`zoo_config` (a method name or the
    README's ``zoo_configs/<name>.yml`` outside a clone); ``ValueError`` if it names no config."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        option, equals, value = arg.partition("=")
        if option not in CONF_FILE_OPTIONS:
            continue
        if equals:
            argv[i] = f"{option}={zoo_config(value)}"
        elif i + 1 < len(argv):
            argv[i + 1] = str(zoo_config(argv[i + 1]))
    return argv
