"""The zoo configs travel with the package: a wheel built from the repository carries ``zoo_configs/`` as
``sb3_hypernet.zoo_configs``, and the command lines find a config by method name from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sb3_hypernet.experiments.configs import config_dir, config_names, use_zoo_configs, zoo_config

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY_CONFIGS = sorted(
    path.relative_to(ROOT / "zoo_configs").as_posix() for path in (ROOT / "zoo_configs").rglob("*.yml")
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy of what a clone holds, so that the build writes nothing into the repository.
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("setup.py", "setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("sb3_hypernet", "envs", "zoo_configs"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*pip, str(source), "-w", str(out)], check=True, capture_output=True, cwd=out)
    (path,) = out.glob("sb3_hypernet-*.whl")
    return path


def test_the_wheel_carries_every_config(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    prefix = "sb3_hypernet/zoo_configs/"
    assert sorted(name[len(prefix) :] for name in names if name.startswith(prefix) and name.endswith(".yml")) == (
        REPOSITORY_CONFIGS
    )
    assert not any(name.startswith("zoo_configs/") for name in names)  # no top-level package of that name


def test_an_installed_package_finds_its_configs_by_name(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "from sb3_hypernet.experiments.configs import config_dir, zoo_config; "
        "print(config_dir()); print(zoo_config('rnn_hn')); print(zoo_config('zoo_configs/scale/rnn_hn_256.yml'))"
    )
    env = dict(os.environ, PYTHONPATH=str(site), PYTHONWARNINGS="ignore")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    folder, rnn_hn, scaled = result.stdout.split()
    assert Path(folder) == site / "sb3_hypernet" / "zoo_configs"
    assert Path(rnn_hn).read_text() == (ROOT / "zoo_configs" / "rnn_hn.yml").read_text()
    assert Path(scaled) == site / "sb3_hypernet" / "zoo_configs" / "scale" / "rnn_hn_256.yml"


def test_names_paths_and_the_readmes_form_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # outside the repository
    assert config_dir() == ROOT / "zoo_configs"
    assert zoo_config("rnn_hn") == ROOT / "zoo_configs" / "rnn_hn.yml"
    assert zoo_config("zoo_configs/rnn_hn.yml") == ROOT / "zoo_configs" / "rnn_hn.yml"
    assert zoo_config("sb3_loss/rnn") == ROOT / "zoo_configs" / "sb3_loss" / "rnn.yml"
    own = tmp_path / "zoo_configs" / "rnn_hn.yml"  # a user's own file of the same name wins
    own.parent.mkdir()
    own.write_text("GridNavi-v0: {}\n")
    assert zoo_config("zoo_configs/rnn_hn.yml") == Path("zoo_configs/rnn_hn.yml")
    assert "rnn_hn" in config_names() and "scale/rnn_hn_256" in config_names()
    with pytest.raises(ValueError, match=r"no zoo config 'rnn_hnn'.*rnn_hn, rnn_hn_task_inference"):
        zoo_config("rnn_hnn")


def test_the_train_launcher_resolves_conf_file_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = use_zoo_configs(["--algo", "meta_ppo_lstm", "--conf-file", "rnn_hn", "-conf=zoo_configs/vi.yml"])
    assert argv == ["--algo", "meta_ppo_lstm", "--conf-file", str(ROOT / "zoo_configs" / "rnn_hn.yml"),
                    f"-conf={ROOT / 'zoo_configs' / 'vi.yml'}"]  # fmt: skip
    from sb3_hypernet import train

    monkeypatch.setattr(
        sys, "argv", ["train", "--algo", "meta_ppo_lstm", "--env", "GridNavi-v0", "--conf-file", "nope"]
    )
    with pytest.raises(SystemExit, match="argument --conf-file: no zoo config 'nope'"):
        train.main()


def test_a_sweep_outside_the_repository_finds_the_configs(tmp_path, monkeypatch):
    from sb3_hypernet import sweep
    from sb3_hypernet.experiments.sweep import SweepWorker, make_grid, open_storage, open_study

    monkeypatch.chdir(tmp_path)
    grid = make_grid(["rnn_hn"], ["GridNavi-v0"], [1e-3], [0])
    worker = SweepWorker(open_study(open_storage(str(tmp_path / "s.log")), "outside", grid), grid)
    assert worker.config_files == {"rnn_hn": ROOT / "zoo_configs" / "rnn_hn.yml"}
    with pytest.raises(SystemExit) as stop:
        sweep.main(["--methods", "rnn_hnn", "--envs", "GridNavi-v0", "--study-name", "s"])
    assert stop.value.code == 2
    assert not (tmp_path / "logs").exists()  # the study was not opened for a grid that cannot run
