"""The page of ``minipixel serve`` in a real browser: Debian's headless Chromium, driven
by Selenium, against a server on a free port in a thread (docs/serve.md). It samples from
an installed model and sees the grid fill frame by frame, sees the wavefront sampler draw
several rows at once, stops a sampling, draws strokes and completes them, completes a
picture given as a file, explores a pixel (the two receptive fields, the distribution, the
NLL map), a colour model and the masks, and sees an error from the server in the page. Each view is saved as a screenshot (MINIPIXEL_SCREENSHOTS=DIR keeps
them there; otherwise in pytest's temporary folder)."""
import math
import os
from pathlib import Path

import pytest

from minipixel import serve, serve_api
from minipixel.checkpoint import save_checkpoint
from minipixel.model import PixelCNNConfig, build_model

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(f"no headless browser: {CHROMIUM} and {CHROMEDRIVER} come with Debian's chromium and "
                "chromium-driver packages (apt-get install chromium chromium-driver; .ci/run installs them)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

WAIT = 60  # seconds a wait may take before it fails: generous, the CPU may be shared
UNDRAWN = [200, 70, 70]  # the page's colour of a position not drawn yet (app.js)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The installed models and two run folders of PixelCNNs with random weights: 28x28 grey
    (the wavefront sampler runs PixelCNN models only, and every installed model is gated)
    and 8x8 in colour, 4 levels (every installed model is grey)."""
    runs = tmp_path_factory.mktemp("runs")
    config = PixelCNNConfig(height=28, width=28, channels=1, levels=2, filters=8, blocks=1)
    save_checkpoint(runs / "tiny-pixelcnn" / "checkpoint.npz", build_model(config, seed=0))
    colour = PixelCNNConfig(height=8, width=8, channels=3, levels=4, filters=12, blocks=1)
    save_checkpoint(runs / "tiny-colour" / "checkpoint.npz", build_model(colour, seed=0))
    srv = serve.start(serve_api.Catalogue([runs]))
    srv.run_name, srv.colour_name = f"{runs.name}/tiny-pixelcnn", f"{runs.name}/tiny-colour"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                "--hide-scrollbars", "--disable-gpu"):
        options.add_argument(arg)
    # The driver's path given: Selenium Manager never looks for (or downloads) one. A browser
    # that is installed but does not start fails the tests: skipping would hide it in CI.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = os.environ.get("MINIPIXEL_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        return Path(folder)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(server, browser):
    """The page, fresh, with its model list read."""
    url = f"http://127.0.0.1:{server.server_port}/"
    browser.get(url)
    until(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")
    browser.url = url
    return browser


def shot(driver, path):
    """A screenshot of the whole page, below the fold too."""
    size = driver.get_window_size()
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], max(size["height"], height))
    try:
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])


def until(driver, condition, message=""):
    return WebDriverWait(driver, WAIT).until(condition, message)


def el(driver, id_):
    return driver.find_element(By.ID, id_)


def data(driver, id_, name):
    return el(driver, id_).get_attribute(f"data-{name}")


def set_value(driver, id_, value):
    """Type into a control as a person would: select all, type, leave it."""
    box = el(driver, id_)
    driver.execute_script("arguments[0].value = ''", box)
    box.send_keys(str(value))


def stream_done(driver, grid):
    until(driver, lambda d: data(d, grid, "state") in ("done", "error", "stopped"), f"#{grid} never finished")
    assert data(driver, grid, "state") == "done", f"#{grid}: {data(driver, grid, 'state')}; {el(driver, 'error').text}"


# The pixels of a canvas, read in the page: (R, G, B) at the centre of each of H x W cells.
CELLS = """
const [canvas, H, W] = arguments;
const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
const out = [];
for (let i = 0; i < H; i++) {
  const row = [];
  for (let j = 0; j < W; j++) {
    const x = Math.floor((j + 0.5) * canvas.width / W), y = Math.floor((i + 0.5) * canvas.height / H);
    const o = 4 * (y * canvas.width + x);
    row.push([px[o], px[o + 1], px[o + 2]]);
  }
  out.push(row);
}
return out;
"""


def cells(driver, canvas, H=28, W=28):
    return driver.execute_script(CELLS, canvas, H, W)


def count_colour(driver, canvas, rgb):
    return sum(cell == rgb for row in cells(driver, canvas) for cell in row)


def test_watch_fills_the_grid_as_the_sampler_draws_with_the_class_named(page, shots):
    Select(el(page, "model")).select_by_value("fashion-mnist-conditional")
    classes = Select(el(page, "class"))
    assert el(page, "class-label").is_displayed()
    assert [o.text for o in classes.options][7] == "7 Sneaker"
    classes.select_by_value("7")
    set_value(page, "watch-n", 8)
    el(page, "sample").click()
    stream_done(page, "watch-grid")
    tiles = page.find_elements(By.CSS_SELECTOR, "#watch-grid canvas")
    assert len(tiles) == 8
    # all cells drawn, none left in the colour of "not drawn yet", on the screen too
    assert int(data(page, "watch-grid", "filled")) == int(data(page, "watch-grid", "cells")) == 8 * 28 * 28
    assert all(count_colour(page, tile, UNDRAWN) == 0 for tile in tiles)
    # streamed, not one finished picture: several frames, painted while the images were partly drawn
    assert int(data(page, "watch-grid", "frames")) > 1
    assert int(data(page, "watch-grid", "partial-paints")) > 1
    assert int(data(page, "watch-grid", "max-partial-rows")) <= 1  # the cached sampler: row by row
    assert "Sneaker" in el(page, "watch-status").text
    # a sneaker at 8 grey levels: dark background, some bright pixels
    greys = [c[0] for row in cells(page, tiles[0]) for c in row]
    assert min(greys) == 0 and max(greys) > 100
    page.save_screenshot(str(shots / "watch.png"))
    # nothing fetched but the server's own files and endpoints
    fetched = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(url.startswith(page.url) for url in fetched), fetched


def test_the_wavefront_sampler_shows_several_rows_drawing_at_once(page, server, shots):
    Select(el(page, "model")).select_by_value(server.run_name)
    assert not el(page, "class-label").is_displayed()
    Select(el(page, "method")).select_by_value("wavefront")
    set_value(page, "watch-n", 4)
    el(page, "sample").click()
    stream_done(page, "watch-grid")
    assert int(data(page, "watch-grid", "max-partial-rows")) >= 2
    assert int(data(page, "watch-grid", "partial-paints")) > 1
    assert int(data(page, "watch-grid", "filled")) == 4 * 28 * 28
    page.save_screenshot(str(shots / "wavefront.png"))


def test_the_wavefront_is_offered_for_pixelcnn_models_only(page):
    Select(el(page, "model")).select_by_value("binarized-mnist")
    wavefront = el(page, "method").find_element(By.CSS_SELECTOR, "option[value=wavefront]")
    assert not wavefront.is_enabled()


def draw_a_seven(driver):
    """Strokes on the 280 x 280 drawing canvas, offsets from its centre: a bar near the
    top, then down to the bottom."""
    canvas = el(driver, "drawing")
    ActionChains(driver).move_to_element_with_offset(canvas, -80, -95).click_and_hold() \
        .move_by_offset(50, 0).move_by_offset(60, 0).move_by_offset(-30, 90).move_by_offset(-30, 90) \
        .release().perform()
    ActionChains(driver).move_to_element_with_offset(canvas, -40, 0).click_and_hold() \
        .move_by_offset(70, 0).release().perform()


def test_draw_and_complete_keeps_the_drawn_rows(page, shots):
    Select(el(page, "model")).select_by_value("binarized-mnist")
    el(page, "tab-complete").click()
    assert el(page, "view-complete").is_displayed() and not el(page, "view-watch").is_displayed()
    draw_a_seven(page)
    drawing = el(page, "drawing")
    assert int(drawing.get_attribute("data-ink")) > 20
    keep = 14
    page.execute_script("const r = arguments[0]; r.value = arguments[1]; r.dispatchEvent(new Event('input'))",
                        el(page, "keep-rows"), keep)
    assert el(page, "keep-rows-value").text == str(keep)
    set_value(page, "complete-n", 3)
    el(page, "complete").click()
    stream_done(page, "completions")
    assert int(data(page, "completions", "frames")) > 1 and int(data(page, "completions", "partial-paints")) > 1
    tiles = page.find_elements(By.CSS_SELECTOR, "#completions canvas")
    assert len(tiles) == 3
    drawn = cells(page, drawing)
    assert any(c == [255, 255, 255] for row in drawn[:keep] for c in row)  # ink in the kept rows
    for tile in tiles:
        shown = cells(page, tile)
        assert shown[:keep] == drawn[:keep]  # the kept rows, as drawn
        assert UNDRAWN not in [c for row in shown for c in row]
    # and the labels the page sent are the completions' kept rows
    sent, got = page.execute_script("const c = window.minipixel.completion; return [c.sent, c.labels]")
    assert all(image[:keep] == sent[:keep] for image in got)
    page.save_screenshot(str(shots / "complete.png"))
    # the drawing itself, explored
    el(page, "explore-drawing").click()
    until(page, lambda d: data(d, "nll-total", "total"))
    assert el(page, "explore-caption").text.startswith("the drawing")


def test_a_picture_given_is_completed_as_complete_image_converts_it(page, tmp_path):
    """A picture chosen with the file control (as a drop gives one) goes to the server as a
    PNG; the kept rows of the completions are the picture as `complete --image` reads it,
    and the drawing canvas showed it so."""
    import numpy as np
    from PIL import Image

    from minipixel.cli_pictures import _read_image_file

    ramp = np.zeros((28, 28, 3), np.uint8)
    across = np.linspace(0, 255, 28).astype(np.uint8)[None, :]
    ramp[:, :, 0], ramp[:, :, 1], ramp[:, :, 2] = across, across, 255 - across  # a colour ramp: grey as Pillow weighs it
    ramp[4:8, 3:25] = (40, 220, 90)
    picture = tmp_path / "ramp.png"
    Image.fromarray(ramp).save(picture)
    Select(el(page, "model")).select_by_value("fashion-mnist")
    el(page, "tab-complete").click()
    el(page, "picture").send_keys(str(picture))
    until(page, lambda d: int(data(d, "drawing", "ink")) > 0, "the picture never showed")
    keep = 10
    page.execute_script("const r = arguments[0]; r.value = arguments[1]; r.dispatchEvent(new Event('input'))",
                        el(page, "keep-rows"), keep)
    set_value(page, "complete-n", 2)
    el(page, "complete").click()
    stream_done(page, "completions")
    expected = _read_image_file(picture, PixelCNNConfig(height=28, width=28, channels=1, levels=8))
    got = page.execute_script("return window.minipixel.completion.labels")
    assert len(got) == 2 and all(np.array_equal(np.array(image)[:keep], expected[:keep]) for image in got)
    assert len(np.unique(expected[:keep])) >= 5  # the ramp spans the levels
    drawn = cells(page, el(page, "drawing"))
    for tile in page.find_elements(By.CSS_SELECTOR, "#completions canvas"):
        assert cells(page, tile)[:keep] == drawn[:keep]


def click_cell(driver, canvas, row, col, H=28, W=28):
    box = driver.execute_script("const b = arguments[0].getBoundingClientRect(); return [b.width, b.height]", canvas)
    dx = (col + 0.5) * box[0] / W - box[0] / 2
    dy = (row + 0.5) * box[1] / H - box[1] / 2
    ActionChains(driver).move_to_element_with_offset(canvas, round(dx), round(dy)).click().perform()


def test_explore_a_pixel_fields_distribution_and_nll(page, shots):
    Select(el(page, "model")).select_by_value("binarized-mnist")
    set_value(page, "watch-n", 2)
    el(page, "sample").click()
    stream_done(page, "watch-grid")
    row, col = 15, 12
    click_cell(page, page.find_elements(By.CSS_SELECTOR, "#watch-grid canvas")[1], row, col)
    until(page, lambda d: d.find_element(By.ID, "view-explore").is_displayed())
    until(page, lambda d: data(d, "distribution", "levels") == "2" and data(d, "field-gated", "row")
          and data(d, "field-pixelcnn", "row") and data(d, "nll-total", "total"), "Explore never filled in")

    # the two fields side by side, the target where clicked, the blind spot in PixelCNN's only
    fields = {arch: el(page, f"field-{arch}") for arch in ("pixelcnn", "gated")}
    for arch, canvas in fields.items():
        assert (canvas.get_attribute("data-row"), canvas.get_attribute("data-col")) == (str(row), str(col))
        assert int(canvas.get_attribute("data-seen")) > 50
        assert cells(page, canvas)[row][col] == [220, 30, 30], arch
        assert canvas.is_displayed()
    assert int(fields["pixelcnn"].get_attribute("data-blind")) > 0
    assert count_colour(page, fields["pixelcnn"], [70, 110, 230]) == int(fields["pixelcnn"].get_attribute("data-blind"))
    assert int(fields["gated"].get_attribute("data-blind")) == 0
    assert count_colour(page, fields["gated"], [70, 110, 230]) == 0
    left, right = (fields[a].location["x"] for a in ("pixelcnn", "gated"))
    assert left < right and fields["pixelcnn"].location["y"] == fields["gated"].location["y"]

    # the distribution over the model's 2 levels, summing to 1, the image's own level marked
    bars = page.find_elements(By.CSS_SELECTOR, "#distribution .bar")
    assert len(bars) == 2
    assert math.isclose(sum(float(b.get_attribute("data-p")) for b in bars), 1.0, abs_tol=1e-6)
    shown = [float(b.find_element(By.CLASS_NAME, "value").text.rstrip("%")) for b in bars]
    assert abs(sum(shown) - 100) <= 1
    level = page.execute_script("const e = window.minipixel.explore; return e.labels[e.row][e.col][0]")
    actual = page.find_elements(By.CSS_SELECTOR, "#distribution .bar.actual")
    assert [b.get_attribute("data-level") for b in actual] == [str(level)]

    # the NLL heat map and the image's total beside it
    total = float(data(page, "nll-total", "total"))
    assert 0 < total < 28 * 28 * math.log(2) * 4
    assert f"{total:.2f} nats" in el(page, "nll-total").text
    heat = cells(page, el(page, "nll-map"))
    assert len({tuple(c) for r in heat for c in r}) > 10  # a map, not one colour
    shot(page, shots / "explore.png")

    # another pixel of the same image: the fields follow
    click_cell(page, el(page, "explore-image"), 5, 20)
    until(page, lambda d: data(d, "field-pixelcnn", "row") == "5" and data(d, "field-gated", "col") == "20")
    assert not el(page, "error").is_displayed()


def test_a_colour_model_is_drawn_in_colour_and_explored_colour_by_colour(page, server):
    Select(el(page, "model")).select_by_value(server.colour_name)
    set_value(page, "watch-n", 2)
    el(page, "sample").click()
    stream_done(page, "watch-grid")
    tile = page.find_elements(By.CSS_SELECTOR, "#watch-grid canvas")[0]
    shown = cells(page, tile, 8, 8)
    labels = page.execute_script("return window.minipixel.sample.labels[0]")
    assert shown == [[[v * 255 // 3 for v in pixel] for pixel in row] for row in labels]  # 4 levels: 0, 85, 170, 255
    click_cell(page, tile, 6, 3, 8, 8)
    until(page, lambda d: data(d, "distribution", "levels") == "4" and data(d, "field-gated", "row") == "6")
    assert el(page, "channel-label").is_displayed()
    first = [b.get_attribute("data-p") for b in page.find_elements(By.CSS_SELECTOR, "#distribution .bar")]
    Select(el(page, "channel")).select_by_value("2")  # blue, given red and green there too
    until(page, lambda d: [b.get_attribute("data-p") for b in d.find_elements(By.CSS_SELECTOR, "#distribution .bar")]
          not in ([], first))
    actual = page.find_element(By.CSS_SELECTOR, "#distribution .bar.actual").get_attribute("data-level")
    assert actual == str(labels[6][3][2])


def test_the_masks_for_a_kernel_and_colours(page, shots):
    el(page, "tab-explore").click()
    until(page, lambda d: data(d, "masks", "kernel") == "7")
    Select(el(page, "mask-kernel")).select_by_visible_text("5")
    Select(el(page, "mask-colors")).select_by_value("3")
    until(page, lambda d: data(d, "masks", "kernel") == "5" and data(d, "masks", "colors") == "3")
    a, b = el(page, "mask-A"), el(page, "mask-B")
    assert a.size == b.size and a.size["width"] > 100
    # mask A and mask B differ (the centre taps), and both are drawn
    pixels = "const c = arguments[0]; return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)"
    pa, pb = page.execute_script(pixels, a), page.execute_script(pixels, b)
    assert pa != pb and len(set(pa)) > 5
    page.execute_script("arguments[0].scrollIntoView()", el(page, "masks"))
    page.save_screenshot(str(shots / "masks.png"))


def test_stop_ends_a_sampling_and_the_next_one_runs(page):
    Select(el(page, "model")).select_by_value("binarized-mnist")
    set_value(page, "watch-n", 64)
    el(page, "sample").click()
    until(page, lambda d: int(data(d, "watch-grid", "frames")) >= 1)
    el(page, "watch-stop").click()  # 64 images of the 20-layer model: far from done after one frame
    until(page, lambda d: data(d, "watch-grid", "state") != "streaming")
    assert data(page, "watch-grid", "state") == "stopped"
    assert int(data(page, "watch-grid", "filled")) < 64 * 28 * 28
    # at once again: the server stops the first at its next frame, the page waits for that
    set_value(page, "watch-n", 2)
    el(page, "sample").click()
    stream_done(page, "watch-grid")
    assert not el(page, "error").is_displayed()


def test_an_error_from_the_server_shows_in_the_page(page):
    Select(el(page, "model")).select_by_value("binarized-mnist")
    assert not el(page, "error").is_displayed()
    set_value(page, "temperature", -1)
    el(page, "sample").click()
    until(page, lambda d: d.find_element(By.ID, "error").is_displayed())
    assert "temperature" in el(page, "error").text and "-1" in el(page, "error").text
    assert data(page, "watch-grid", "state") == "error"

