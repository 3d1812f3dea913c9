"""The dashboard: the job list at /, a job page with live curves at /jobs/<id>, the sweeps at
/sweeps and a sweep's trials, charts and best curves at /sweeps/<id>.

The pages are static HTML; their script signs in with an API token (kept in the browser's
localStorage) and reads the same API as everyone else, including the live event stream.
"""

from __future__ import annotations

from flask import Blueprint, render_template

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index() -> str:
    """The caller's jobs with status and progress bars."""
    return render_template("index.html")


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> str:
    """One job: live loss and accuracy curves, history, cancel and download."""
    return render_template("job.html", job_id=job_id[:64])


@bp.get("/sweeps")
def sweeps() -> str:
    """The caller's sweeps with status, trials by state and the best objective."""
    return render_template("sweeps.html")


@bp.get("/sweeps/<sweep_id>")
def sweep(sweep_id: str) -> str:
    """One sweep: its trials (sortable), the objective per searched value, the best curves."""
    return render_template("sweep.html", sweep_id=sweep_id[:64])
