"""The server's command line: `trainq up`, `trainq worker`, `trainq users ...`, `trainq tokens ...`.

Reading it imports nothing but argparse; a command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

# The top-level commands, with the help `trainq --help` shows for them.
COMMANDS = {
    "up": "run the whole service here, in the foreground",
    "worker": "run a training worker here that joins a service running elsewhere",
    "users": "manage users (on the server)",
    "tokens": "manage API tokens (on the server)",
}


def _up(_args: argparse.Namespace) -> int:
    from shared.commands.up import run

    return run()


def _worker(args: argparse.Namespace) -> int:
    from shared.commands.worker import run

    return run(args)


def _admin(args: argparse.Namespace) -> int:
    from shared.commands.admin import run

    return run(args)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `up`, `worker`, `users ...` and `tokens ...` to a parser's subcommands."""
    sub.add_parser("up", help=COMMANDS["up"]).set_defaults(run=_up)
    worker = sub.add_parser("worker", help=COMMANDS["worker"])
    worker.set_defaults(run=_worker)
    worker.add_argument("--database-url", help="the service's database ($TRAINQ_DATABASE_URL)")
    worker.add_argument("--redis-url", help="the service's Redis ($TRAINQ_REDIS_URL)")
    worker.add_argument("--storage-url", help="the service's store ($TRAINQ_STORAGE_URL)")
    worker.add_argument(
        "--name", default="train", help="the worker's name on this host (two need two names)"
    )
    users = sub.add_parser("users", help=COMMANDS["users"])
    tokens = sub.add_parser("tokens", help=COMMANDS["tokens"])
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
        cmd.set_defaults(run=_admin)
        if group is users_sub and action == "create":
            cmd.add_argument("--admin", action="store_true", help="an administrator")
        if group is tokens_sub and action == "create":
            cmd.add_argument("--expires-in", type=float, metavar="DAYS", help="expire after DAYS")


def parser(prog: str = "trainq") -> argparse.ArgumentParser:
    """The server's commands on their own."""
    p = argparse.ArgumentParser(prog=prog, description="The trainq service's own commands.")
    add_commands(p.add_subparsers(dest="command", required=True))
    return p


def main(argv: Sequence[str] | None = None, prog: str = "trainq") -> int:
    """Run one of the server's commands (argv as after `trainq`, e.g. ["users", "list"])."""
    args = parser(prog).parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
