"""Hyperparameter searches on Ray Tune: --param specs to search spaces, one run per trial."""
