"""Tools around the authors' reference implementation (jacooba/hyper): module parity and its learning curves."""
