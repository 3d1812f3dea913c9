"""Job specs used across the tests."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.support import ROOT

QUICKSTART: dict[str, Any] = json.loads((ROOT / "examples" / "quickstart.json").read_text())


def quickstart(**fit: Any) -> dict[str, Any]:
    """The README's quickstart spec, with fit parameters overridden."""
    spec = copy.deepcopy(QUICKSTART)
    spec["fit"].update(fit)
    return spec
