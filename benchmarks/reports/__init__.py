"""Reports: tables and figures made from the result files in benchmarks/results/."""
