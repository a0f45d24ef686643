"""The rl_zoo3 hyperparameter files of the papers' methods (``<method>.yml``, one entry per env id), installed with the
package as ``sb3_hypernet.zoo_configs``; :func:`sb3_hypernet.experiments.configs.zoo_config` finds them by name."""
