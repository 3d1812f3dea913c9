"""`python -m shared.commands up|users|tokens ...`: the server's commands without the client."""

import sys

from shared.commands.cli import main

sys.exit(main(prog="python -m shared.commands"))
