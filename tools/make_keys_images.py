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

from keepalive.hands.browser import BrowserConfig, open_browser, open_notebook
from keepalive_sim.colab_sim import ColabSimulator

OUT = Path(__file__).resolve().parent.parent / "keepalive" / "hands" / "keys_images"


def trim(path: Path, margin: int = 3) -> None:
    """Crop to the text: a template wider than the dialog on the user's screen would never match."""
    image = Image.open(path).convert("RGB")
    box = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
    if box:
        left, top, right, bottom = box
        image.crop((max(0, left - margin), max(0, top - margin), right + margin, bottom + margin)).save(path)


def main() -> None:
    flags = ["--no-sandbox", "--disable-gpu"]
    sim = ColabSimulator([sys.executable, "-c", "import time; time.sleep(60)"], connect_seconds=0.2).start()
    driver = open_browser(BrowserConfig(headless=True, extra_args=flags), Path(tempfile.mkdtemp(prefix="keys-images-")))
    try:
        open_notebook(driver, sim.notebook_url)
        sim.show_captcha()
        time.sleep(1.5)
        host = driver.find_element(By.CSS_SELECTOR, "colab-recaptcha-dialog")
        host.shadow_root.find_element(By.CSS_SELECTOR, "h2").screenshot(str(OUT / "captcha.png"))
        sim.solve_captcha()
        sim.refuse_gpu(60)
        driver.find_element(By.CSS_SELECTOR, "colab-connect-button").shadow_root.find_element(By.CSS_SELECTOR, "#connect").click()
        time.sleep(1.5)
        driver.find_element(By.CSS_SELECTOR, "mwc-dialog h2").screenshot(str(OUT / "gpu_limit.png"))
        sim.sign_out()
        driver.get(sim.notebook_url)
        time.sleep(1)
        driver.find_element(By.CSS_SELECTOR, "h1").screenshot(str(OUT / "signin.png"))
        for name in ("captcha", "gpu_limit", "signin"):
            trim(OUT / f"{name}.png")
    finally:
        driver.quit()
        sim.stop()


if __name__ == "__main__":
    main()
