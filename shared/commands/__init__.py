"""The service's own commands, run where it runs: `trainq up`, `trainq users ...`,
`trainq tokens ...` (and `python -m shared.commands ...`).

The light client's `trainq` command hands these over to `shared.commands.cli`, found by name when
the server is installed beside it. No module here imports Flask or Celery: `trainq up` starts
gunicorn and Celery as processes of their own.
"""
