"""``keepalive doctor``: open the notebook once and report what the page model sees.

It saves a screenshot and the page's HTML for a bug report (no cookies, no storage), so a user
can show what changed on Colab's page and correct a selector in their ``[page]`` config.
"""

from __future__ import annotations

import time
from pathlib import Path

from keepalive.hands.browser import private_dir, write_private
from keepalive.hands.selenium import SeleniumHands


def run_doctor(cfg, out_dir, settle_seconds: float = 5.0) -> dict:
    out_dir = Path(out_dir)
    if not out_dir.exists():  # a folder of its own is the user's only; a folder given that exists keeps its mode
        private_dir(out_dir)
    hands = SeleniumHands(cfg)
    hands.start()
    try:
        deadline = time.monotonic() + settle_seconds
        observation = hands.observe()
        while observation.state.value == "unknown" and time.monotonic() < deadline:
            time.sleep(0.5)
            observation = hands.observe()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        screenshot = out_dir / f"doctor-{stamp}.png"
        html = out_dir / f"doctor-{stamp}.html"
        # the signed-in page shows the account's e-mail and the notebook: readable by the user only
        write_private(screenshot, hands.driver.get_screenshot_as_png())
        write_private(html, hands.driver.page_source.encode("utf-8"))
        return {"state": observation.state.value, "detail": observation.detail, "found": observation.found,
                "url": hands.driver.current_url, "title": hands.driver.title,
                "screenshot": str(screenshot), "html": str(html)}
    finally:
        hands.close()


def render(report: dict) -> str:
    lines = [f"page state: {report['state']} ({report['detail']})", f"title: {report['title']}"]
    for name, seen in sorted(report["found"].items()):
        lines.append(f"  {'found' if seen else '-    '}  {name}")
    lines.append(f"screenshot: {report['screenshot']}")
    lines.append(f"page HTML: {report['html']}")
    return "\n".join(lines)
