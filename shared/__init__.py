"""trainq's core: settings, database, job spec, Keras builder, datasets, artifacts.

Imports neither Flask nor Celery.
"""
