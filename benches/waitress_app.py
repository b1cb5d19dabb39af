"""The benchmark app for waitress, the same routes as maitred's ``serve``
example and the peers in ``benches/peers``.

``GET /`` -> ``Hello, World!``; ``POST /echo`` -> the body back;
``POST /upload`` -> the body read in 64 KiB pieces and counted, the count
back; ``GET /file`` -> the file named by the ``BENCH_FILE`` environment
variable, through ``wsgi.file_wrapper``.

Run (as ``benches/compare`` does, from the ``benches`` directory)::

    BENCH_FILE=/path/to/file python3 -m waitress --listen=127.0.0.1:8080 \\
        --threads=4 waitress_app:app
"""

import os

HELLO = b"Hello, World!"
CHUNK = 65536


def _text(start_response, status, body):
    start_response(
        status,
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def app(environ, start_response):
    method = environ["REQUEST_METHOD"]
    path = environ.get("PATH_INFO", "")
    if path == "/":
        return _text(start_response, "200 OK", HELLO)
    if path in ("/echo", "/upload"):
        if method not in ("POST", "PUT"):
            return _text(start_response, "405 Method Not Allowed", b"405 Method Not Allowed\n")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        stream = environ["wsgi.input"]
        if path == "/echo":
            body = stream.read(length)
            start_response(
                "200 OK",
                [
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        count = 0
        while True:
            piece = stream.read(CHUNK)
            if not piece:
                break
            count += len(piece)
        return _text(start_response, "200 OK", str(count).encode())
    if path == "/file":
        name = os.environ.get("BENCH_FILE")
        if not name:
            return _text(start_response, "404 Not Found", b"BENCH_FILE is not set\n")
        try:
            f = open(name, "rb")
        except OSError as e:
            return _text(start_response, "404 Not Found", f"{e}\n".encode())
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(os.fstat(f.fileno()).st_size)),
            ],
        )
        return environ["wsgi.file_wrapper"](f, CHUNK)
    return _text(start_response, "404 Not Found", b"404 Not Found\n")
