"""The `trainq` command: run the service, manage users, submit and follow jobs and sweeps,
use models and the model registry."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import requests

from trainq import batch, compare, models, parts, sweeps, webhooks
from trainq.client import ApiError, Client
from trainq.progress import console, follow, metrics_text
from trainq.tables import Fitted, when


def _load_spec(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    if path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def _queued(client: Client, args: argparse.Namespace, job: dict[str, Any]) -> int:
    print(job["id"] if not args.json else json.dumps(job, indent=2), flush=True)
    return follow(client, job["id"]) if args.follow else 0


def _cmd_submit(client: Client, args: argparse.Namespace) -> int:
    return _queued(client, args, client.submit(_load_spec(args.file)))


def _cmd_rerun(client: Client, args: argparse.Namespace) -> int:
    return _queued(client, args, client.rerun(args.job_id))


def _cmd_follow(client: Client, args: argparse.Namespace) -> int:
    return follow(client, args.job_id)


def _cmd_cancel(client: Client, args: argparse.Namespace) -> int:
    job = client.cancel(args.job_id)
    if args.json:
        print(json.dumps(job, indent=2))
    elif job["status"] == "running":  # it stops after its current batch
        print(f"{job['id']}: cancel requested; it stops after its current batch and keeps the "
              "model of its last finished epoch, if any")  # fmt: skip
    else:
        print(f"{job['id']}: {job['status']}")
    return 0


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
        print(f"  epoch {row['epoch']}: {metrics_text(row['metrics'])} ({row['duration_s']:.1f}s)")
    if job.get("test_metrics"):
        print(f"  test: {metrics_text(job['test_metrics'])}")
    if job.get("error"):
        print(f"  error: {job['error']}")
    return 0


def _jobs_table(jobs: list[dict[str, Any]], narrow: bool = False) -> Fitted:
    """The jobs, one a line; ``narrow`` (for a terminal narrower than the whole table) leaves
    out the bar and shortens the creation time."""
    headers = ["ID", "STATUS", "PROGRESS", *([] if narrow else [""]), "CREATED", "NAME"]
    table = Fitted(headers, whole=("ID", "STATUS", *(["CREATED"] if narrow else [])))
    for job in jobs:
        p = job["progress"]
        filled = round(p["percent"] / 10)
        bar = [] if narrow else ["#" * filled + "." * (10 - filled)]
        created = when(job["created_at"])
        table.add_row(job["id"], job["status"], p["text"], *bar,
                      created[5:16] if narrow else created, job["name"])  # fmt: skip
    return table


def _cmd_list(client: Client, args: argparse.Namespace) -> int:
    page = client.list(
        page=args.page, per_page=args.per_page, status=args.status, name=args.name,
        created_after=args.since, created_before=args.until,
    )  # fmt: skip
    if args.json:
        print(json.dumps(page, indent=2))
        return 0
    out = console()
    table = _jobs_table(page["jobs"])
    if table.width > out.width:
        table = _jobs_table(page["jobs"], narrow=True)
    out.print(table)
    out.print(f"page {page['page']} of {max(page['pages'], 1)}, {page['total']} jobs")
    return 0


def _instances(files: list[str], rgb: bool) -> list[Any]:
    instances: list[Any] = []
    for name in files:
        if name.endswith(".npy"):
            import numpy as np

            instances.extend(np.load(name, allow_pickle=False).tolist())
        elif name.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".gif")):
            try:
                from PIL import Image
            except ImportError as exc:
                raise SystemExit("reading images needs Pillow: pip install pillow") from exc
            with Image.open(name) as image:
                pixels = image.convert("RGB" if rgb else "L")
                width, height = pixels.size
                data = list(pixels.getdata())
            row = width
            instances.append([data[i : i + row] for i in range(0, width * height, row)])
        else:
            data = json.loads(Path(name).read_text())
            instances.extend(data["instances"] if isinstance(data, dict) else data)
    return instances


def _cmd_predict(client: Client, args: argparse.Namespace) -> int:
    instances = _instances(args.files, args.rgb)
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


def _cmd_datasets(client: Client, args: argparse.Namespace) -> int:
    if args.action == "upload":
        result = client.upload_dataset(args.file, name=args.name, progress=sys.stderr.isatty(),
                                       resume=args.resume)  # fmt: skip
        # Its id, as a job's spec names it: {"dataset": {"id": ...}}.
        print(json.dumps(result, indent=2) if args.json else result["id"])
        return 0
    result = client.list_datasets()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    table = Fitted(("ID", "NAME", "ARRAYS", "TRAIN", "TEST", "SIZE", "CREATED"), whole=("ID",))
    for d in result["datasets"]:
        arrays = " ".join(f"{k}{tuple(a['shape'])}" for k, a in d["arrays"].items())
        test = "" if d["n_test"] is None else str(d["n_test"])
        table.add_row(d["id"], d["name"], arrays, str(d["n_train"]), test,
                      f"{d['size_bytes'] / 1e6:.1f} MB", when(d["created_at"]))  # fmt: skip
    console().print(table)
    return 0


def _cmd_sweep(client: Client, args: argparse.Namespace) -> int:
    if args.action == "submit":
        sweep = client.submit_sweep(_load_spec(args.file))
        print(sweep["id"] if not args.json else json.dumps(sweep, indent=2), flush=True)
        return sweeps.follow(client, sweep["id"]) if args.follow else 0
    if args.action == "follow":
        return sweeps.follow(client, args.sweep_id)
    if args.action == "list":
        listed = client.list_sweeps()
        if args.json:
            print(json.dumps(listed, indent=2))
        else:
            console().print(sweeps.sweeps_table(listed["sweeps"]))
        return 0
    if args.action == "cancel":
        sweep = client.cancel_sweep(args.sweep_id)
        state = "stopping (its running trials after their batch)"
        state = state if sweep["status"] == "running" else sweep["status"]
        print(json.dumps(sweep, indent=2) if args.json else f"{sweep['id']}: {state}")
        return 0
    if args.json:
        print(json.dumps(client.get_sweep(args.sweep_id), indent=2))
        return 0
    return sweeps.status(client, args.sweep_id)


def _sweep_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    sw = sub.add_parser("sweep", help="submit, follow and cancel hyperparameter sweeps")
    sw_sub = sw.add_subparsers(dest="action", required=True)
    s = sw_sub.add_parser(
        "submit", parents=[common], help="submit a sweep (JSON or YAML file, - for stdin)"
    )
    s.add_argument("file")
    s.add_argument("--follow", action="store_true", help="show the trials live until the end")
    for name, text in (
        ("status", "a sweep's trials as a table, the best one marked"),
        ("follow", "show a sweep's trials live until it ends, then its best trial"),
        ("cancel", "stop a sweep: no more trials, running ones after their batch"),
    ):
        sw_sub.add_parser(name, parents=[common], help=text).add_argument("sweep_id")
    sw_sub.add_parser("list", parents=[common], help="your sweeps, newest first")
    sw.set_defaults(func=_cmd_sweep)


# Commands of the server itself, run where it runs; its `shared.commands.cli` reads their
# arguments. The client finds it by name when the server is installed beside it.
SERVER_COMMANDS = {
    "up": "run the whole service here, in the foreground",
    "users": "manage users (on the server)",
    "worker": "run a training worker here that joins a service running elsewhere",
    "tokens": "manage API tokens (on the server)",
}
SERVER_CLI = "shared.commands.cli"


def _server_command(argv: list[str]) -> int:
    """Hand `trainq up|worker|users|tokens ...` to the server's commands, or say they are not
    here."""
    try:
        commands = importlib.import_module(SERVER_CLI)
    except ModuleNotFoundError as exc:
        parts = SERVER_CLI.split(".")
        if exc.name not in {".".join(parts[:n]) for n in range(1, len(parts) + 1)}:
            raise  # the server is there, but something it imports is not
        print(
            f"error: `trainq {argv[0]}` is a command of the trainq server, which is not installed "
            "here (this is the client alone).\nRun it in a checkout of trainq after `make "
            f"install` (.venv/bin/trainq {argv[0]}), or in the service's container "
            f"(docker compose run --rm web trainq {argv[0]} ...).",
            file=sys.stderr,
        )
        return 2
    return int(commands.main(argv))


def parser() -> argparse.ArgumentParser:
    """The command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="server URL (default $TRAINQ_URL or http://127.0.0.1:8000)")
    common.add_argument("--token", help="API token (default $TRAINQ_TOKEN or var/token)")
    common.add_argument("--json", action="store_true", help="print the API's JSON")
    p = argparse.ArgumentParser(prog="trainq", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    for name, text in SERVER_COMMANDS.items():  # main() hands these over before parsing
        sub.add_parser(name, help=text, add_help=False).add_argument(
            "args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS
        )

    s = sub.add_parser(
        "submit", parents=[common], help="submit a job spec (JSON or YAML file, - for stdin)"
    )
    s.add_argument("file")
    s.add_argument("--follow", action="store_true", help="show the epochs live until the end")
    s.set_defaults(func=_cmd_submit)
    r = sub.add_parser(
        "rerun", parents=[common], help="run a job again: its spec, its seed, the same data"
    )
    r.add_argument("job_id")
    r.add_argument("--follow", action="store_true", help="show the epochs live until the end")
    r.set_defaults(func=_cmd_rerun)
    f = sub.add_parser("follow", parents=[common], help="show a job's epochs live until the end")
    f.add_argument("job_id")
    f.set_defaults(func=_cmd_follow)
    st = sub.add_parser("status", parents=[common], help="a job's status, progress and history")
    st.add_argument("job_id")
    st.set_defaults(func=_cmd_status)
    ls = sub.add_parser("list", parents=[common], help="your jobs, newest first, as a table")
    ls.add_argument("--page", type=int, default=1)
    ls.add_argument("--per-page", type=int, default=20)
    ls.add_argument("--status", help="only jobs with this status (queued, running, succeeded...)")
    ls.add_argument("--name", help="only jobs whose name holds this (any case)")
    when = "a date (2026-12-01) or a date and time (2026-12-01T09:30), UTC"
    ls.add_argument("--since", metavar="WHEN", help=f"only jobs created at or after {when}")
    ls.add_argument("--until", metavar="WHEN", help=f"only jobs created before {when}")
    ls.set_defaults(func=_cmd_list)
    c = sub.add_parser("cancel", parents=[common], help="cancel a queued or running job")
    c.add_argument("job_id")
    c.set_defaults(func=_cmd_cancel)
    pr = sub.add_parser(
        "predict", parents=[common], help="call a trained model on .json, .npy or image files"
    )
    pr.add_argument("job_id")
    pr.add_argument("files", nargs="+", metavar="file")
    pr.add_argument("--rgb", action="store_true", help="read images as RGB, not grayscale")
    pr.set_defaults(func=_cmd_predict)
    dl = sub.add_parser("download", parents=[common], help="download a trained model")
    dl.add_argument("job_id")
    dl.add_argument("--format", choices=("keras", "h5"), default="keras")
    dl.add_argument("-o", "--output")
    dl.set_defaults(func=_cmd_download)
    ds = sub.add_parser("datasets", help="upload and list your datasets")
    ds_sub = ds.add_subparsers(dest="action", required=True)
    up = ds_sub.add_parser("upload", parents=[common], help="upload a .npz dataset")
    up.add_argument("file")
    up.add_argument("--name")
    up.add_argument(
        "--resume",
        metavar="UPLOAD_ID",
        help="go on with an interrupted upload in parts (its id is in the message)",
    )
    up.set_defaults(func=_cmd_datasets)
    ds_sub.add_parser("list", parents=[common], help="your datasets").set_defaults(
        func=_cmd_datasets
    )
    _sweep_parser(sub, common)
    models.add_parser(sub, common)
    webhooks.add_parser(sub, common)
    compare.add_parser(sub, common)
    batch.add_parser(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `trainq` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SERVER_COMMANDS:
        return _server_command(argv)
    args = parser().parse_args(argv)
    client = Client(args.url, args.token)
    try:
        return int(args.func(client, args))
    except ApiError as exc:
        print(f"error: {exc.message} ({exc.status} {exc.code})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except parts.UploadInterrupted as exc:  # before ConnectionError: it says how to go on
        print(f"error: {exc} (trainq datasets upload FILE --resume {exc.upload_id})",
              file=sys.stderr)  # fmt: skip
        return 2
    except requests.ConnectionError as exc:
        print(
            f"error: cannot reach the trainq server at {client.url} ({_reason(exc)}); is it "
            "running? Give its address with --url or TRAINQ_URL.",
            file=sys.stderr,
        )
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _reason(exc: requests.ConnectionError) -> str:
    """Why a connection failed, without urllib3's wrapping ("[Errno 111] Connection refused")."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    text = str(reason or exc).rsplit("): ", 1)[-1]
    return text.removeprefix("Failed to establish a new connection: ")


if __name__ == "__main__":
    sys.exit(main())
