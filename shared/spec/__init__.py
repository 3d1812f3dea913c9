"""The job spec: what a user may send, checked by pydantic against the allow-lists.

Pure data: imports neither Keras nor the database.
"""
