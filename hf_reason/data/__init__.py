"""Puzzle and reasoning-task data, generated offline as `datasets.Dataset`."""
