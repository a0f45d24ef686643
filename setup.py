"""The package list, which setup.cfg cannot express: ``zoo_configs/``, the repository's one copy of the zoo entries, is
installed as ``sb3_hypernet.zoo_configs`` (as rl_zoo3 ships its hyperparameter files inside its package), so that
the command lines find them wherever the package is installed. Everything else is in setup.cfg."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["sb3_hypernet", "sb3_hypernet.*", "envs", "envs.*"]), "sb3_hypernet.zoo_configs"],
    package_dir={"sb3_hypernet.zoo_configs": "zoo_configs"},
    package_data={"sb3_hypernet.zoo_configs": ["*.yml", "*/*.yml"]},
)
