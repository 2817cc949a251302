"""``minipixel serve``: the edges of what it answers, over HTTP (docs/serve.md): its limits as
/api/models lists them and as the endpoints hold them, http.server's own refusals, too-big
bodies, errors outside the endpoints, the wavefront stream's frames and Explore's values."""
import base64
import http.client
import io
import json
import socket
import struct
import threading
import time

import numpy as np
import pytest
from PIL import Image

from minipixel import pretrained, sampling, serve, serve_api
from minipixel.checkpoint import load_model, save_checkpoint
from minipixel.evaluate import evaluate
from minipixel.model import PixelCNNConfig, build_model
from minipixel.sampling import sample, wavefront_lag, wavefront_order
from minipixel.viz import receptive_field
from test_serve import png_url

CONDITIONAL = "fashion-mnist-conditional"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server with the installed models and run folders of random models, 4 levels: the PixelCNNs tiny
    (8x8 grey), rgb (8x8 RGB), wide (6x10 grey: rows and columns differ) and sure (8x8 grey, its logits
    in the hundreds), and classes, an 8x8 grey Gated PixelCNN of 3 classes; and around them what is no run
    of the server's: deeper than two folders, hidden, set aside by train --overwrite, a loose file."""
    runs = tmp_path_factory.mktemp("runs")
    config = PixelCNNConfig(height=8, width=8, channels=1, levels=4, filters=8, blocks=1)
    save_checkpoint(runs / "tiny" / "checkpoint.npz", build_model(config, seed=3))
    rgb = PixelCNNConfig(height=8, width=8, channels=3, levels=4, filters=9, blocks=1)
    save_checkpoint(runs / "rgb" / "checkpoint.npz", build_model(rgb, seed=6))
    classes = PixelCNNConfig(height=8, width=8, channels=1, levels=4, filters=8, blocks=1, arch="gated", classes=3)
    save_checkpoint(runs / "classes" / "checkpoint.npz", build_model(classes, seed=7))
    wide = PixelCNNConfig(height=6, width=10, channels=1, levels=4, filters=8, blocks=1)
    save_checkpoint(runs / "wide" / "checkpoint.npz", build_model(wide, seed=4))
    sure = build_model(config, seed=5)
    sure.parameters()["conv_out.b"][:] = [400.0, 0.0, 0.0, 0.0]  # level 0 everywhere, by far
    save_checkpoint(runs / "sure" / "checkpoint.npz", sure)
    save_checkpoint(runs / "group" / "deep" / "checkpoint.npz", build_model(config, seed=8))  # 2 below: a run
    for far in ("a/b/c", ".hidden", "fresh/replaced-run"):
        save_checkpoint(runs / far / "checkpoint.npz", build_model(config, seed=9))
    (runs / "notes.txt").write_text("not a run")
    srv = serve.start(serve_api.Catalogue([runs]))
    srv.runs = runs
    yield srv
    srv.shutdown()
    srv.server_close()


def run(server, name):
    return f"{server.runs.name}/{name}"


def call(server, path, body=None, method=None, data=None):
    """(status, answer, headers): the answer parsed as JSON, or a stream's lines as a list."""
    if body is not None:
        data = json.dumps(body).encode()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=60)
    conn.request(method or ("GET" if data is None else "POST"), path, body=data,
                 headers={"Content-Type": "application/json"})
    answer = conn.getresponse()
    text = answer.read().decode()
    conn.close()
    if answer.getheader("Content-Type") == "application/x-ndjson":
        return answer.status, [json.loads(line) for line in text.splitlines()], answer
    return answer.status, json.loads(text), answer


def raw(server, request, timeout=10):
    """Send ``request`` as it is on a socket of its own: (status, headers, answer, whether the server
    then closed the connection)."""
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        body = json.loads(answer.read())
        return answer.status, answer.headers, body, sock.recv(1) == b""


def frames(lines):
    assert lines[0]["type"] == "start" and lines[-1]["type"] == "done", lines[-1]
    assert all(line["type"] == "frame" for line in lines[1:-1])
    seconds = lines[-1]["seconds"]  # how long the sampling took, to the millisecond
    assert isinstance(seconds, float) and 0 <= seconds == round(seconds, 3)
    return [(np.array(f["labels"]), np.array(f["drawn"])) for f in lines[1:-1]]


