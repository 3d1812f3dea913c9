"""`trainq models ...`: the model registry from a terminal (list, show, register, alias,
delete), each answer as a table or, with --json, the API's JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

from trainq.client import Client
from trainq.progress import console
from trainq.tables import Fitted, when


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a}→{v}" for a, v in aliases.items())


def models_table(models: list[dict[str, Any]]) -> Fitted:
    """Your models: name, versions, the latest, aliases, created."""
    out = Fitted(("NAME", "VERSIONS", "LATEST", "ALIASES", "CREATED"),
                 whole=("NAME", "VERSIONS", "LATEST"))  # fmt: skip
    for m in models:
        latest = "" if m["latest_version"] is None else str(m["latest_version"])
        out.add_row(m["name"], str(m["versions"]), latest, _aliases(m["aliases"]),
                    when(m["created_at"]))  # fmt: skip
    return out


def versions_table(model: dict[str, Any]) -> Fitted:
    """A model's versions: number, job, aliases, the test split's metrics, created."""
    out = Fitted(("VERSION", "JOB", "ALIASES", "TEST METRICS", "CREATED"),
                 whole=("VERSION", "JOB"))  # fmt: skip
    for v in model["versions"]:
        test = v["metrics"].get("test") or {}
        shown = " ".join(f"{k}={x:.4g}" if isinstance(x, float) else f"{k}={x}"
                         for k, x in test.items())  # fmt: skip
        out.add_row(str(v["version"]), v["job_id"], ", ".join(v["aliases"]), shown,
                    when(v["created_at"]))  # fmt: skip
    return out


def run(client: Client, args: argparse.Namespace) -> int:
    """One `trainq models` action."""
    out = console()
    if args.action == "list":
        listed = client.models()
        if args.json:
            print(json.dumps({"models": listed}, indent=2))
        else:
            out.print(models_table(listed))
    elif args.action == "show":
        model = client.model(args.name)
        if args.json:
            print(json.dumps(model, indent=2))
        else:
            out.print(f"{model['name']}  aliases: {_aliases(model['aliases']) or 'none'}",
                      markup=False)  # fmt: skip
            out.print(versions_table(model))
    elif args.action == "register":
        version = client.register_model(args.name, args.job_id)
        text = f"{version['name']} version {version['version']} (job {version['job_id']})"
        print(json.dumps(version, indent=2) if args.json else text)
    elif args.action == "alias":
        moved = client.set_alias(args.name, args.alias, args.version)
        text = f"{moved['name']}@{moved['alias']} → version {moved['version']}"
        print(json.dumps(moved, indent=2) if args.json else text)
    else:
        client.delete_model(args.name, version=args.version, alias=args.alias)
        what = (f"version {args.version} of " if args.version is not None else
                f"alias {args.alias} of " if args.alias is not None else "")  # fmt: skip
        print(f"deleted {what}{args.name}")
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """`trainq models` and its actions."""
    models = sub.add_parser("models", help="the model registry: names, versions, aliases")
    actions = models.add_subparsers(dest="action", required=True)
    actions.add_parser("list", parents=[common], help="your registered models")
    actions.add_parser("show", parents=[common], help="a model's versions and aliases") \
        .add_argument("name")  # fmt: skip
    register = actions.add_parser(
        "register", parents=[common], help="a succeeded job's model as the next version"
    )
    register.add_argument("name")
    register.add_argument("job_id")
    alias = actions.add_parser("alias", parents=[common], help="point an alias at a version")
    alias.add_argument("name")
    alias.add_argument("alias")
    alias.add_argument("version", type=int)
    delete = actions.add_parser(
        "delete", parents=[common], help="delete a model, one of its versions, or an alias"
    )
    delete.add_argument("name")
    which = delete.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="only this version (no alias may point at it)")
    which.add_argument("--alias", help="only this alias (its version stays)")
    models.set_defaults(func=run)
