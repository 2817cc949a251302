"""``minipixel serve``: every endpoint over HTTP, against a server on a free port in a
thread, with what it must answer and what it must refuse (docs/serve.md)."""
import base64
import http.client
import io
import json
import socket
import struct
import time
import urllib.error
import urllib.request
import zlib

import numpy as np
import pytest
from PIL import Image

from minipixel import pretrained, serve, serve_api
from minipixel.checkpoint import load_model, save_checkpoint
from minipixel.cli import build_parser, main
from minipixel.cli_pictures import _read_image_file
from minipixel.evaluate import evaluate
from minipixel.masks import conv_mask
from minipixel.model import PixelCNNConfig, build_model
from minipixel.sampling import complete, sample
from minipixel.viz import receptive_field

SMALL = "fashion-mnist"  # the smallest installed model: 28x28, 8 levels, gated
CONDITIONAL = "fashion-mnist-conditional"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with the installed models, one run folder (an 8x8 PixelCNN, 4 levels, random
    weights: varied samples) and a page folder of its own."""
    runs = tmp_path_factory.mktemp("runs")
    config = PixelCNNConfig(height=8, width=8, channels=1, levels=4, filters=8, blocks=1)
    save_checkpoint(runs / "tiny" / "checkpoint.npz", build_model(config, seed=3))
    (runs / "notes").mkdir()  # a folder without a checkpoint: no model
    web = tmp_path_factory.mktemp("web")
    (web / "index.html").write_text("<!doctype html><p>the page</p>")
    (web / "app.js").write_text("let x = 1;")
    (web / "sub").mkdir()
    (web / "sub" / "secret.js").write_text("no")
    (web.parent / "secret.txt").write_text("no")  # beside the page's folder: what a path with .. would reach
    srv = serve.start(serve_api.Catalogue([runs]), web=web)
    srv.run_name = f"{runs.name}/tiny"
    srv.run_path = runs / "tiny"
    yield srv
    srv.shutdown()
    srv.server_close()


def call(server, path, body=None, method=None, data=None, headers=None):
    """(status, answer, headers): the answer parsed as JSON, or a stream's lines as a list."""
    if body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{server.server_port}{path}", data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read().decode()
            status, got = r.status, r.headers
    except urllib.error.HTTPError as err:
        text, status, got = err.read().decode(), err.code, err.headers
    if got["Content-Type"] == "application/x-ndjson":
        return status, [json.loads(line) for line in text.splitlines()], got
    return status, (json.loads(text) if got["Content-Type"] == "application/json" else text), got


def refused(server, path, body=None, **kwargs):
    """(status, error) of a refused request, checking that the answer is one line of JSON, the error alone."""
    status, answer, got = call(server, path, body, **kwargs)
    assert 400 <= status < 500 and got["Content-Type"] == "application/json"
    assert list(answer) == ["error"] and "\n" not in answer["error"] and "Traceback" not in answer["error"]
    return status, answer["error"]


def frames(lines):
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "done"
    assert all(line["type"] == "frame" for line in lines[1:-1]) and len(lines) >= 4  # frames before done
    return [(np.array(f["labels"]), np.array(f["drawn"])) for f in lines[1:-1]]


def check_frames(shown, final, n):
    """Every frame shows final labels where it says they are drawn, more of them each time, and the
    last shows the whole images."""
    previous = np.zeros_like(shown[0][1])
    for labels, drawn in shown:
        assert labels.shape == final.shape and drawn.shape == final.shape[:3] and len(drawn) == n
        assert np.array_equal(labels[drawn == 1], final[drawn == 1]) and np.all(labels[drawn == 0] == 0)
        assert np.all(drawn >= previous)
        previous = drawn
    assert np.array_equal(shown[-1][0], final) and np.all(shown[-1][1] == 1)


def installed(name):
    return load_model(pretrained.path(name))[0]


