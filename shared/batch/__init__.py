"""Batch predictions: a model called on every row of a dataset, as a queued job of its own kind."""
