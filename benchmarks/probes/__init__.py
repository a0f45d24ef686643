"""Probes: what a trained (or fresh) model does inside, beyond its return."""
