"""The README's picture of `minipixel serve`: the page in headless Chromium, sampling 16
digits from the installed binarized-mnist model, caught while the sampler draws.

    python scripts/serve_screenshot.py                 # writes docs/serve.png
    python scripts/serve_screenshot.py --out page.png

Needs Debian's chromium and chromium-driver packages and selenium (the test extra). It
starts the server on a free port in this process, opens the page at a fixed size, presses
Sample and takes the screenshot once about half of the sub-pixels are drawn (the rest
still red-grey), then keeps the picture small: 64 colours, optimised PNG.
"""
import argparse
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
VIEW = (1232, 530)  # the page's visible part: the controls and two rows of eight digits
UNDRAWN = (200, 70, 70)  # the page's colour of a position not drawn yet

# Resolves once the grid is between `low` and `high` drawn (or the stream ends), so the
# screenshot follows at once, while the sampler is still at work.
HALF_DRAWN = """
const [low, high, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
const grid = document.getElementById("watch-grid");
const check = () => {
  const part = Number(grid.dataset.filled) / Math.max(1, Number(grid.dataset.cells));
  if ((part >= low && part <= high) || grid.dataset.state !== "streaming") { observer.disconnect(); done(part); }
};
const observer = new MutationObserver(check);
observer.observe(grid, { attributes: true });
check();
"""


def screenshot(out, seed):
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from minipixel import serve, serve_api

    server = serve.start(serve_api.Catalogue())
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # a given driver: nothing downloaded
    try:
        driver.set_script_timeout(120)
        driver.get(f"http://127.0.0.1:{server.server_port}/")
        # a window size counts the browser's own frame: size the window so the page shows VIEW
        frame = driver.execute_script("return [outerWidth - innerWidth, outerHeight - innerHeight]")
        driver.set_window_size(VIEW[0] + frame[0], VIEW[1] + frame[1])
        WebDriverWait(driver, 60).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
        Select(driver.find_element(By.ID, "model")).select_by_value("binarized-mnist")
        for name, value in (("watch-n", 16), ("seed", seed)):
            box = driver.find_element(By.ID, name)
            box.clear()
            box.send_keys(str(value))
        for attempt in range(5):  # the picture is taken while the sampler is at work: try again if it finished first
            driver.find_element(By.ID, "sample").click()
            part = driver.execute_async_script(HALF_DRAWN, 0.4, 0.75)
            png = driver.get_screenshot_as_png()
            WebDriverWait(driver, 120).until(
                lambda d: d.find_element(By.ID, "watch-grid").get_attribute("data-state") != "streaming")
            picture = Image.open(io.BytesIO(png)).convert("RGB")
            if 0.4 <= part <= 0.75 and UNDRAWN in {c for _, c in picture.getcolors(1 << 20)}:
                break
        else:
            raise SystemExit("the sampler finished before every screenshot: try on a less busy machine")
    finally:
        driver.quit()
        server.shutdown()
        server.server_close()
    small = picture.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out.parent.mkdir(parents=True, exist_ok=True)
    small.save(out, optimize=True)
    print(f"wrote {out} ({picture.width}x{picture.height}, {out.stat().st_size // 1024} KB, "
          f"{part:.0%} of the sub-pixels drawn)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "serve.png", help="the PNG (default docs/serve.png)")
    parser.add_argument("--seed", type=int, default=1, help="the sampler's seed (default 1)")
    args = parser.parse_args()
    screenshot(args.out, args.seed)


if __name__ == "__main__":
    main()
