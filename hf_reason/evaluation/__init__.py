"""Evaluation: metrics, statistics, validators and the sandbox for untrusted code."""
