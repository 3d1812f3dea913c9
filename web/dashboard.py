"""The dashboard: the job list with its filters at /, a job page with its spec, provenance,
events and live curves at /jobs/<id>, a spec submitted from the browser at /submit, the sweeps
at /sweeps and a sweep's trials, charts and best curves at /sweeps/<id>, jobs side by side at
/compare, the registered models with their versions and aliases at /models.

The pages are static HTML; their script signs in with an API token (kept in the browser's
localStorage) and reads the same API as everyone else, including the live event stream.
"""

from __future__ import annotations

import json

from flask import Blueprint, render_template
from markupsafe import Markup

from shared.models import JobStatus
from web.openapi import SPEC_EXAMPLE

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index() -> str:
    """The caller's jobs with status and progress bars, filtered by status, name and day."""
    return render_template("index.html", statuses=[s.value for s in JobStatus])


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> str:
    """One job: its place in the queue, live curves of every metric, events, provenance, spec,
    cancel and download."""
    return render_template("job.html", job_id=job_id[:64])


@bp.get("/submit")
def submit() -> str:
    """A spec laid out as inputs (the API's example, or a job's with ?from=), submitted; its
    422 shown at the fields it names."""
    # In its keys' own order (tojson sorts them), and safe inside <script>: no <, > or &.
    example = json.dumps(SPEC_EXAMPLE).translate({60: "\\u003c", 62: "\\u003e", 38: "\\u0026"})
    return render_template("submit.html", example=Markup(example))


@bp.get("/sweeps")
def sweeps() -> str:
    """The caller's sweeps with status, trials by state and the best objective."""
    return render_template("sweeps.html")


@bp.get("/sweeps/<sweep_id>")
def sweep(sweep_id: str) -> str:
    """One sweep: its trials (sortable), the objective per searched value, the best curves."""
    return render_template("sweep.html", sweep_id=sweep_id[:64])


@bp.get("/compare")
def compare() -> str:
    """Jobs side by side (``?jobs=A,B,C``): where their specs differ, metrics, curves."""
    return render_template("compare.html")


@bp.get("/models")
def models() -> str:
    """The caller's registered models: each one's aliases and versions."""
    return render_template("models.html")
