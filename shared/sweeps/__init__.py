"""Sweeps: many trials of one base spec, sampled and pruned by Optuna, each an ordinary job.

``spec`` is what a user submits (pydantic only), ``engine`` the sampler and pruner over the
recorded trials, ``service`` the sweep's transactions: create, advance, prune, cancel, describe.
"""
