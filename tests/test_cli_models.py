"""`trainq models ...` and the SDK's registry calls against the running service, on the two
jobs the registry's live test trains (shared per stack): register, alias, list, show, predict
by name, delete; errors as the CLI's one line."""

from __future__ import annotations

import json
from typing import Any

import pytest

import trainq
from tests.live import Live, LiveStacks
from tests.support import ROOT
from tests.web.test_models_live import SPECS

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
DIGITS = json.loads((ROOT / "examples" / "three_digits.json").read_text())["instances"]


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    return live_stacks.get("sqlite")


def test_register_alias_show_list_delete(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = live.trained(*SPECS)
    code, out, err = live.cli(capsys, "models", "register", "cli-digits", first)
    assert (code, out.strip()) == (0, f"cli-digits version 1 (job {first})"), err
    code, out, _ = live.cli(capsys, "models", "register", "cli-digits", second, "--json")
    assert json.loads(out)["version"] == 2
    code, out, _ = live.cli(capsys, "models", "alias", "cli-digits", "champion", "1")
    assert (code, out.strip()) == (0, "cli-digits@champion → version 1")

    code, out, _ = live.cli(capsys, "models", "show", "cli-digits")
    lines = out.splitlines()
    assert lines[0] == "cli-digits  aliases: champion→1"
    assert lines[1].split()[:3] == ["VERSION", "JOB", "ALIASES"]
    assert lines[2].split()[:3] == ["1", first, "champion"] and "accuracy=" in lines[2]
    assert lines[3].split()[:2] == ["2", second]
    code, out, _ = live.cli(capsys, "models", "list")
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["cli-digits"])
    assert row[:4] == ["cli-digits", "2", "2", "champion→1"]

    code, _, err = live.cli(capsys, "models", "delete", "cli-digits", "--version", "1")
    assert code == 2 and "champion" in err and "(409 conflict)" in err
    code, _, err = live.cli(capsys, "models", "alias", "cli-digits", "7", "2")
    assert code == 2 and "(422 invalid_input)" in err
    code, out, _ = live.cli(capsys, "models", "delete", "cli-digits", "--alias", "champion")
    assert (code, out.strip()) == (0, "deleted alias champion of cli-digits")
    code, out, _ = live.cli(capsys, "models", "delete", "cli-digits")
    assert (code, out.strip()) == (0, "deleted cli-digits")
    code, _, err = live.cli(capsys, "models", "show", "cli-digits")
    assert code == 2 and "(404 not_found)" in err


def test_the_sdk_predicts_by_name_as_by_job(live: Live) -> None:
    first, second = live.trained(*SPECS)
    sdk = trainq.Client(live.url, live.alice["Authorization"].split(" ", 1)[1])
    assert sdk.register_model("sdk-digits", first)["version"] == 1
    assert sdk.register_model("sdk-digits", second)["version"] == 2
    assert sdk.set_alias("sdk-digits", "champion", 1)["job_id"] == first
    by_job = sdk.predict(first, DIGITS)
    answer: dict[str, Any] = sdk.predict_model("sdk-digits", DIGITS, alias="champion")
    assert answer == {"job_id": first, "predictions": by_job}
    assert sdk.predict_model("sdk-digits", DIGITS, version=1)["predictions"] == by_job
    assert sdk.predict_model("sdk-digits", DIGITS)["job_id"] == second  # the latest
    assert sdk.model("sdk-digits")["aliases"] == {"champion": 1}
    assert sdk.model_version("sdk-digits", 2)["job_id"] == second
    assert any(m["name"] == "sdk-digits" for m in sdk.models())
    with pytest.raises(trainq.Conflict):
        sdk.delete_model("sdk-digits", version=1)
    sdk.delete_model("sdk-digits", alias="champion")
    sdk.delete_model("sdk-digits", version=1)
    assert [v["version"] for v in sdk.model("sdk-digits")["versions"]] == [2]
    sdk.delete_model("sdk-digits")
    with pytest.raises(trainq.NotFound):
        sdk.model("sdk-digits")


def test_trainq_compare_prints_what_differs_and_the_metrics(
    live: Live, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = live.trained(*SPECS)  # the same spec but for the seed
    code, out, err = live.cli(capsys, "compare", first, second)
    assert code == 0, err
    lines = [line.strip() for line in out.splitlines()]
    assert any(line.split()[:3] == ["seed", "42", "7"] for line in lines), out
    assert "1 spec path(s) differ" in out
    assert any(line.startswith("loss ") and "(best" in line for line in lines), out
    assert any(line.startswith("test accuracy") for line in lines), out
    code, out, _ = live.cli(capsys, "compare", first, second, "--all")
    assert code == 0 and "fit.epochs" in out
    code, _, err = live.cli(capsys, "compare", first, "0" * 32)
    assert code == 2 and "not_found" in err
