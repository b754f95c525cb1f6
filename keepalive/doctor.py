"""``keepalive doctor``: open the notebook once and report what the page model sees.

It saves a screenshot and the page's HTML for a bug report (no cookies, no storage), so a user
can show what changed on Colab's page and correct a selector in their ``[page]`` config.
"""

from __future__ import annotations

import time
from pathlib import Path

from keepalive.hands.selenium import SeleniumHands


def run_doctor(cfg, out_dir, settle_seconds: float = 5.0) -> dict:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
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
        hands.driver.save_screenshot(str(screenshot))
        html.write_text(hands.driver.page_source, encoding="utf-8")
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