def png_url(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return serve_api.PNG_URL + base64.b64encode(buffer.getvalue()).decode()


def test_models_lists_the_installed_models_and_the_run_folders(server):
    status, answer, _ = call(server, "/api/models")
    models = {m["name"]: m for m in answer["models"]}
    assert status == 200 and set(pretrained.index()) | {server.run_name} == set(models)
    assert models[server.run_name] == {"name": server.run_name, "source": "run", "height": 8, "width": 8,
                                       "channels": 1, "levels": 4, "classes": None, "arch": "pixelcnn"}
    assert models[SMALL]["source"] == "installed" and models[SMALL]["levels"] == 8
    assert models[CONDITIONAL]["classes"][7] == "Sneaker" and len(models[CONDITIONAL]["classes"]) == 10
    assert answer["methods"] == ["cached", "naive", "wavefront"] and answer["limits"]["n"] == [1, 64]


def test_the_page_is_its_own_files_only(server):
    status, text, got = call(server, "/")
    assert status == 200 and text == "<!doctype html><p>the page</p>" and got["Content-Type"].startswith("text/html")
    assert call(server, "/app.js")[:2] == (200, "let x = 1;")
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt", "/sub/../../secret.txt",
                 "/web/../../secret.txt", "/../setup.py", "/%2e%2e/", "/web/../../README.md", "/sub/secret.js",
                 "//etc/passwd", "/index.html/", "/nothing"):
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        conn.request("GET", path)  # sent as it is, not normalised
        answer = conn.getresponse()
        assert answer.status == 404, path
        assert list(json.loads(answer.read())) == ["error"]
        conn.close()


def test_a_sample_stream_fills_in_and_ends_with_the_librarys_samples(server, monkeypatch):
    monkeypatch.setattr(serve_api, "FRAME_GAP", 1e9)  # the row frames only, however slow this machine is now
    status, lines, _ = call(server, "/api/sample", {"model": SMALL, "n": 2, "seed": 5, "temperature": 0.8})
    assert status == 200 and lines[0] == {"type": "start", "n": 2, "height": 28, "width": 28, "channels": 1,
                                          "levels": 8, "seed": 5}
    expected = sample(installed(SMALL), 2, seed=5, temperature=0.8)
    shown = frames(lines)
    check_frames(shown, expected, 2)
    for _, drawn in shown:  # the cached sampler: whole rows, top down
        rows = drawn[0].sum(axis=1)
        assert set(rows) <= {0, 28} and np.all(np.diff(rows) <= 0)
    assert len(shown) == 28 + 1  # one frame a row (the last before it is drawn), then the images


def test_a_wavefront_stream_shows_several_rows_drawing_at_once(server):
    body = {"model": server.run_name, "n": 3, "seed": 2, "method": "wavefront"}
    status, lines, _ = call(server, "/api/sample", body)
    model = load_model(server.run_path)[0]
    expected = sample(model, 3, seed=2, method="wavefront")
    shown = frames(lines)
    check_frames(shown, expected, 3)
    assert len(np.unique(expected)) > 1  # varied images: the frames' labels say something
    partly = [int(((drawn[0].sum(axis=1) > 0) & (drawn[0].sum(axis=1) < 8)).sum()) for _, drawn in shown]
    assert max(partly) >= 2  # several rows in flight in one frame
    status, lines, _ = call(server, "/api/sample", {**body, "method": "naive"})
    assert np.array_equal(frames(lines)[-1][0], sample(model, 3, seed=2, method="naive"))
    image = expected[0]  # completed by the wavefront sampler: the kept rows drawn from the first frame on
    body = {"model": server.run_name, "image": image.tolist(), "keep_rows": 3, "n": 2, "method": "wavefront",
            "seed": 6}
    shown = frames(call(server, "/api/complete", body)[1])
    check_frames(shown, complete(model, image[None], 3, 2, seed=6, method="wavefront")[0], 2)
    assert np.all(shown[0][1][:, :3] == 1) and np.all(shown[0][0][:, :3] == image[:3])


