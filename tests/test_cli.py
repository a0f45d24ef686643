"""The ``sb3-hypernet`` console command: each subcommand is the ``python -m sb3_hypernet.<command>`` of its name."""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from sb3_hypernet import cli

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sb3_hypernet.cli", *args], capture_output=True, text=True, cwd=ROOT)


def test_setup_declares_the_console_command():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    (line,) = [entry for entry in config["options.entry_points"]["console_scripts"].splitlines() if entry.strip()]
    name, target = (part.strip() for part in line.split("="))
    module, function = target.split(":")
    assert (name, module, function) == ("sb3-hypernet", "sb3_hypernet.cli", "main")


def test_usage_lists_every_command(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["sb3-hypernet", "--help"])
    cli.main()
    usage = capsys.readouterr().out
    for name in ("train", "enjoy", "evaluate", "optimize", "sweep", "plot"):
        assert f"  {name} " in usage


def test_unknown_command_is_named(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["sb3-hypernet", "trian"])
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["plot", "sweep", "evaluate"])
def test_a_subcommand_is_the_module_of_its_name(command, monkeypatch):
    # In process: the module's own --help answers.
    called = []
    module = importlib.import_module(cli.COMMANDS[command][0])
    monkeypatch.setattr(module, "main", lambda: called.append(list(sys.argv)))
    monkeypatch.setattr(sys, "argv", ["sb3-hypernet", command, "--flag", "value"])
    cli.main()
    assert called == [[f"sb3-hypernet {command}", "--flag", "value"]]


def test_train_runs_rl_zoo3_with_the_added_algorithms(monkeypatch):
    result = run("train", "--help")
    assert result.returncode == 0
    assert "meta_ppo_lstm" in result.stdout


def test_no_extra_installs_old_gym():
    # SB3 imports old gym when it is installed, and gym prints a four-line deprecation banner on every command.
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    for extra, requirements in config["options.extras_require"].items():
        names = [line.split("==")[0].split(">")[0].split("<")[0].strip() for line in requirements.splitlines()]
        assert "gym" not in names, extra


@pytest.mark.skipif(importlib.util.find_spec("gym") is not None, reason="old gym is installed here by the user")
@pytest.mark.parametrize("command", ["evaluate", "enjoy", "train"])
def test_commands_print_no_gym_banner(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert "Gym has been unmaintained" not in result.stdout + result.stderr


def test_the_launchers_register_the_benchmarks_without_gym_packages(tmp_path, monkeypatch):
    from sb3_hypernet import train
    from sb3_hypernet.experiments.zoo import use_default_gym_packages

    assert use_default_gym_packages(["--env", "GridNavi-v0"]) == ["--env", "GridNavi-v0", "--gym-packages", "envs"]
    assert use_default_gym_packages(["--gym-packages", "mine"]) == ["--gym-packages", "mine"]
    assert use_default_gym_packages(["--gym-packages=mine"]) == ["--gym-packages=mine"]
    small = "dict(gru_hidden_size=8, net_arch=[8], latent_embedding_dim=4)"
    argv = ["train", "--algo", "meta_ppo_lstm", "--env", "GridNavi-v0", "--conf-file", "rnn_hn", "-n", "120",
            "-f", str(tmp_path), "--eval-freq", "-1", "-params", "n_envs:2", f"policy_kwargs:{small}"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    train.main()  # rl_zoo3 alone: "GridNavi-v0 not found in gym registry"
    assert (tmp_path / "meta_ppo_lstm" / "GridNavi-v0_1" / "GridNavi-v0.zip").exists()
