"""``minipixel serve``: the page's own files as a server started on a folder serves them (the
plain files directly in it, by plain names, each with its type), the refusals' headers and
messages, an empty query value, a server on IPv6's loopback and the log a Server keeps by default."""
import http.client
import json
import socket
import threading

import pytest

from minipixel import serve, serve_api
from test_serve_api_limits import raw


def request(port, method, path, host="127.0.0.1", body=None):
    """(status, headers, body bytes) of ``method path`` sent as it is."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request(method, path, body=body)
        answer = conn.getresponse()
        return answer.status, answer.headers, answer.read()
    finally:
        conn.close()


def refusal(port, method, path, **kwargs):
    """(status, headers, error) of a refused request: one line of JSON, the error alone."""
    status, headers, body = request(port, method, path, **kwargs)
    answer = json.loads(body)
    assert 400 <= status < 500 and headers["Content-Type"] == "application/json" and list(answer) == ["error"]
    return status, headers, answer["error"]


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    """A page folder with files of every kind of name, and beside them what is no file of the page's:
    a sub-folder, links to a file and to a folder, names that are not plain."""
    root = tmp_path_factory.mktemp("site")
    folder = root / "web"
    folder.mkdir()
    (folder / "index.html").write_text("<p>index</p>")
    (folder / "About-Us.html").write_text("<p>about</p>")  # upper-case letters are a plain name
    (folder / "Z_9.JS").write_text("z")  # so is an upper-case suffix, which no type is listed for
    (folder / "data.bin").write_bytes(b"\x00\x01\x02")
    (folder / "notes.txt").write_text("notes")
    (folder / ".hidden").write_text("hidden")
    (folder / "sub").mkdir()
    (folder / "sub" / "inner.js").write_text("inner")
    (root / "secret.js").write_text("secret")
    (folder / "link.js").symlink_to(root / "secret.js")
    (folder / "linked").symlink_to(folder / "sub", target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def server(web):
    srv = serve.start(serve_api.Catalogue([], installed=False), web=web)
    yield srv
    srv.shutdown()
    srv.server_close()


def test_pages_are_the_plain_files_directly_in_the_folder_by_plain_names(web):
    assert serve.pages(web) == {f"/{name}": web / name for name in
                                ("About-Us.html", "Z_9.JS", "data.bin", "index.html", "notes.txt")} | {
        "/": web / "index.html"}


@pytest.mark.parametrize("path, text, kind", [
    ("/", b"<p>index</p>", "text/html; charset=utf-8"),
    ("/About-Us.html", b"<p>about</p>", "text/html; charset=utf-8"),
    ("/Z_9.JS", b"z", "application/octet-stream"),
    ("/data.bin", b"\x00\x01\x02", "application/octet-stream"),
    ("/notes.txt", b"notes", "application/octet-stream"),
])
def test_a_page_file_comes_with_its_type_and_one_of_no_listed_type_as_bytes(server, path, text, kind):
    status, headers, body = request(server.server_port, "GET", path)
    assert (status, body, headers["Content-Type"]) == (200, text, kind)
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["Content-Length"] == str(len(text))


@pytest.mark.parametrize("path", ["/sub", "/sub/", "/sub/inner.js", "/link.js", "/linked", "/linked/inner.js",
                                  "/.hidden", "/secret.js"])
def test_a_folder_a_link_or_a_name_not_plain_is_no_page_and_a_404_says_which(server, path):
    status, headers, error = refusal(server.server_port, "GET", path)
    assert status == 404 and error == f"no such page or endpoint: {path}"
    assert "Allow" not in headers  # only a 405 says which method a path takes


@pytest.mark.parametrize("method, path", [("POST", "/"), ("PUT", "/index.html"), ("DELETE", "/data.bin")])
def test_a_page_takes_get_only_and_the_405_says_so_by_its_path(server, method, path):
    status, headers, error = refusal(server.server_port, method, path, body=b"{}" if method == "POST" else None)
    assert status == 405 and error == f"{path} takes GET, got {method}" and headers["Allow"] == "GET"


@pytest.mark.parametrize("query, error", [
    ("kernel=", "kernel: expected an odd int from 1 to 15, got ''"),
    ("kernel=3&colors=", "colors: expected 1 or 3, got ''"),
])
def test_an_empty_query_value_is_refused_not_taken_for_the_default(server, query, error):
    status, headers, got = refusal(server.server_port, "GET", "/api/masks?" + query)
    assert (status, got) == (400, error) and "Allow" not in headers


def test_a_refusal_other_than_405_has_no_allow_header(server):
    status, headers, _ = refusal(server.server_port, "POST", "/api/field", body=b"[]")
    assert status == 400 and "Allow" not in headers
    status, headers, _ = refusal(server.server_port, "GET", "/api/field")
    assert status == 405 and headers["Allow"] == "POST"


def test_a_missing_page_folder_serves_the_api_and_no_page(tmp_path):
    assert serve.pages(tmp_path / "missing") == {}
    srv = serve.start(serve_api.Catalogue([], installed=False), web=tmp_path / "missing")
    try:
        assert refusal(srv.server_port, "GET", "/")[:3:2] == (404, "no such page or endpoint: /")
        status, _, body = request(srv.server_port, "GET", "/api/models")
        assert status == 200 and json.loads(body)["models"] == []
    finally:
        srv.shutdown()
        srv.server_close()


def ipv6_loopback():
    """Whether this machine can listen on ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback (::1) to listen on")
