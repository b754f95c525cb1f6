"""Render the keys mode's reference images from the Colab simulator's page.

    python tools/make_keys_images.py

They match the simulator (and Colab's English UI only roughly): users replace them with crops
of their own screen for their language and theme (see README, keys mode).
"""

import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageChops
from selenium.webdriver.common.by import By

from keepalive.hands.browser import BrowserConfig, open_browser, open_notebook, root_flags
from keepalive_sim.colab_sim import ColabSimulator

OUT = Path(__file__).resolve().parent.parent / "keepalive" / "hands" / "keys_images"


# The visible element whose own text starts with ``arguments[0]``, through every shadow root.
FIND_TEXT = """
const wanted = arguments[0];
function find(root) {
  for (const el of root.querySelectorAll("*")) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join("").trim();
    const box = el.getBoundingClientRect();
    if (own.startsWith(wanted) && box.width > 0 && box.height > 0) return el;
    const inner = el.shadowRoot && find(el.shadowRoot);
    if (inner) return inner;
  }
  return null;
}
return find(document);
"""


def shoot_text(driver, text: str, path: Path) -> None:
    """Screenshot the element that shows ``text``, whichever dialog generation the simulator renders."""
    deadline = time.monotonic() + 20
    while (element := driver.execute_script(FIND_TEXT, text)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"the simulator's page shows no {text!r}")
        time.sleep(0.2)
    element.screenshot(str(path))


def trim(path: Path, margin: int = 3) -> None:
    """Crop to the text: a template wider than the dialog on the user's screen would never match."""
    image = Image.open(path).convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((0, 0)))
    box = ImageChops.difference(image, background).getbbox()
    if box:
        left, top, right, bottom = box
        image.crop((max(0, left - margin), max(0, top - margin), right + margin, bottom + margin)).save(path)


def main() -> None:
    flags = [*root_flags(), "--disable-gpu"]
    sim = ColabSimulator([sys.executable, "-c", "import time; time.sleep(60)"], connect_seconds=0.2).start()
    driver = open_browser(BrowserConfig(headless=True, extra_args=flags), Path(tempfile.mkdtemp(prefix="keys-images-")))
    try:
        open_notebook(driver, sim.notebook_url)
        sim.show_captcha()
        shoot_text(driver, "Are you still there?", OUT / "captcha.png")
        sim.solve_captcha()
        sim.refuse_gpu(60)
        driver.find_element(By.CSS_SELECTOR, "colab-connect-button").shadow_root.find_element(By.CSS_SELECTOR, "#connect").click()
        shoot_text(driver, "Cannot connect to GPU backend", OUT / "gpu_limit.png")
        sim.sign_out()
        driver.get(sim.notebook_url)
        shoot_text(driver, "Sign in", OUT / "signin.png")
        for name in ("captcha", "gpu_limit", "signin"):
            trim(OUT / f"{name}.png")
    finally:
        driver.quit()
        sim.stop()


if __name__ == "__main__":
    main()
