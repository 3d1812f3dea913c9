"""Who am I: the caller's account, the token in use, and their limits."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from shared.jobs import quotas
from web import responses
from web.auth import current_token
from web.extensions import db, settings
from web.schemas import Limits, Me, TokenInfo

bp = Blueprint("me", __name__)


@bp.get("")
def me() -> ResponseReturnValue:
    """The caller's name and role, the token they used, and the limits that apply to them."""
    token = current_token()
    user, config = token.user, settings()
    answer = Me(
        id=user.id,
        name=user.name,
        role=user.role,
        created_at=user.created_at,
        token=TokenInfo(
            id=token.id,
            prefix=token.prefix,
            created_at=token.created_at,
            expires_at=token.expires_at,
        ),
        limits=Limits(
            max_queued_jobs=config.max_queued_jobs,
            queued_jobs=quotas.queued_jobs(db(), user),
            submit_rate=config.submit_rate,
            submit_rate_window_seconds=config.submit_rate_window_seconds,
            max_epochs=config.max_epochs,
            max_job_seconds=config.max_job_seconds,
        ),
    )
    return responses.body(answer)
