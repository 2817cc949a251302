"""``minipixel serve``: a local web page to watch the sampler, complete drawings and
explore a model (docs/serve.md), on the standard library's HTTP server.

Safe by default: it listens on this machine only (127.0.0.1) unless ``--host`` says
otherwise; it serves the files of ``minipixel/web/`` by a list of names made at the
start (no path from a URL reaches the disk) and the models it was given, by name;
request bodies, pictures and samplings are bounded, every value is checked with the
command line's ranges, and a refused request gets a 4xx and one line of JSON.
What the endpoints compute is in ``serve_api``.
"""
import json
import re
import socket
import socketserver
import sys
import threading
import traceback
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from . import serve_api as api

WEB = Path(__file__).with_name("web")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MAX_SAMPLINGS = 4  # samplings running at once, all clients together
MAX_DRAIN = 16 << 20  # bytes of a too-big body read and dropped, so that its sender sees the 413
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/x-icon",
         ".json": "application/json"}
# path: (method, handler's name, keys of its body)
ROUTES = {
    "/api/models": ("GET", "models", ()),
    "/api/sample": ("POST", "sample", ("model", "n", "temperature", "method", "seed", "class")),
    "/api/complete": ("POST", "complete", ("model", "image", "keep_rows", "n", "temperature", "method", "seed",
                                           "class")),
    "/api/field": ("POST", "field", ("arch", "row", "col", "channel")),
    "/api/distribution": ("POST", "distribution", ("model", "image", "row", "col", "channel", "class")),
    "/api/nll": ("POST", "nll", ("model", "image", "class")),
    "/api/masks": ("GET", "masks", ()),
}