def test_the_runs_are_the_run_folders_up_to_two_below_not_hidden_nor_set_aside(server):
    status, answer, _ = call(server, "/api/models")
    runs = {m["name"]: m for m in answer["models"] if m["source"] == "run"}
    assert status == 200 and set(runs) == {run(server, name) for name in ("tiny", "rgb", "wide", "sure", "classes",
                                                                          "group/deep")}
    assert runs[run(server, "classes")]["classes"] == ["0", "1", "2"]  # classes without names: their numbers


def test_the_limits_models_lists_are_the_ones_the_endpoints_hold(server):
    status, answer, _ = call(server, "/api/models")
    limits = answer["limits"]
    assert status == 200 and limits == {"n": [1, 64], "temperature": [0, 100], "seed": [0, 4294967295],
                                        "body_bytes": 1048576, "picture": 1024}  # as docs/serve.md says
    body = {"model": run(server, "tiny"), "n": 1}
    (n_lo, n_hi), (t_lo, t_hi), (s_lo, s_hi) = limits["n"], limits["temperature"], limits["seed"]
    for key, value, words in (("n", n_lo - 1, f"an int from {n_lo} to {n_hi}"), ("n", n_hi + 1, f"to {n_hi}"),
                              ("temperature", t_hi + 1, f"to {t_hi:g}"), ("seed", s_hi + 1, f"to {s_hi}")):
        status, answer, _ = call(server, "/api/sample", {**body, key: value})
        assert status == 400 and f"{key}: expected " in answer["error"] and f"{words}, got {value!r}" in answer["error"]
    for change in ({"temperature": t_lo, "seed": s_lo}, {"seed": s_hi}):  # the ends are in the range
        lines = call(server, "/api/sample", {**body, **change})[1]
        assert lines[0]["seed"] == change["seed"] and lines[-1]["type"] == "done"
    status, error, _ = call(server, "/api/sample", data=b" " * (limits["body_bytes"] + 1))
    assert status == 413 and f"at most {limits['body_bytes']} bytes" in error["error"]
    wide = np.zeros((1, limits["picture"] + 1), np.uint8)
    status, error, _ = call(server, "/api/nll", {"model": run(server, "tiny"), "image": png_url(wide)})
    assert status == 413 and f"got {limits['picture'] + 1} x 1" in error["error"]
    wide = np.zeros((1, limits["picture"]), np.uint8)  # as wide as may be: read, and found not the model's size
    status, error, _ = call(server, "/api/nll", {"model": run(server, "tiny"), "image": png_url(wide)})
    assert (status, error["error"]) == (400, f"image: expected a 8x8 image for this model, got 1x{limits['picture']}")


