"""Learning benchmarks: train, evaluate at checkpoints, sweep; results as JSON lines in benchmarks/results/."""
