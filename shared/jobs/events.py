"""A job's events: written in the transaction of the change they describe, announced after it.

The ``events`` table is the record: each status change and each finished epoch adds one row,
numbered ``seq`` = 1, 2, 3 ... per job, in the same transaction as the change itself, so a
reader never sees a change without its event nor an event without its change. After the
commit a Redis message on ``trainq:events:<job_id>`` wakes whoever streams the job, and the job
gets a new version stamp that tells the API processes that what they keep of its status is out
of date (both ``shared.stamps``). A status change also writes its webhooks' event in the same
transaction (``shared.webhooks.outbox``).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import stamps
from shared.models import Event, Job, utcnow
from shared.webhooks import outbox

log = logging.getLogger(__name__)

STATUS = "status"
EPOCH = "epoch"


def add_event(session: Session, job_id: str, type: str, data: dict[str, Any]) -> Event:
    """Add the job's next event to the session's transaction; it is announced after commit."""
    session.flush()
    # Lock the job row so that two writers of one job's events take turns (PostgreSQL; SQLite
    # has a single writer anyway): seq then has neither gaps nor duplicates.
    session.execute(select(Job.id).where(Job.id == job_id).with_for_update())
    last = session.scalar(select(func.max(Event.seq)).where(Event.job_id == job_id)) or 0
    row = Event(job_id=job_id, seq=last + 1, type=type, data=data, created_at=utcnow())
    session.add(row)
    if type == STATUS:  # the webhooks' event, in this same transaction (the outbox)
        outbox.job_changed(session, job_id, row.seq, data)
    stamps.job_changed(session, job_id)
    return row


def events_after(session: Session, job_id: str, after: int, limit: int = 500) -> list[Event]:
    """The job's events with seq greater than ``after``, oldest first."""
    return list(
        session.scalars(
            select(Event)
            .where(Event.job_id == job_id, Event.seq > after)
            .order_by(Event.seq)
            .limit(limit)
        )
    )


def sweep_events_after(
    session: Session, sweep_id: str, after: int, limit: int = 500
) -> list[tuple[Event, int]]:
    """The events of a sweep's trials with an id (the table's, across jobs) greater than
    ``after``, oldest first, each with its trial number."""
    rows = session.execute(
        select(Event, Job.trial)
        .join(Job, Job.id == Event.job_id)
        .where(Job.sweep_id == sweep_id, Event.id > after)
        .order_by(Event.id)
        .limit(limit)
    )
    return [(event, trial or 0) for event, trial in rows]
