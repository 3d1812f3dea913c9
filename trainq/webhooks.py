"""`trainq webhooks ...`: register a URL for your jobs' and sweeps' state changes, list them,
read a webhook's delivery log, send it a test ping; tables, or the API's JSON with --json."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trainq.client import Client
from trainq.progress import console
from trainq.tables import Fitted, when


def webhooks_table(hooks: list[dict[str, Any]]) -> Fitted:
    """Your webhooks: id, URL, events, description."""
    out = Fitted(("ID", "URL", "EVENTS", "DESCRIPTION"), whole=("ID",))
    for h in hooks:
        out.add_row(h["id"], h["url"], ", ".join(h["events"] or ["all"]), h["description"])
    return out


def deliveries_table(deliveries: list[dict[str, Any]]) -> Fitted:
    """A webhook's deliveries: id, event, status, attempts, last answer, when."""
    out = Fitted(("DELIVERY", "EVENT", "STATUS", "ATTEMPTS", "LAST ANSWER", "CREATED"),
                 whole=("DELIVERY", "STATUS", "ATTEMPTS"))  # fmt: skip
    for d in deliveries:
        answer = d["error"] or (str(d["response_status"]) if d["response_status"] else "")
        out.add_row(d["id"], d["event_type"], d["status"], str(d["attempts"]), answer,
                    when(d["created_at"]))  # fmt: skip
    return out


def run(client: Client, args: argparse.Namespace) -> int:
    """Run one `trainq webhooks` action."""
    shown: Any
    if args.action == "add":
        shown = client.add_webhook(args.target, args.event or None, args.description)
        if not args.json:
            print(f"{shown['id']}\nsigning secret (shown once, keep it): {shown['secret']}")
            return 0
    elif args.action == "list":
        shown = client.webhooks()
        if not args.json:
            console().print(webhooks_table(shown))
            return 0
    elif args.action == "deliveries":
        shown = client.webhook_deliveries(args.webhook_id)
        if not args.json:
            console().print(deliveries_table(shown))
            return 0
    else:  # ping
        shown = client.ping_webhook(args.webhook_id)
        if not args.json:
            print(f"{shown['id']}: ping queued (trainq webhooks deliveries {args.webhook_id})")
            return 0
    print(json.dumps(shown, indent=2))
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """`trainq webhooks` and its actions."""
    hooks = sub.add_parser("webhooks", help="URLs told of your jobs' and sweeps' state changes")
    actions = hooks.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[common], help="register a webhook URL")
    add.add_argument("target", metavar="URL", help="http(s) URL to POST the events to")
    add.add_argument("--event", action="append", metavar="TYPE",
                     help="only this event type (job.succeeded, job.*, sweep.*, ...); again "
                     "for more; all if left out")  # fmt: skip
    add.add_argument("--description", default="")
    actions.add_parser("list", parents=[common], help="your webhooks")
    for name, text in (("deliveries", "a webhook's delivery log, newest first"),
                       ("ping", "send a webhook a test event")):  # fmt: skip
        actions.add_parser(name, parents=[common], help=text).add_argument("webhook_id")
    hooks.set_defaults(func=run)