def test_http_servers_own_refusals_are_one_line_of_json_and_close_the_connection(server):
    status, headers, answer, closed = raw(server, b"GET /a b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 400 and answer == {"error": "Bad request syntax ('GET /a b HTTP/1.1')"}
    assert headers["Connection"] == "close" and headers["Content-Type"] == "application/json" and closed
    # A request line over http.server's 64 KiB: it gives no words of its own, the status's are sent.
    status, headers, answer, closed = raw(server, b"GET /" + b"a" * 65536 + b" HTTP/1.1\r\n\r\n")
    assert status == 414 and answer == {"error": "Request-URI Too Long"} and headers["Connection"] == "close"
    assert call(server, "/api/models")[0] == 200


def test_a_too_big_body_is_read_to_its_end_however_slowly_it_comes(server):
    """Its sender sees the 413 once it could send it all: the server reads and drops the body (up to
    16 MiB), waiting for its last bytes, and only then closes the connection, cleanly."""
    length = 12 * (1 << 20) + 1  # far more than a socket's buffers hold
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
        sock.sendall(b"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % length)
        sock.sendall(b" " * (length - 1))  # all but the last byte
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        assert answer.status == 413 and answer.headers["Connection"] == "close"
        assert json.loads(answer.read())["error"].endswith(f"got {length}")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):  # still open: the server waits for the rest
            sock.recv(1)
        sock.settimeout(10)
        sock.sendall(b" ")
        assert sock.recv(1) == b""  # the whole body read: closed, no reset
    assert call(server, "/api/models")[0] == 200


@pytest.fixture
def handled(monkeypatch):
    """An event set once the server has dealt with a request that failed outside the endpoints."""
    done, handle_error = threading.Event(), serve.Server.handle_error

    def spy(self, request, client_address):
        try:
            handle_error(self, request, client_address)
        finally:
            done.set()

    monkeypatch.setattr(serve.Server, "handle_error", spy)
    return done


def test_a_browser_gone_mid_request_is_no_error_in_the_log(server, handled, capsys):
    sock = socket.create_connection(("127.0.0.1", server.server_port), timeout=10)
    sock.sendall(b"GET /api/mod")  # half a request line, then a reset
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    assert handled.wait(10)
    assert capsys.readouterr().err == ""


def test_a_failure_outside_the_endpoints_goes_to_the_log_with_the_client(server, handled, monkeypatch, capsys):
    def broken(self, body, headers=()):
        raise RuntimeError("the answer cannot be written")

    monkeypatch.setattr(serve.Handler, "_send_body", broken)  # the 500 too
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    conn.connect()
    client = conn.sock.getsockname()
    conn.request("GET", "/api/masks")
    with pytest.raises(http.client.RemoteDisconnected):
        conn.getresponse()
    conn.close()
    assert handled.wait(10)
    err = capsys.readouterr().err
    assert f"Exception occurred during processing of request from {client!r}" in err
    assert "RuntimeError: the answer cannot be written" in err


@pytest.mark.parametrize("budget", [4, 5])
def test_a_wavefront_stream_shows_every_few_steps_within_its_frame_budget(server, monkeypatch, budget):
    """A frame before step 0, e, 2e, ... of the wavefront sampler, with e the fewest steps between frames
    that keep them within the budget, each showing the positions of the steps before it, then the images."""
    model = load_model(server.runs / "tiny")[0]
    H, W = model.config.height, model.config.width
    monkeypatch.setattr(serve_api, "FRAME_VALUES", (2 * budget + 1) * H * W // 2)  # values of budget + 1/2 frames
    lines = call(server, "/api/sample", {"model": run(server, "tiny"), "n": 1, "seed": 2, "method": "wavefront"})[1]
    shown = frames(lines)
    rows, cols, bounds = wavefront_order(H, W, wavefront_lag(model))
    steps = len(bounds) - 1
    every = -(-steps // budget)
    assert len(shown) - 1 == len(range(0, steps, every)) <= budget
    for k, (labels, drawn) in enumerate(shown[:-1]):
        expected = np.zeros((H, W), int)
        expected[rows[: bounds[k * every]], cols[: bounds[k * every]]] = 1
        assert np.array_equal(drawn[0], expected), k
        assert labels.dtype.kind == "i"  # labels, not numbers of the canvas
    final = sample(model, 1, seed=2, method="wavefront")
    assert np.array_equal(shown[-1][0], final) and np.all(shown[-1][1] == 1)


@pytest.mark.parametrize("name", ["tiny", "rgb"])
def test_a_stream_shows_every_few_rows_within_its_frame_budget(server, monkeypatch, name):
    """With rows quicker than FRAME_GAP, a frame before row 0, r, 2r, ... with r the fewest rows between frames
    that keep them within the budget, each showing the rows before it, then the images."""
    model = load_model(server.runs / name)[0]
    H, W, C = model.config.height, model.config.width, model.config.channels
    monkeypatch.setattr(serve_api, "FRAME_GAP", 30.0)  # no row of these models takes that long
    monkeypatch.setattr(serve_api, "FRAME_VALUES", 11 * 2 * H * W * C // 2)  # values of 5 1/2 frames of 2 images
    lines = call(server, "/api/sample", {"model": run(server, name), "n": 2, "seed": 4})[1]
    shown = frames(lines)
    every = -(-H // 5)
    assert len(shown) - 1 == len(range(0, H, every)) <= 5
    for k, (labels, drawn) in enumerate(shown[:-1]):
        assert drawn.shape == (2, H, W) and np.all(drawn[:, : k * every] == 1) and np.all(drawn[:, k * every:] == 0)
    assert all(labels.dtype.kind == drawn.dtype.kind == "i" for labels, drawn in shown)  # ints: labels and 0/1
    final = sample(model, 2, seed=4)
    assert np.array_equal(shown[-1][0], final) and np.all(shown[-1][1] == 1)


def test_a_stream_is_chunked_ndjson_with_its_headers_and_its_connection_closes_after_it(server):
    body = json.dumps({"model": run(server, "tiny"), "n": 1, "seed": 0}).encode()
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
        sock.sendall(b"POST /api/sample HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        data = b""
        while part := sock.recv(1 << 16):  # to the end: the server closes the connection
            data += part
    head, _, rest = data.partition(b"\r\n\r\n")
    status, *fields = head.decode().split("\r\n")
    headers = {name.lower(): value for name, value in (field.split(": ", 1) for field in fields)}
    assert status == "HTTP/1.1 200 OK" and {name: headers.get(name) for name in (
        "content-type", "transfer-encoding", "cache-control", "x-content-type-options", "connection")} == {
        "content-type": "application/x-ndjson", "transfer-encoding": "chunked", "cache-control": "no-store",
        "x-content-type-options": "nosniff", "connection": "close"}
    lines = []
    while not rest.startswith(b"0\r\n"):  # the chunks, each one line of JSON
        size, _, rest = rest.partition(b"\r\n")
        lines.append(json.loads(rest[: int(size, 16)]))
        assert rest[int(size, 16): int(size, 16) + 2] == b"\r\n"
        rest = rest[int(size, 16) + 2:]
    assert rest == b"0\r\n\r\n"
    assert np.array_equal(frames(lines)[-1][0], sample(load_model(server.runs / "tiny")[0], 1, seed=0))


def test_a_stream_of_a_class_conditional_model_draws_the_class_asked_and_says_how_long_it_took(server):
    model = load_model(server.runs / "classes")[0]
    started = time.perf_counter()
    lines = call(server, "/api/sample", {"model": run(server, "classes"), "n": 2, "seed": 3, "class": 2})[1]
    took = time.perf_counter() - started
    assert np.array_equal(frames(lines)[-1][0], sample(model, 2, seed=3, classes=np.full(2, 2)))
    assert 0 < lines[-1]["seconds"] <= took


def test_at_most_four_samplings_run_at_once_and_each_ending_is_counted(server, held):
    before, body = server.ended["done"], json.dumps({"model": run(server, "tiny"), "n": 1}).encode()
    clients, streams = [], []
    for k in range(1, 6):  # five clients, each from an address of its own
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=60,
                                          source_address=(f"127.0.0.{k}", 0))
        conn.request("POST", "/api/sample", body=body, headers={"Host": "127.0.0.1"})
        clients.append(conn)
        answer = conn.getresponse()
        if k <= 4:
            assert answer.status == 200 and json.loads(answer.readline())["type"] == "start"
            streams.append(answer)
    assert answer.status == 429
    assert json.loads(answer.read()) == {"error": "the server runs 4 samplings already: try again soon"}
    held.set()
    assert all(json.loads(stream.read().splitlines()[-1])["type"] == "done" for stream in streams)
    for conn in clients:
        conn.close()
    assert server.ended["done"] == before + 4


def test_a_stream_by_default_draws_16_images_or_4_completions_from_a_random_seed_it_gives_back(server):
    model = load_model(server.runs / "tiny")[0]
    lines = call(server, "/api/sample", {"model": run(server, "tiny")})[1]
    assert lines[0]["n"] == 16 and len(frames(lines)[-1][0]) == 16
    assert np.array_equal(frames(lines)[-1][0], sample(model, 16, seed=lines[0]["seed"]))  # the seed given back
    image = [[[3]] * 8] * 8
    lines = call(server, "/api/complete", {"model": run(server, "tiny"), "image": image, "keep_rows": 2})[1]
    assert lines[0]["n"] == 4 and len(frames(lines)[-1][0]) == 4
    seeds = {lines[0]["seed"]} | {call(server, "/api/sample", {"model": run(server, "tiny"), "n": 1})[1][0]["seed"]
                                  for _ in range(3)}
    assert len(seeds) == 4 and max(seeds) > 2**16  # drawn from all of 0 .. 2**32 - 1


def test_a_sampling_that_fails_ends_its_stream_with_an_error_line_and_is_counted(server, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise RuntimeError("out of\npaint" + " and more" * 40)

    monkeypatch.setattr(sampling, "sample", broken)
    before = server.ended["failed"]
    lines = call(server, "/api/sample", {"model": run(server, "tiny"), "n": 1})[1]
    assert [line["type"] for line in lines] == ["start", "error"]
    assert lines[-1]["error"] == f"the sampling failed (RuntimeError: {('out of paint' + ' and more' * 40)[:200]})"
    assert server.ended["failed"] == before + 1
    assert "Traceback" in capsys.readouterr().err  # for the server's log
    monkeypatch.undo()
    assert call(server, "/api/sample", {"model": run(server, "tiny"), "n": 1})[1][-1]["type"] == "done"


def test_a_class_is_a_number_from_0_or_a_name_and_nothing_else(server):
    body = {"model": run(server, "classes"), "image": [[[1]] * 8] * 8, "row": 4, "col": 4}
    for klass in (0, "0", 2):
        assert call(server, "/api/distribution", {**body, "class": klass})[0] == 200
    for klass in (1.5, True, [1]):
        status, answer, _ = call(server, "/api/distribution", {**body, "class": klass})
        assert (status, answer["error"]) == (400, f"class: expected a class number or name, got {klass!r}")


def test_a_wavefront_stream_of_a_model_wider_than_tall(server):
    model = load_model(server.runs / "wide")[0]
    lines = call(server, "/api/sample", {"model": run(server, "wide"), "n": 2, "seed": 1, "method": "wavefront"})[1]
    shown = frames(lines)
    final = sample(model, 2, seed=1, method="wavefront")
    assert len(shown) > 2 and np.array_equal(shown[-1][0], final)
    for labels, drawn in shown:
        assert labels.shape == (2, 6, 10, 1) and drawn.shape == (2, 6, 10)
        assert np.array_equal(labels[drawn == 1], final[drawn == 1]) and np.all(labels[drawn == 0] == 0)


def fresh_field(arch, colours, row, col, channel):
    """The receptive field `minipixel show field` draws for a fresh model, from one random image."""
    filters = 33 if arch == "gated" and colours == 3 else 32  # show field's --filters 32, a multiple of 3 for gated RGB
    config = PixelCNNConfig(height=28, width=28, channels=colours, levels=4, filters=filters, blocks=8, arch=arch)
    return receptive_field(build_model(config, seed=0, dtype="float64"), row, col, channel, images=1)[0]


@pytest.mark.parametrize("arch, channel, colours", [("pixelcnn", 0, 1), ("pixelcnn", 1, 3), ("gated", 0, 1)])
def test_a_field_is_show_fields_fresh_model_from_one_image(server, arch, channel, colours):
    status, answer, _ = call(server, "/api/field", {"arch": arch, "row": 5, "col": 20, "channel": channel})
    assert status == 200 and (answer["row"], answer["col"]) == (5, 20)
    assert np.allclose(answer["field"], fresh_field(arch, colours, 5, 20, channel), rtol=1e-12, atol=0)


def test_a_field_by_default_is_pixelcnns_at_the_middle(server):
    status, answer, _ = call(server, "/api/field", {})
    assert status == 200 and (answer["row"], answer["col"]) == (14, 14)
    assert np.allclose(answer["field"], fresh_field("pixelcnn", 1, 14, 14, 0), rtol=1e-12, atol=0)


@pytest.mark.parametrize("key", ["row", "col"])
def test_a_field_outside_the_image_is_refused_with_its_size(server, key):
    status, answer, _ = call(server, "/api/field", {"arch": "gated", key: 28})
    assert status == 400 and answer == {"error": f"{key}: expected an int from 0 to 27 for this model's 28x28x3 "
                                                 f"images, got 28"}


def test_the_distribution_of_a_sure_model_is_still_one(server):
    body = {"model": run(server, "sure"), "image": [[[0]] * 8] * 8, "row": 3, "col": 4, "channel": 0}
    status, answer, _ = call(server, "/api/distribution", body)
    p = answer["probabilities"]
    assert status == 200 and np.all(np.isfinite(p)) and sum(p) == pytest.approx(1.0, abs=1e-12)
    assert p[0] == pytest.approx(1.0, abs=1e-12)  # logits some 400 apart: the others are e^-400


def test_the_nll_map_of_a_conditional_model_is_for_the_class_given(server):
    model = load_model(pretrained.path(CONDITIONAL))[0]
    image = np.random.default_rng(0).integers(0, model.config.levels, (28, 28, 1))
    totals = {}
    for klass in (7, 1):
        status, answer, _ = call(server, "/api/nll", {"model": CONDITIONAL, "image": image.tolist(), "class": klass})
        expected = evaluate(model, image[None], classes=np.array([klass]))
        assert status == 200 and answer["total"] == pytest.approx(expected["nll_nats"], rel=1e-6)
        assert np.sum(answer["nll"]) == pytest.approx(answer["total"], rel=1e-5)
        totals[klass] = answer["total"]
    assert totals[7] != pytest.approx(totals[1], rel=1e-4)


def test_the_nll_map_runs_on_numpy_whose_take_along_axis_needs_the_axis(monkeypatch):
    # setup.py allows NumPy >= 1.22: before 2.3 take_along_axis has no default axis
    model = build_model(PixelCNNConfig(height=4, width=3, channels=3, levels=4, filters=6, blocks=1), seed=1)
    labels = np.random.default_rng(0).integers(0, 4, (4, 3, 3))
    want = serve_api.nll_map(model, labels, None)
    real = np.take_along_axis
    monkeypatch.setattr(np, "take_along_axis", lambda arr, indices, axis: real(arr, indices, axis))
    assert serve_api.nll_map(model, labels, None) == want and np.sum(want["nll"]) == pytest.approx(want["total"])


def test_masks_are_200_with_0_1_ints_and_a_long_value_is_cut_in_the_error(server):
    status, answer, got = call(server, "/api/masks?kernel=3&colors=1")
    assert status == 200 and got.getheader("Content-Type") == "application/json"
    assert {type(v) for t in "AB" for v in np.ravel(answer[t]).tolist()} == {int}
    # what came is quoted cut to 40 characters, as the query's and the body's unknown keys are
    status, answer, _ = call(server, "/api/masks?kernel=" + "7" * 30 + "x" * 30)
    assert status == 400 and answer == {"error": "kernel: expected an odd int from 1 to 15, got '"
                                                 + "7" * 30 + "x" * 10 + "'"}


def test_a_picture_is_a_png_in_base64_and_nothing_else(server):
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    body = {"model": run(server, "tiny"), "image": png_url(pixels)}
    status, answer, _ = call(server, "/api/nll", body)
    assert status == 200 and np.array(answer["nll"]).shape == (8, 8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")  # a picture the command line reads, but not a PNG
    for url in (serve_api.PNG_URL + base64.b64encode(buffer.getvalue()).decode(),
                body["image"][:40] + "*" + body["image"][40:]):  # a character base64 has not
        status, answer, _ = call(server, "/api/nll", {**body, "image": url})
        assert status == 400 and answer["error"].startswith("image: cannot read the data URL as a PNG picture")


def test_a_distribution_needs_its_position_and_its_colour_defaults_to_the_first(server):
    body = {"model": run(server, "tiny"), "image": [[[1]] * 8] * 8, "row": 2, "col": 5}
    status, answer, _ = call(server, "/api/distribution", body)
    assert status == 200 and answer == call(server, "/api/distribution", {**body, "channel": 0})[1]
    for key in ("row", "col"):
        status, answer, _ = call(server, "/api/distribution", {**body, key: None})
        assert (status, answer["error"]) == (400, f"{key}: missing; expected an int from 0 to 4096")


def test_answers_are_compact_json_lines_with_their_headers_and_head_gets_the_headers_only(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    conn.request("GET", "/api/masks?kernel=1&colors=1")
    answer = conn.getresponse()
    body = answer.read()
    assert answer.status == 200 and body == (json.dumps(json.loads(body), separators=(",", ":")) + "\n").encode()
    assert answer.getheader("Content-Type") == "application/json"
    assert answer.getheader("Content-Length") == str(len(body))
    assert answer.getheader("Cache-Control") == "no-store" and answer.getheader("X-Content-Type-Options") == "nosniff"
    assert answer.getheader("Connection") is None  # kept open for the next request
    conn.request("HEAD", "/api/models")
    answer = conn.getresponse()
    assert answer.status == 405 and answer.getheader("Allow") == "GET" and answer.read() == b""
    conn.request("GET", "/api/models")  # on the same connection: nothing of the HEAD's body came in between
    assert conn.getresponse().status == 200
    conn.close()


def test_an_image_of_the_wrong_kind_is_refused_with_what_came(server):
    expected = "image: expected 8x8x1 nested lists of labels from 0 to 3, or a data:image/png;base64,... URL, got "
    for image, got in (([[0.5]], "1x1 of float64"), ([[[1]] * 8] * 7, "7x8x1 of int64"), (5, "5"), ({}, "{}")):
        status, answer, _ = call(server, "/api/nll", {"model": run(server, "tiny"), "image": image})
        assert (status, answer["error"]) == (400, expected + got)


def test_a_long_error_is_cut_to_one_line_of_300_characters(server):
    status, answer, _ = call(server, "/api/sample", {"model": run(server, "tiny"), "n": "many " * 200})
    assert status == 400 and answer["error"].startswith("n: expected an int from 1 to 64, got 'many many")
    assert len(answer["error"]) == 300  # an error line is at most 300 characters, whatever came


def test_start_gives_a_free_port_each_time_and_serves_quietly_from_a_daemon_thread(capsys):
    empty = serve_api.Catalogue([], installed=False)
    before = set(threading.enumerate())
    servers = [serve.start(empty), serve.start(empty)]
    try:
        assert servers[0].server_port != servers[1].server_port
        for srv in servers:
            status, answer, _ = call(srv, "/api/models")
            assert status == 200 and answer["models"] == []
        threads = [t for t in set(threading.enumerate()) - before if t.name == "minipixel-serve"]
        assert len(threads) == 2 and all(t.daemon for t in threads)  # a notebook can end with them running
        assert capsys.readouterr().err == ""  # quiet unless asked
        servers.append(serve.start(empty, log=True))
        call(servers[-1], "/api/models")
        assert '"GET /api/models HTTP/1.1" 200' in capsys.readouterr().err
    finally:
        for srv in servers:
            srv.shutdown()
            srv.server_close()


def test_a_checkpoint_the_server_could_not_load_is_left_out_and_runs_of_one_name_are_told_apart(tmp_path, capsys):
    """Three --models folders named runs, each with a run named valid; the first also with damaged ones."""
    config = PixelCNNConfig(height=8, width=8, channels=1, levels=4, filters=8, blocks=1)
    folders = [tmp_path / where / "runs" for where in ("one", "two", "three")]
    for folder in folders:
        save_checkpoint(folder / "valid" / "checkpoint.npz", build_model(config))
    with np.load(folders[0] / "valid" / "checkpoint.npz") as data:
        arrays = {key: data[key] for key in data.files}
    bad = {"pickled": {**arrays, "config": np.array(str(arrays["config"]), dtype=object)},  # unpickling runs code
           "stateless": {key: value for key, value in arrays.items() if key != "state"},
           "listed": {**arrays, "state": np.array("[1, 2]")}}
    for name, members in bad.items():  # before valid in name order
        (folders[0] / name).mkdir()
        np.savez(folders[0] / name / "checkpoint.npz", **members)
    srv = serve.start(serve_api.Catalogue(folders, installed=False))
    try:
        err = capsys.readouterr().err
        status, answer, _ = call(srv, "/api/models")
        assert status == 200 and [m["name"] for m in answer["models"]] == ["runs/valid", "runs/valid (2)",
                                                                          "runs/valid (3)"]
        reasons = {"pickled": "", "stateless": ": the checkpoint has no 'state' entry)",
                   "listed": ": expected the training state to be a JSON object, got list)"}
        for name, reason in reasons.items():  # the file, and why, as load_model would say it
            file = folders[0] / name / "checkpoint.npz"
            assert f"{file}: left out, cannot read it" in err and (not reason or f"({file}{reason}" in err)
    finally:
        srv.shutdown()
        srv.server_close()
