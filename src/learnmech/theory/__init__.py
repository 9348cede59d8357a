"""Predictions: closed forms, ODEs, kernels and fits, computed from a system's description."""