def test_a_slow_sampling_fills_the_grid_pixel_by_pixel_within_the_frame_budget(server, monkeypatch):
    monkeypatch.setattr(serve_api, "FRAME_GAP", 0.0)  # every pixel is "slow": a frame at each, while the budget lasts
    model = load_model(server.run_path)[0]
    H, W = model.config.height, model.config.width
    shown = frames(call(server, "/api/sample", {"model": server.run_name, "n": 2, "seed": 3})[1])
    check_frames(shown, sample(model, 2, seed=3), 2)
    partial = [int(d[0].sum()) for _, d in shown if 0 < d[0].sum() % W]  # drawn positions within a row
    assert partial[:3] == [1, 2, 3]  # the first pixels of the first row, one by one
    budget = max(4, min(H, serve_api.FRAME_VALUES // (2 * H * W * model.config.channels)))
    assert len(partial) == budget  # the frames within rows are as many as the row frames may be, no more


def test_many_images_make_fewer_frames(server, monkeypatch):
    monkeypatch.setattr(serve_api, "FRAME_GAP", 1e9)  # the row frames only, however slow this machine is now
    lines = call(server, "/api/sample", {"model": server.run_name, "n": 64, "seed": 1})[1]
    assert len(frames(lines)) <= 8 + 1 and np.array_equal(frames(lines)[-1][0],
                                                          sample(load_model(server.run_path)[0], 64, seed=1))


def test_completions_keep_the_rows_of_the_image(server):
    image = sample(installed(SMALL), 1, seed=9)[0]
    body = {"model": SMALL, "image": image.tolist(), "keep_rows": 12, "n": 3, "seed": 4}
    status, lines, _ = call(server, "/api/complete", body)
    shown = frames(lines)
    expected = complete(installed(SMALL), image[None], 12, 3, seed=4)[0]
    check_frames(shown, expected, 3)
    assert np.all(shown[0][1][:, :12] == 1) and np.all(shown[0][1][:, 12:] == 0)  # the kept rows from the start
    assert all(np.array_equal(labels[:, :12], np.repeat(image[None, :12], 3, axis=0)) for labels, _ in shown)


def test_a_picture_is_converted_as_complete_image_converts_a_file(server, tmp_path):
    pixels = (np.arange(28 * 28).reshape(28, 28) % 251).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "p.png")
    kept = _read_image_file(tmp_path / "p.png", installed(SMALL).config)
    body = {"model": SMALL, "image": png_url(pixels), "keep_rows": 20, "n": 1, "seed": 0}
    labels = frames(call(server, "/api/complete", body)[1])[-1][0]
    assert np.array_equal(labels[0, :20], kept[:20])
    status, error = refused(server, "/api/complete", {**body, "image": png_url(pixels[:27])})
    assert status == 400 and "image: expected a 28x28 image for this model, got 27x28" in error
    huge = Image.new("1", (5000, 5000))  # a few kilobytes of PNG, 25 million pixels once decoded
    buffer = io.BytesIO()
    huge.save(buffer, format="PNG")
    url = serve_api.PNG_URL + base64.b64encode(buffer.getvalue()).decode()
    assert len(url) < serve_api.MAX_BODY
    status, error = refused(server, "/api/complete", {**body, "image": url})
    assert status == 413 and "at most 1024 x 1024 pixels, got 5000 x 5000" in error
    png = bytearray(base64.b64decode(png_url(pixels[:1, :1])[len(serve_api.PNG_URL):]))
    png[16:24] = struct.pack(">II", 40000, 40000)  # the header claims 1.6 billion pixels: refused unread
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    status, error = refused(server, "/api/complete",
                            {**body, "image": serve_api.PNG_URL + base64.b64encode(bytes(png)).decode()})
    assert status == 413 and "at most 1024 x 1024 pixels" in error
    status, error = refused(server, "/api/complete", {**body, "image": serve_api.PNG_URL + "bm90IGEgcG5n"})
    assert status == 400 and "cannot read the data URL as a PNG picture" in error


def test_the_receptive_fields_have_and_have_not_a_blind_spot(server):
    fields = {}
    for arch in ("pixelcnn", "gated"):
        status, answer, _ = call(server, "/api/field", {"arch": arch, "row": 14, "col": 10, "channel": 0})
        assert status == 200 and (answer["row"], answer["col"]) == (14, 10)
        fields[arch] = field = np.array(answer["field"])
        config = PixelCNNConfig(height=28, width=28, channels=1, levels=4, filters=32, blocks=8, arch=arch)
        alone = receptive_field(build_model(config, seed=0, dtype="float64"), 14, 10, 0)[0]
        assert np.array_equal(field > 0, alone > 0)  # the model `minipixel show field` builds
        rows, cols = np.nonzero(field)
        assert len(rows) > 50 and all((r, c) < (14, 10) for r, c in zip(rows, cols))  # nothing at or after it
    # The gated model sees every earlier position within its reach (11 rows up, 11 columns either side) ...
    assert np.all(fields["gated"][3:14, 0:22] > 0) and np.all(fields["gated"][14, :10] > 0)
    # ... PixelCNN not: up and to the right it sees far (11 rows up) but not near (the blind spot)
    assert fields["pixelcnn"][3, 21] > 0 and fields["pixelcnn"][13, 14] == 0 and fields["pixelcnn"][12, 20] == 0
    assert call(server, "/api/field", {"arch": "gated"})[1]["row"] == 14  # the middle by default
    blue = np.array(call(server, "/api/field", {"arch": "gated", "row": 14, "col": 10, "channel": 2})[1]["field"])
    assert blue[14, 10] > 0 and not blue[14, 11:].any() and not blue[15:].any()  # B sees R and G of its pixel


def test_the_distribution_is_the_softmax_of_the_models_logits_there(server):
    image = sample(installed(CONDITIONAL), 1, seed=3, classes=[7])[0]
    body = {"model": CONDITIONAL, "image": image.tolist(), "row": 20, "col": 13, "channel": 0, "class": "Sneaker"}
    status, answer, _ = call(server, "/api/distribution", body)
    model = installed(CONDITIONAL)
    z = model.forward(image[None].astype(np.float32) / 7, np.array([7]))[0, 20, 13, 0].astype(np.float64)
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert status == 200 and len(answer["probabilities"]) == 8
    assert sum(answer["probabilities"]) == pytest.approx(1.0, abs=1e-12)
    assert answer["probabilities"] == pytest.approx(p.tolist(), abs=1e-6)
    other = call(server, "/api/distribution", {**body, "class": 1})[1]["probabilities"]  # Trouser
    assert not np.allclose(other, answer["probabilities"], atol=1e-3)  # the class is used


def test_the_nll_map_adds_up_to_the_models_nll_of_the_image(server):
    image = sample(installed(SMALL), 1, seed=8)[0]
    status, answer, _ = call(server, "/api/nll", {"model": SMALL, "image": image.tolist()})
    expected = evaluate(installed(SMALL), image[None])
    assert status == 200 and np.array(answer["nll"]).shape == (28, 28) and np.min(answer["nll"]) >= 0
    assert answer["total"] == pytest.approx(expected["nll_nats"], rel=1e-6)
    assert np.sum(answer["nll"]) == pytest.approx(answer["total"], rel=1e-5)
    assert answer["bits_per_dim"] == pytest.approx(expected["bits_per_dim"], rel=1e-6)


def test_the_masks_are_conv_mask(server):
    answer = call(server, "/api/masks?kernel=3&colors=3")[1]
    assert answer == {t: conv_mask(3, 3, 3, t, colors=3).astype(int).tolist() for t in "AB"}
    assert np.array(call(server, "/api/masks")[1]["A"]).shape == (5, 5, 3, 3)  # show masks' defaults
    assert refused(server, "/api/masks?kernel=4") == (400, "kernel: expected an odd int from 1 to 15, got 4")
    assert refused(server, "/api/masks?kernel=x")[1] == "kernel: expected an odd int from 1 to 15, got 'x'"
    assert refused(server, "/api/masks?colors=2")[1] == "colors: expected 1 or 3, got 2"
    assert refused(server, "/api/masks?path=/etc")[0] == 400


N_WORDS = "n: expected an int from 1 to 64, got "
BAD = [  # path, body changes, status, words of the error
    ("/api/sample", {"n": 0}, 400, N_WORDS + "0"),
    ("/api/sample", {"n": 1000}, 400, N_WORDS + "1000"),
    ("/api/sample", {"n": "x"}, 400, N_WORDS + "'x'"),
    ("/api/sample", {"n": 2.5}, 400, N_WORDS + "2.5"),
    ("/api/sample", {"temperature": -1}, 400, "temperature: expected 0 (always the most likely level) or a number "
                                              "from 1e-06 to 100, got -1"),
    ("/api/sample", {"seed": -1}, 400, "seed: expected an int from 0 to 4294967295, got -1"),
    ("/api/sample", {"method": "fast"}, 400, "method: expected one of cached, naive, wavefront, got 'fast'"),
    ("/api/sample", {"method": "wavefront"}, 400, "the wavefront sampler runs PixelCNN models"),
    ("/api/sample", {"model": "../../setup.py"}, 404, "model: no model named '../../setup.py' here"),
    ("/api/sample", {"model": 3}, 400, "model: expected a model's name"),
    ("/api/sample", {"steps": 3}, 400, "request body: unknown key 'steps'"),
    ("/api/sample", {"class": 2}, 400, "class: this model is not class-conditional"),
    ("/api/sample", {"model": CONDITIONAL}, 400, "class: this model is class-conditional; expected a class from "
                                                 "0 to 9 (0 T-shirt/top, 1 Trouser"),
    ("/api/sample", {"model": CONDITIONAL, "class": "Unicorn"}, 400, "class: expected a class number or name"),
    ("/api/sample", {"model": CONDITIONAL, "class": 10}, 400, "class: expected a class from 0 to 9"),
    ("/api/complete", {"keep_rows": 0}, 400, "keep_rows: expected an int from 1 to 27 for this 28-row model, got 0"),
    ("/api/complete", {"keep_rows": 28}, 400, "keep_rows: expected an int from 1 to 27 for this 28-row model, got 28"),
    ("/api/complete", {"image": [[0]]}, 400, "image: expected 28x28x1 nested lists of labels from 0 to 7"),
    ("/api/complete", {"image": [[[8]] * 28] * 28}, 400, "got labels from 8 to 8"),
    ("/api/complete", {"image": "file:///etc/passwd"}, 400, "image: expected labels or a data:image/png"),
    ("/api/nll", {"image": [[[0.5]] * 28] * 28}, 400, "28x28x1 nested lists of labels from 0 to 7, or a"),
    ("/api/distribution", {"row": 28}, 400, "row: expected an int from 0 to 27 for this model's 28x28x1 images"),
    ("/api/distribution", {"channel": 1}, 400, "channel: expected an int from 0 to 0 for this model's"),
    ("/api/field", {"arch": "resnet"}, 400, "arch: expected one of pixelcnn, gated, got 'resnet'"),
    ("/api/field", {"col": -1}, 400, "col: expected an int from 0 to 4096, got -1"),
    ("/api/field", {"channel": 3}, 400, "channel: expected an int from 0 to 2, got 3"),
]


@pytest.mark.parametrize("path, change, status, words", BAD, ids=[f"{p} {c}" for p, c, _, _ in BAD])
def test_bad_values_are_refused_in_the_command_lines_words(server, path, change, status, words):
    blank = [[[0]] * 28] * 28
    body = {"/api/sample": {"model": SMALL, "n": 1},
            "/api/complete": {"model": SMALL, "n": 1, "image": blank, "keep_rows": 5},
            "/api/nll": {"model": SMALL, "image": blank},
            "/api/distribution": {"model": SMALL, "image": blank, "row": 1, "col": 1},
            "/api/field": {"arch": "pixelcnn"}}[path]
    got, error = refused(server, path, {**body, **change})
    assert got == status and words in error


def test_bad_requests_get_one_line_of_json(server):
    assert refused(server, "/api/nothing") == (404, "no such page or endpoint: /api/nothing")
    status, answer, got = call(server, "/api/sample")  # GET
    assert status == 405 and got["Allow"] == "POST" and answer == {"error": "/api/sample takes POST, got GET"}
    assert refused(server, "/api/models", {})[0] == 405 and refused(server, "/", {})[0] == 405
    assert refused(server, "/api/models", method="DELETE")[0] == 405
    assert refused(server, "/api/models", method="BREW")[0] == 405  # a method http.server does not know
    status, error = refused(server, "/api/sample", data=b"{not json")
    assert status == 400 and error.startswith("request body: expected a JSON object, got text that is not JSON")
    assert refused(server, "/api/sample", [1, 2])[1] == "request body: expected a JSON object, got a JSON list"
    assert refused(server, "/api/sample", data=b"\xff\xfe")[0] == 400
    assert refused(server, "/api/models", headers={"Host": "evil.example:80"})[0] == 403  # DNS rebinding
    status, error = refused(server, "/api/sample", {"model": SMALL}, headers={"Origin": "http://evil.example"})
    assert status == 403 and "other sites" in error


def test_a_body_over_one_mebibyte_gets_413(server):
    status, error = refused(server, "/api/sample", data=b" " * (serve_api.MAX_BODY + 1))
    assert status == 413 and error == "request body: expected at most 1048576 bytes (1 MiB), got 1048577"
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
    conn.putrequest("POST", "/api/sample")
    conn.putheader("Content-Length", str(1 << 30))  # a gibibyte announced, none sent: answered at once
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert call(server, "/api/models")[0] == 200


def test_a_bug_is_a_500_with_one_line_and_the_traceback_in_the_log(server, monkeypatch, capsys):
    monkeypatch.setattr(serve_api, "masks", lambda query: 1 / 0)
    status, answer, _ = call(server, "/api/masks")
    assert status == 500 and answer == {"error": "internal error (ZeroDivisionError); the server's log has the "
                                                 "details"}
    assert "Traceback" in capsys.readouterr().err


def test_one_sampling_per_client_at_a_time(server, held):
    req = urllib.request.Request(f"http://127.0.0.1:{server.server_port}/api/sample",
                                 data=json.dumps({"model": SMALL, "n": 1}).encode())
    with urllib.request.urlopen(req, timeout=60) as first:
        assert json.loads(first.readline())["type"] == "start"
        status, error = refused(server, "/api/sample", {"model": SMALL, "n": 1})
        assert status == 429 and error.startswith("one sampling per client at a time")
        held.set()
        assert json.loads(first.read().splitlines()[-1])["type"] == "done"
    assert call(server, "/api/sample", {"model": SMALL, "n": 1})[1][-1]["type"] == "done"  # its slot is free


def test_a_browser_gone_stops_its_sampling_and_frees_its_slot(server, held):
    before = dict(server.ended)
    body = json.dumps({"model": SMALL, "n": 1}).encode()
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=60) as browser:
        browser.sendall(b"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(body), body))
        stream = browser.makefile("rb")
        while b'"type":"frame"' not in stream.readline():  # the headers, the start line, the first frame
            pass
        stream.close()
    held.set()  # the frames go on, to nobody
    for _ in range(600):  # the sampler's thread finds out at its next frames
        if server.ended["stopped"] > before.get("stopped", 0):
            break
        time.sleep(0.1)
    assert server.ended["stopped"] == before.get("stopped", 0) + 1
    assert server.ended["done"] == before.get("done", 0)  # stopped, not finished
    assert call(server, "/api/sample", {"model": SMALL, "n": 1})[1][-1]["type"] == "done"


def test_the_serve_command(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--port", "70000"])
    assert "argument --port: expected an int from 0 to 65535, got '70000'" in \
        capsys.readouterr().err
    assert main(["serve", "--models", str(tmp_path / "none")]) == 1
    assert "--models " + str(tmp_path / "none") + ": no such folder" in capsys.readouterr().err

    def stop(self, *args):  # Ctrl-C at once
        raise KeyboardInterrupt

    monkeypatch.setattr(serve.Server, "serve_forever", stop)
    assert main(["serve", "--port", "0"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("minipixel serve: http://127.0.0.1:") and "warning" not in err
    assert main(["serve", "--port", "0", "--host", "0.0.0.0"]) == 0
    assert "warning: --host 0.0.0.0: the server is reachable from the network" in capsys.readouterr().err