def test_a_server_on_ipv6s_loopback_answers_there_and_only_to_this_machines_names(tmp_path):
    (tmp_path / "index.html").write_text("v6")
    srv = serve.start(serve_api.Catalogue([], installed=False), host="::1", web=tmp_path)
    try:
        assert srv.server_name == "::1" and isinstance(srv.server_port, int) and srv.server_port > 0
        assert request(srv.server_port, "GET", "/", host="::1")[::2] == (200, b"v6")
        conn = http.client.HTTPConnection("::1", srv.server_port, timeout=30)
        conn.putrequest("GET", "/", skip_host=True)
        conn.putheader("Host", "evil.example")
        conn.endheaders()
        answer = conn.getresponse()
        assert answer.status == 403 and "evil.example" in json.loads(answer.read())["error"]
        conn.close()
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_server_made_as_minipixel_serve_makes_it_logs_each_request(tmp_path, capsys):
    srv = serve.Server("127.0.0.1", 0, serve_api.Catalogue([], installed=False), web=tmp_path)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        assert request(srv.server_port, "GET", "/api/models")[0] == 200
        assert request(srv.server_port, "GET", "/nothing")[0] == 404
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(10)
    err = capsys.readouterr().err
    assert '"GET /api/models HTTP/1.1" 200' in err and '"GET /nothing HTTP/1.1" 404' in err


def test_a_chunked_body_is_refused_with_411_and_the_connection_closed(server):
    status, headers, answer, closed = raw(server, b"POST /api/field HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                          b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert status == 411 and answer == {"error": "request body: expected a Content-Length, not a Transfer-Encoding"}
    assert headers["Connection"] == "close" and closed


def test_a_failing_endpoint_is_a_500_that_closes_the_connection(server, monkeypatch, capsys):
    def broken(query):
        raise RuntimeError("no masks today")

    monkeypatch.setattr(serve_api, "masks", broken)
    status, headers, answer, closed = raw(server, b"GET /api/masks HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert status == 500 and answer == {"error": "internal error (RuntimeError); the server's log has the details"}
    assert headers["Connection"] == "close" and closed
    assert "RuntimeError: no masks today" in capsys.readouterr().err


def test_a_client_silent_mid_body_is_dropped_with_no_error_in_the_log(server, monkeypatch, capsys):
    monkeypatch.setattr(serve.Handler, "timeout", 0.3)
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
        sock.sendall(b"POST /api/field HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n{}")
        assert sock.recv(1) == b""  # no answer: closed once the rest is `timeout` late
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("length", ["abc", "-1", "1e3"])
def test_a_content_length_not_a_number_of_bytes_is_a_400_that_closes_the_connection(server, length):
    status, headers, answer, closed = raw(server, b"POST /api/field HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                          b"Content-Length: %s\r\n\r\n{}" % length.encode())
    assert (status, answer) == (400, {"error": "Content-Length: expected a number of bytes"})
    assert headers["Connection"] == "close" and closed


def test_a_body_of_exactly_one_mebibyte_is_read(server):
    body = b'{"arch": "none"' + b" " * (serve_api.MAX_BODY - 16) + b"}"
    assert len(body) == serve_api.MAX_BODY
    status, _, error = refusal(server.server_port, "POST", "/api/field", body=body)
    assert (status, error) == (400, "arch: expected one of pixelcnn, gated, got 'none'")  # not 413


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
@pytest.mark.parametrize("port", ["", ":80", ":8000"])
def test_this_machines_names_with_or_without_a_port_are_answered(server, host, port):
    status, headers, answer, _ = raw(server, f"GET /api/models HTTP/1.1\r\nHost: {host}{port}\r\n"
                                     "Connection: close\r\n\r\n".encode())
    assert status == 200 and answer["models"] == []


@pytest.mark.parametrize("host", ["", "evil.example", "evil.example:80", "Xlocalhost", "localhostX:80",
                                  "[127.0.0.1]x", "[::1]x", "127.0.0.1.evil.example"])
def test_other_names_and_no_name_are_refused_on_this_machine(server, host):
    header = f"Host: {host}\r\n" if host else ""
    status, _, answer, _ = raw(server, f"GET /api/models HTTP/1.0\r\n{header}\r\n".encode())
    assert (status, answer) == (403, {"error": f"Host: this server answers to 127.0.0.1 and localhost, got {host!r}"})
