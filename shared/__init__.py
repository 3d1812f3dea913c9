"""trainq's core: settings, database, job spec, Keras builder, datasets, artifacts (no Flask, no Celery)."""
