"""The names a model and an alias may have: safe in a URL path (TF Serving's `:predict` too)."""

from __future__ import annotations

import re

from shared.errors import InvalidInput

MAX_LENGTH = 64
# Letters, digits, '.', '_' and '-', starting with a letter or digit: no '/', no ':'.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit"
# An alias that reads as a version number, or as the latest version, would be ambiguous.
RESERVED_ALIASES = ("latest",)


def check_model_name(name: str) -> str:
    """The model name, or 422 saying the rule."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"model name {name[:80]!r}: {RULE}", details={"field": "name"})
    return name


def check_alias(alias: str) -> str:
    """The alias, or 422 saying the rule (not all digits, not 'latest')."""
    if not _NAME.fullmatch(alias):
        raise InvalidInput(f"alias {alias[:80]!r}: {RULE}", details={"field": "alias"})
    if alias.isdigit() or alias.lower() in RESERVED_ALIASES:
        raise InvalidInput(
            f"alias {alias!r} would read as a version: an alias is not a number nor 'latest'",
            details={"field": "alias"},
        )
    return alias
