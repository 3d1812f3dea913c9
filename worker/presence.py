"""A training worker announces itself (host, slots, GPUs) in Redis while it runs, consumes its
own queue besides the shared one, and gives each pool child its share of the host's GPUs.

All of it runs in the worker's main process (a thread, started once the pool is up), except
``claim_gpus``, which each pool child runs after the fork, before TensorFlow loads.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
from typing import Any

import redis
from billiard.process import current_process
from celery import Celery
from celery.signals import celeryd_after_setup, worker_ready, worker_shutting_down

from shared import workers
from shared.settings import get_settings

log = logging.getLogger(__name__)
SLOTS_ENV = "TRAINQ_SLOT_GPUS"  # the main process's split, handed to its children
TRAINING_QUEUE = "celery"
_stop = threading.Event()
_me: list[tuple[Celery, workers.Worker]] = []  # this process's announcement, once set up


def _after_setup(sender: str, instance: Any, **_: Any) -> None:
    """A training worker (it consumes the shared queue) takes its own queue and its GPUs."""
    queues = instance.app.amqp.queues
    if TRAINING_QUEUE not in (queues.consume_from or queues):
        return  # the periodic worker: no slots to announce
    settings = get_settings()
    slots = max(1, min(int(instance.concurrency), settings.worker_concurrency))
    gpus = workers.host_gpus(settings.gpus)
    me = workers.Worker(sender, socket.gethostname(), slots, gpus, workers.split_gpus(gpus, slots))
    queues.select_add(me.queue)
    os.environ[SLOTS_ENV] = json.dumps(me.slot_gpus)  # read by the children it forks
    _me[:] = [(instance.app, me)]
    log.info("worker %s: %d slots, GPUs %s, slots' GPUs %s", sender, slots, gpus, me.slot_gpus)


def _announce_loop(app: Celery, me: workers.Worker) -> None:
    settings = get_settings()
    every = settings.heartbeat_seconds
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    joined = False
    while not _stop.is_set():
        try:
            workers.announce(client, me, ttl_seconds=max(3 * every, 2.0))
        except redis.RedisError as exc:
            log.warning("worker %s: cannot announce itself (%s); trying again", me.name, exc)
        else:
            if not joined:  # its slots count from now: hand the waiting jobs out at once
                joined = True
                _dispatch(app)
        _stop.wait(every)


def _dispatch(app: Celery) -> None:
    from shared.db import sessions
    from shared.jobs.dispatch import dispatch
    from worker.celery_app import Publisher

    settings = get_settings()
    try:
        sent = dispatch(sessions(settings.database_url), settings, Publisher(app))
    except Exception:  # the periodic round dispatches too; a joining worker only hurries it
        log.warning("worker joined; dispatch failed, the periodic round will", exc_info=True)
        return
    log.info("worker joined; %d waiting jobs handed out", len(sent))


def _ready(**_: Any) -> None:
    if _me:
        app, me = _me[0]
        threading.Thread(
            target=_announce_loop, args=(app, me), name="trainq-announce", daemon=True
        ).start()


def _withdraw(**_: Any) -> None:
    """Stop counting this worker's slots as soon as it begins to shut down."""
    _stop.set()
    if not _me:
        return
    settings = get_settings()
    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
        workers.withdraw(client, _me[0][1].name)


def claim_gpus() -> str | None:
    """In a pool child, before TensorFlow loads: make its slot's GPUs the only ones it sees
    (a child beyond the slots, a warm spare, shares the GPUs of the slot it stands in for)."""
    raw = os.environ.get(SLOTS_ENV)
    if raw is None:
        return None
    slot_gpus: list[list[str]] = json.loads(raw)
    index = getattr(current_process(), "index", 0) or 0
    mine = slot_gpus[index % len(slot_gpus)] if slot_gpus else []
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(mine)
    return os.environ["CUDA_VISIBLE_DEVICES"]


celeryd_after_setup.connect(_after_setup, weak=False)
worker_ready.connect(_ready, weak=False)
worker_shutting_down.connect(_withdraw, weak=False)
