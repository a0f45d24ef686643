"""Speed benchmarks: frames/s, time splits and memory of the training pieces."""
