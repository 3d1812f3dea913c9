"""The models page in real headless Chromium: reached from the header, it lists a registered
model's aliases and versions (each linked to its job) and shows an alias moved."""

from __future__ import annotations

import pytest
import requests

from tests.browser.test_sweeps import sign_in
from tests.browser.webdriver import chromium
from tests.live import Live, LiveStacks
from tests.support import wait_until
from tests.web.test_models_live import SPECS

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def live(live_stacks: LiveStacks) -> Live:
    return live_stacks.get("sqlite")


def test_the_models_page_lists_versions_and_aliases(live: Live) -> None:
    first, second = live.trained(*SPECS)
    base = f"{live.url}/api/v1/models/page-digits"
    for job_id in (first, second):
        r = requests.post(f"{base}/versions", json={"job_id": job_id}, headers=live.alice)
        assert r.status_code == 201, r.text
    requests.put(f"{base}/aliases/champion", json={"version": 1}, headers=live.alice)
    section = "section[data-model='page-digits']"
    with chromium() as browser:
        sign_in(browser, live)
        browser.get(f"{live.url}/")
        browser.click("#nav-models")
        wait_until(lambda: browser.run(f"return !!document.querySelector(\"{section}\")"),
                   30, "the model on the page")  # fmt: skip
        rows = browser.run(
            f'return [...document.querySelectorAll("{section} tbody tr")].map(r => '
            "[...r.cells].map(c => c.textContent).concat(r.querySelector('a').href))"
        )
        assert [r[0] for r in rows] == ["2", "1"]  # the newest first
        assert rows[1][2] == "champion" and rows[1][-1].endswith(f"/jobs/{first}")
        assert "accuracy=" in rows[1][3]
        assert browser.run(f"return document.querySelector(\"{section} .aliases\").textContent") \
            == "aliases: champion → 1"  # fmt: skip
        browser.screenshot("models")
        requests.put(f"{base}/aliases/champion", json={"version": 2}, headers=live.alice)
        wait_until(lambda: browser.run(
            f"return document.querySelector(\"{section} .aliases\").textContent")
            == "aliases: champion → 2", 10, "the moved alias")  # fmt: skip
