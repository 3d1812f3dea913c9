"""The model registry: models named per user, numbered versions made from succeeded jobs, and
aliases that move from one version to another atomically.

``queries`` reads (``resolve`` turns a name with a version or an alias into the version to
serve: its ``job_id`` is the job whose model answers); ``service`` changes (register a version,
move an alias, delete); ``names`` holds the rules a model's and an alias's names follow.
"""
