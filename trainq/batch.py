"""`trainq batch ...`: batch predictions from a terminal (submit, follow with a progress bar,
status, list, download, cancel, delete); tables, or the API's JSON with --json."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from trainq.batch_api import ENDED
from trainq.client import Client
from trainq.progress import console
from trainq.tables import Fitted, when


def _model(b: dict[str, Any]) -> str:
    return str(b["model_job_id"])[:8]


def batches_table(batches: list[dict[str, Any]]) -> Fitted:
    """Your batch predictions: id, status, chunks, rows, bad rows, model, created."""
    out = Fitted(("ID", "STATUS", "CHUNKS", "ROWS", "BAD ROWS", "MODEL JOB", "CREATED"),
                 whole=("ID", "STATUS", "CHUNKS"))  # fmt: skip
    for b in batches:
        p = b["progress"]
        out.add_row(b["id"], b["status"], f"{p['chunks_done']}/{p['chunks_total']}",
                    str(b["rows"]), str(b["bad_rows_count"]), _model(b),
                    when(b["created_at"]))  # fmt: skip
    return out


def show(b: dict[str, Any]) -> None:
    """One batch prediction, as lines."""
    out = console()
    p = b["progress"]
    out.print(f"{b['id']}: {b['status']}, chunk {p['chunks_done']} of {p['chunks_total']} "
              f"({b['rows']} rows, {b['chunk_rows']} a chunk), model of job "
              f"{b['model_job_id']}", markup=False)  # fmt: skip
    if b["bad_rows_count"]:
        shown = ", ".join(f"{r['index']} ({r['reason']})" for r in b["bad_rows"][:10])
        out.print(f"bad rows: {b['bad_rows_count']}: {shown}", markup=False)
    if b.get("error"):
        out.print(f"error: {b['error']}", markup=False)


def follow(client: Client, batch_id: str) -> int:
    """Show a batch prediction live until it ends; 0 if it succeeded, 1 with why if not."""
    out = console()
    total = client.batch_prediction(batch_id)["progress"]["chunks_total"]
    columns = (TextColumn("{task.description:9}"), BarColumn(bar_width=30),
               MofNCompleteColumn(), TextColumn("{task.fields[bad]}"))  # fmt: skip
    with Progress(*columns, console=out, disable=not out.is_terminal) as bar:
        task = bar.add_task("queued", total=total, bad="")
        for event in client.follow_batch_prediction(batch_id):
            if event["type"] == "status":
                out.print(f"{batch_id}: {event['status']}", markup=False)
                bar.update(task, description=event["status"])
            elif event["type"] == "chunk":
                bad = f"{event['bad_rows']} bad rows" if event["bad_rows"] else ""
                bar.update(task, completed=event["chunks_done"], bad=bad)
                if not out.is_terminal:
                    out.print(f"  chunk {event['chunks_done']}/{total} ({event['rows']} rows"
                              f"{', ' + bad if bad else ''})", markup=False)  # fmt: skip
    final = client.batch_prediction(batch_id)
    if final["status"] == "succeeded":
        out.print(f"{final['rows']} rows predicted, {final['bad_rows_count']} bad: "
                  f"trainq batch download {batch_id} FILE", markup=False)  # fmt: skip
        return 0
    console(stderr=True).print(f"batch prediction {final['status']}: {final.get('error') or ''}",
                               markup=False)  # fmt: skip
    sys.stderr.flush()
    return 1


def run(client: Client, args: argparse.Namespace) -> int:
    """Run one `trainq batch` action."""
    shown: Any
    if args.action == "submit":
        shown = client.batch_predict(
            args.dataset, dataset_id=args.dataset_id, job_id=args.job, model=args.model,
            version=args.version, alias=args.alias, split=args.split,
            chunk_rows=args.chunk_rows, name=args.name,
        )  # fmt: skip
        print(shown["id"] if not args.json else json.dumps(shown, indent=2), flush=True)
        return follow(client, shown["id"]) if args.follow else 0
    if args.action == "follow":
        return follow(client, args.batch_id)
    if args.action == "download":
        path = client.download_batch_result(args.batch_id, args.path)
        print(path)
        return 0
    if args.action == "delete":
        client.delete_batch_prediction(args.batch_id)
        return 0
    if args.action == "list":
        shown = client.batch_predictions()
        if not args.json:
            console().print(batches_table(shown))
            return 0
    else:  # status, cancel
        call = client.batch_prediction if args.action == "status" else (
            client.cancel_batch_prediction
        )  # fmt: skip
        shown = call(args.batch_id)
        if not args.json:
            show(shown)
            return 0 if shown["status"] not in ENDED or shown["status"] == "succeeded" else 1
    print(json.dumps(shown, indent=2))
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """`trainq batch submit|follow|status|list|download|cancel|delete`."""
    b = sub.add_parser("batch", help="predict every row of a dataset with a model, as a job")
    b_sub = b.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = b_sub.add_parser(
        "submit", parents=[common],
        help="queue a batch prediction: a job's model (--job) or a registered one (--model)",
    )  # fmt: skip
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", help="the succeeded job whose model predicts")
    which.add_argument("--model", help="a registered model's name")
    at = s.add_mutually_exclusive_group()
    at.add_argument("--version", type=int, help="with --model: this version")
    at.add_argument("--alias", help="with --model: the version this alias points at")
    data = s.add_mutually_exclusive_group(required=True)
    data.add_argument("--dataset", help="a built-in dataset's name, e.g. mnist-sample")
    data.add_argument("--dataset-id", help="an uploaded dataset's id")
    s.add_argument("--split", choices=["train", "test"], help="one split (default: all rows)")
    s.add_argument("--chunk-rows", type=int, help="rows a chunk (the server's by default)")
    s.add_argument("--name", help="a name for it")
    s.add_argument("--follow", action="store_true", help="show its progress until it ends")
    s.set_defaults(func=run)
    for name, text in (
        ("follow", "show a batch prediction's progress until it ends"),
        ("status", "a batch prediction's status, progress and bad rows"),
        ("cancel", "cancel a queued or running batch prediction"),
        ("delete", "delete a finished batch prediction and its result"),
    ):
        b_sub.add_parser(name, parents=[common], help=text).add_argument("batch_id")
    d = b_sub.add_parser("download", parents=[common], help="save a batch prediction's .npz")
    d.add_argument("batch_id")
    d.add_argument("path", help="where to save it (.npz)")
    b_sub.add_parser("list", parents=[common], help="your batch predictions, newest first")
    b.set_defaults(func=run)
