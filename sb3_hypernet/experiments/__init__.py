"""Running the papers' experiments: rl_zoo3 integration (algorithms, configs, models built as zoo builds them),
the search space of ``-optimize``, the sweep protocol on Optuna and its figures. The command lines
(:mod:`sb3_hypernet.train`, ``enjoy``, ``evaluate``, ``optimize``, ``sweep``, ``plot``) are thin layers on these."""