def pages(folder):
    """{URL path: file} of the page's own files: the plain files directly in ``folder``
    with plain names, and ``/`` for its index.html."""
    folder = Path(folder)
    files = {} if not folder.is_dir() else {
        "/" + p.name: p for p in sorted(folder.iterdir())
        if p.is_file() and not p.is_symlink() and re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", p.name)}
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


class Server(ThreadingHTTPServer):
    """The HTTP server with what its requests share: the models, the page's files, the
    samplings running (one per client address) and counts of how samplings ended."""

    daemon_threads = True

    def __init__(self, host, port, catalogue, web=WEB, log=True):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.catalogue, self.pages, self.log = catalogue, pages(web), log
        self.local = host in LOOPBACK
        self.lock, self.running, self.ended = threading.Lock(), set(), Counter()
        super().__init__((host, port), Handler)

    def server_bind(self):  # HTTPServer's own looks the host's name up, which can take seconds: not needed
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):  # a browser gone is no error
            super().handle_error(request, client_address)

    def take(self, client):
        """Start a sampling for ``client``: 429 while it has one running, or while the server runs its most."""
        with self.lock:
            if client in self.running:
                raise api.RequestError("one sampling per client at a time: the last one is still running", 429)
            if len(self.running) >= MAX_SAMPLINGS:
                raise api.RequestError(f"the server runs {MAX_SAMPLINGS} samplings already: try again soon", 429)
            self.running.add(client)

    def free(self, client, how):
        with self.lock:
            self.running.discard(client)
            self.ended[how] += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "minipixel"
    timeout = 60  # seconds a client may leave a request half-sent, or a stream unread, before it is dropped

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

    def log_message(self, format, *args):
        if self.server.log:
            super().log_message(format, *args)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (a malformed request line, an unknown method) as one line of JSON too."""
        code = HTTPStatus.METHOD_NOT_ALLOWED if code == HTTPStatus.NOT_IMPLEMENTED else code
        self.close_connection = True
        self._json(code, {"error": " ".join(str(message or HTTPStatus(code).phrase).split())})

    def _json(self, status, answer, headers=()):
        body = (json.dumps(answer, separators=(",", ":")) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self._send_body(body, headers)

    def _send_body(self, body, headers=()):
        for name, value in [("Content-Length", str(len(body))), ("Cache-Control", "no-store"),
                            ("X-Content-Type-Options", "nosniff"), *headers]:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _dispatch(self):
        path, _, query = self.path.partition("?")
        self.body, self.unread = b"", 0
        try:
            self._read_body()
            self._check_origin()
            if path in self.server.pages:
                self._allow(path, "GET")
                file = self.server.pages[path]
                self.send_response(200)
                self.send_header("Content-Type", TYPES.get(file.suffix, "application/octet-stream"))
                return self._send_body(file.read_bytes())
            if path not in ROUTES:
                raise api.RequestError(f"no such page or endpoint: {path[:100]}", 404)
            method, name, keys = ROUTES[path]
            self._allow(path, method)
            body = api.parse_body(self.body, keys) if method == "POST" else parse_qs(query, keep_blank_values=True)
            getattr(self, "_" + name)(body)
        except api.RequestError as err:
            allow = [("Allow", ROUTES.get(path, ("GET",))[0])] if err.status == 405 else []
            self._json(err.status, {"error": err.message}, allow)
            if self.unread:  # the sender of a too-big body sees the 413 only once it could send it all
                self._drop(self.unread)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the browser went away
        except Exception as err:  # a bug: its traceback goes to the server's log, one line to the browser
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            self._json(500, {"error": f"internal error ({type(err).__name__}); the server's log has the details"})

    def _read_body(self):
        """Read the request body into ``self.body``; one of over ``api.MAX_BODY`` bytes is left
        unread, its length in ``self.unread``."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise api.RequestError("request body: expected a Content-Length, not a Transfer-Encoding", 411)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            raise api.RequestError("Content-Length: expected a number of bytes") from None
        if length > api.MAX_BODY:
            self.close_connection, self.unread = True, length
            raise api.RequestError(f"request body: expected at most {api.MAX_BODY} bytes (1 MiB), got {length}",
                                   413)
        self.body = self.rfile.read(length)

    def _drop(self, count):
        try:
            left = min(count, MAX_DRAIN)
            while left > 0 and (part := self.rfile.read(min(left, 1 << 16))):
                left -= len(part)
        except OSError:
            pass

    def _check_origin(self):
        """On 127.0.0.1, only this machine's names (no page of another site, by a DNS name that points
        here, reads it); a request another site's page makes in a browser is refused everywhere."""
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if self.server.local and name.strip("[]") not in LOOPBACK:
            raise api.RequestError(f"Host: this server answers to 127.0.0.1 and localhost, got {host[:100]!r}", 403)
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{host}":
            raise api.RequestError(f"Origin: requests from other sites' pages are refused, got {origin[:100]!r}",
                                   403)

    def _allow(self, path, method):
        if self.command != method:
            raise api.RequestError(f"{path} takes {method}, got {self.command}", 405)

    # -- the endpoints ------------------------------------------------------

    def _models(self, query):
        from .sampling import CPU_METHODS

        limits = {"n": [1, api.MAX_IMAGES], "temperature": [0, api.RANGES["temperature"][2]],
                  "seed": [0, api.RANGES["seed"][2]], "body_bytes": api.MAX_BODY, "picture": api.MAX_PICTURE}
        self._json(200, {"models": self.server.catalogue.models, "methods": list(CPU_METHODS), "limits": limits})

    def _sample(self, body, complete=False):
        entry = self.server.catalogue.describe(body.get("model"))
        job = api.sampling_job(body, entry, complete)
        client = self.client_address[0]
        self.server.take(client)
        how, line = "failed", None
        try:
            with self.server.catalogue.borrow(entry["name"]) as model:
                self.send_response(200)
                for name, value in (("Content-Type", "application/x-ndjson"), ("Transfer-Encoding", "chunked"),
                                    ("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff"),
                                    ("Connection", "close")):
                    self.send_header(name, value)
                self.end_headers()
                self.close_connection = True
                try:
                    _, seconds = api.stream(model, job, self._send_line)
                    how, line = "done", {"type": "done", "seconds": round(seconds, 3)}
                except api.Gone:
                    how = "stopped"
                except Exception as err:  # after the start line: the stream's own error line
                    traceback.print_exc(file=sys.stderr)
                    line = {"type": "error", "error": f"the sampling failed ({type(err).__name__}: "
                                                      f"{' '.join(str(err).split())[:200]})"}
        finally:
            self.server.free(client, how)  # before the last line: a client that read it may start the next
        if line is not None:
            try:
                self._send_line(line)
                self.wfile.write(b"0\r\n\r\n")
            except api.Gone:
                pass

    def _complete(self, body):
        self._sample(body, complete=True)

    def _send_line(self, line):
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        except OSError:  # a closed connection or one unread for `timeout` seconds: the browser is gone
            raise api.Gone() from None

    def _field(self, body):
        arch = api.choice(body, "arch", ("pixelcnn", "gated"), "pixelcnn")
        size = api.FIELD_SIZE
        entry = {"height": size, "width": size, "channels": 3}
        row = api.position(body, entry, "row", "position", size) if body.get("row") is not None else size // 2
        col = api.position(body, entry, "col", "position", size) if body.get("col") is not None else size // 2
        self._json(200, api.field(arch, row, col, api.position(body, entry, "channel", "channel", 3)))

    def _explored(self, body):
        """The model, the image and the class an Explore request names, checked."""
        entry = self.server.catalogue.describe(body.get("model"))
        return entry, api.image_of(body, entry), api.class_of(body, entry)

    def _distribution(self, body):
        entry, labels, klass = self._explored(body)
        where = [api.position(body, entry, key, name, entry[count]) for key, name, count in
                 (("row", "position", "height"), ("col", "position", "width"), ("channel", "channel", "channels"))]
        with self.server.catalogue.borrow(entry["name"]) as model:
            self._json(200, api.distribution(model, labels, klass, *where))

    def _nll(self, body):
        entry, labels, klass = self._explored(body)
        with self.server.catalogue.borrow(entry["name"]) as model:
            self._json(200, api.nll_map(model, labels, klass))

    def _masks(self, query):
        self._json(200, api.masks(query))


def start(catalogue, host="127.0.0.1", port=0, web=WEB, log=False):
    """A server on its own thread (port 0: a free one), for tests and notebooks; ``shutdown()`` stops it."""
    server = Server(host, port, catalogue, web=web, log=log)
    threading.Thread(target=server.serve_forever, daemon=True, name="minipixel-serve").start()
    return server
