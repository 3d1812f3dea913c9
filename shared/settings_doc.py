"""docs/settings.md, rendered from the settings object (``shared.settings.Settings``).

    .venv/bin/python -m shared.settings_doc > docs/settings.md

Every field of ``Settings`` is one row: its environment variable, its default, the values it
takes and its description. ``tests/test_docs.py`` fails when docs/settings.md differs from what
``render()`` returns. Imports only the settings module (pydantic): no Flask, Celery or Keras.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic.fields import FieldInfo

from shared.settings import Settings

COMMAND = ".venv/bin/python -m shared.settings_doc > docs/settings.md"

_MIB = 1024 * 1024

_INTRO = f"""\
# Settings

Every setting of the server is a field of the one settings object, `Settings` in
[`shared/settings.py`](../shared/settings.py), read once per process from the environment: the
field `name` is the variable `TRAINQ_NAME`. Everything has a local default, so `make up` needs
none of them. A default of 0 or empty is worked out from the other settings, as the row says.
Booleans take `true`/`false` (or `1`/`0`, `yes`/`no`, `on`/`off`); a value outside its range
is refused with pydantic's message when the process first reads its settings.

The API processes, the workers, the periodic jobs and the administrator commands all read the
same variables: give them all the same environment (see [Operations](operations.md)).

This page is generated from the settings object; do not edit it by hand. After changing a
field (its description included), run:

```sh
{COMMAND}
```

## Server settings

| variable | default | values | what it does |
| --- | --- | --- | --- |
"""

_OTHERS_INTRO = """
## Other variables

These are not settings of the server; `Settings` does not read them.

| variable | read by | default | what it does |
| --- | --- | --- | --- |
"""

# (variable, read by, default, what it does)
_OTHERS = [
    (
        "`TRAINQ_URL`",
        "the `trainq` command and `trainq.Client` (`trainq/client.py`)",
        "`http://127.0.0.1:8000`",
        "the server to talk to; `--url` overrides it",
    ),
    (
        "`TRAINQ_TOKEN`",
        "the `trainq` command and `trainq.Client`",
        "the token in `<TRAINQ_VAR_DIR>/token` (`var/token`), where `make up` saves the first "
        "user's",
        "the API token to send; `--token` overrides it",
    ),
    (
        "`TRAINQ_TEST_POSTGRES`",
        "the tests (`tests/support.py`)",
        "`postgresql://postgres@127.0.0.1:5432/postgres`",
        "an administrator URL of the PostgreSQL server where the tests create and drop their "
        "own databases",
    ),
    (
        "`KERAS_HOME`",
        "the built-in datasets (`shared/datasets/builtin.py`)",
        "`~/.keras`",
        "where the files of `mnist`, `fashion_mnist` and `boston_housing` are looked for "
        "(see [Datasets](datasets.md#built-in-datasets))",
    ),
    (
        "`PROMETHEUS_MULTIPROC_DIR`",
        "`/metrics` (`web/metrics.py`)",
        "unset",
        "an empty folder in which several API processes add up their request counts; "
        "`trainq up` sets it to `<var_dir>/prometheus` (see [Operations](operations.md#metrics))",
    ),
]


def env_name(name: str) -> str:
    """The environment variable of a settings field."""
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def _default(name: str, field: FieldInfo) -> str:
    value = field.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        value = "" if value == Path("") else str(value)
    if value == "":
        return "empty"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = f"`{value}`"
    if isinstance(value, int) and name.endswith("_bytes") and value % _MIB == 0:
        text += f" ({value // _MIB} MiB)"
    if isinstance(value, int) and name.endswith("_seconds") and value >= 3600 and value % 3600 == 0:
        text += f" ({value // 3600} h)"
    return text


def _values(field: FieldInfo) -> str:
    kind: Any = field.annotation
    names = {bool: "true or false", int: "integer", float: "number", str: "text", Path: "path"}
    text = names.get(kind, getattr(kind, "__name__", str(kind)))
    bounds = []
    for item in field.metadata:
        for cls, attr, sign in ((Ge, "ge", "≥"), (Gt, "gt", ">"), (Le, "le", "≤"), (Lt, "lt", "<")):
            if isinstance(item, cls):
                bounds.append(f"{sign} {getattr(item, attr)}")
    return " ".join([text, ", ".join(bounds)]).strip()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def rows() -> list[str]:
    """One table row per settings field, in the order the class declares them."""
    lines = []
    for name, field in Settings.model_fields.items():
        description = field.description or "(no description)"
        lines.append(
            f"| `{env_name(name)}` | {_default(name, field)} | {_values(field)} "
            f"| {_cell(description)} |"
        )
    return lines


def render() -> str:
    """The whole of docs/settings.md."""
    others = ["| " + " | ".join(row) + " |" for row in _OTHERS]
    return _INTRO + "\n".join(rows()) + "\n" + _OTHERS_INTRO + "\n".join(others) + "\n"


def main() -> None:
    """Print docs/settings.md."""
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
