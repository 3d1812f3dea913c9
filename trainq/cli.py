"""The `trainq` command: run the service, manage users, submit and follow jobs, use models."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from trainq.client import FINISHED, ApiError, Client


def _load_spec(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _metrics(metrics: dict[str, Any] | None) -> str:
    return " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in (metrics or {}).items()
    )


def _follow(client: Client, job_id: str, poll: float) -> int:
    shown = 0
    status = ""
    while True:
        job = client.get(job_id)
        if job["status"] != status and job["status"] not in FINISHED:
            print(f"{job_id}: {job['status']}", flush=True)
        for row in job["history"][shown:]:
            p = job["progress"]
            eta = f" eta {p['eta_seconds']:.0f}s" if p.get("eta_seconds") else ""
            print(
                f"  epoch {row['epoch']}/{p['epochs']} {_metrics(row['metrics'])} "
                f"({row['duration_s']:.1f}s){eta}",
                flush=True,
            )
        shown = len(job["history"])
        if job["status"] != status and job["status"] in FINISHED:
            print(f"{job_id}: {job['status']}", flush=True)
        status = job["status"]
        if status in FINISHED:
            break
        time.sleep(poll)
    if status == "succeeded":
        if job.get("test_metrics"):
            print(f"test: {_metrics(job['test_metrics'])}")
        return 0
    print(f"job {status}: {job.get('error') or ''}", file=sys.stderr)
    return 1


def _cmd_submit(client: Client, args: argparse.Namespace) -> int:
    job = client.submit(_load_spec(args.file))
    print(job["id"] if not args.json else json.dumps(job, indent=2), flush=True)
    return _follow(client, job["id"], args.poll) if args.follow else 0


def _cmd_status(client: Client, args: argparse.Namespace) -> int:
    job = client.get(args.job_id)
    if args.json:
        print(json.dumps(job, indent=2))
        return 0
    print(
        f"{job['id']}  {job['name']}  {job['status']}  {job['progress']['text']} "
        f"({job['progress']['percent']}%)"
    )
    for row in job["history"]:
        print(f"  epoch {row['epoch']}: {_metrics(row['metrics'])} ({row['duration_s']:.1f}s)")
    if job.get("test_metrics"):
        print(f"  test: {_metrics(job['test_metrics'])}")
    if job.get("error"):
        print(f"  error: {job['error']}")
    return 0


def _cmd_list(client: Client, args: argparse.Namespace) -> int:
    page = client.list(page=args.page, per_page=args.per_page, status=args.status)
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    print(f"{'ID':32}  {'STATUS':9}  {'PROGRESS':14}  NAME")
    for job in page["jobs"]:
        print(f"{job['id']:32}  {job['status']:9}  {job['progress']['text']:14}  {job['name']}")
    print(f"page {page['page']} of {max(page['pages'], 1)}, {page['total']} jobs")
    return 0


def _cmd_predict(client: Client, args: argparse.Namespace) -> int:
    if args.file.endswith(".npy"):
        import numpy as np

        instances = np.load(args.file, allow_pickle=False).tolist()
    else:
        data = json.loads(Path(args.file).read_text())
        instances = data["instances"] if isinstance(data, dict) else data
    predictions = client.predict(args.job_id, instances)
    if args.json:
        print(json.dumps(predictions, indent=2))
        return 0
    for i, pred in enumerate(predictions):
        best = max(pred["probabilities"])
        print(f"instance {i}: class {pred['class']} (probability {best:.4f})")
    return 0


def _cmd_download(client: Client, args: argparse.Namespace) -> int:
    out = args.output or f"trainq-{args.job_id}.{args.format}"
    print(client.download_model(args.job_id, out, fmt=args.format))
    return 0


def _cmd_up(_client: Client | None, _args: argparse.Namespace) -> int:
    from trainq.up import run

    return run()


def _cmd_admin(_client: Client | None, args: argparse.Namespace) -> int:
    from trainq.admin import run

    return run(args)


def _admin_commands(sub: Any) -> None:
    """`trainq users ...` and `trainq tokens ...`: administrators, where the service runs."""
    users = sub.add_parser("users", help="manage users (on the server)")
    tokens = sub.add_parser("tokens", help="manage API tokens (on the server)")
    users_sub = users.add_subparsers(dest="action", required=True)
    tokens_sub = tokens.add_subparsers(dest="action", required=True)
    commands = [
        (users_sub, "create", "create a user and print a new token", "name"),
        (users_sub, "list", "every user, their role and state", None),
        (users_sub, "disable", "disable a user: their tokens stop working at once", "name"),
        (users_sub, "enable", "enable a disabled user again", "name"),
        (tokens_sub, "create", "print a new token for a user", "user"),
        (tokens_sub, "list", "a user's tokens: id, prefix, state, expiry", "user"),
        (tokens_sub, "revoke", "revoke a token (id or prefix, as listed)", "token"),
    ]
    for group, action, text, arg in commands:
        cmd = group.add_parser(action, help=text)
        if arg:
            cmd.add_argument(arg)
        cmd.set_defaults(func=_cmd_admin, local=True)
        if group is users_sub and action == "create":
            cmd.add_argument("--admin", action="store_true", help="an administrator")
        if group is tokens_sub and action == "create":
            cmd.add_argument("--expires-in", type=float, metavar="DAYS", help="expire after DAYS")


def parser() -> argparse.ArgumentParser:
    """The command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="server URL (default $TRAINQ_URL or http://127.0.0.1:8000)")
    common.add_argument("--token", help="API token (default $TRAINQ_TOKEN or var/token)")
    common.add_argument("--json", action="store_true", help="print the API's JSON")
    p = argparse.ArgumentParser(prog="trainq", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("up", help="run the whole service here, in the foreground").set_defaults(
        func=_cmd_up, local=True
    )
    _admin_commands(sub)

    s = sub.add_parser(
        "submit", parents=[common], help="submit a job spec (JSON or YAML file, - for stdin)"
    )
    s.add_argument("file")
    s.add_argument("--follow", action="store_true", help="print epochs until the job ends")
    s.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    s.set_defaults(func=_cmd_submit)
    st = sub.add_parser("status", parents=[common], help="a job's status, progress and history")
    st.add_argument("job_id")
    st.set_defaults(func=_cmd_status)
    ls = sub.add_parser("list", parents=[common], help="your jobs, newest first")
    ls.add_argument("--page", type=int, default=1)
    ls.add_argument("--per-page", type=int, default=20)
    ls.add_argument("--status")
    ls.set_defaults(func=_cmd_list)
    pr = sub.add_parser(
        "predict", parents=[common], help="call a trained model on instances (.json or .npy)"
    )
    pr.add_argument("job_id")
    pr.add_argument("file")
    pr.set_defaults(func=_cmd_predict)
    dl = sub.add_parser("download", parents=[common], help="download a trained model")
    dl.add_argument("job_id")
    dl.add_argument("--format", choices=("keras", "h5"), default="keras")
    dl.add_argument("-o", "--output")
    dl.set_defaults(func=_cmd_download)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `trainq` command."""
    args = parser().parse_args(argv)
    client = None if getattr(args, "local", False) else Client(args.url, args.token)
    try:
        return int(args.func(client, args))
    except ApiError as exc:
        print(f"error: {exc.message} ({exc.status} {exc.code})", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
