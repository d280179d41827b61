"""A minimal fake IMS for the benchmarks: 127.0.0.1 only, plain HTTP or TLS.

POST /ims/exchange/jwt answers a fixed bearer token; it does not check the
JWT (tests/ does that). Accepted sockets get TCP_NODELAY: without it, the
reply waits on the client's delayed ACK and each run gains ~40 ms that is
the server's, not the client's. It counts the requests it answered so the
bench can tell one exchange per run from retries, and a cache hit from a
fetch.

    python3 bench/fake_ims.py [--tls CERT KEY]   # serve until Ctrl-C
"""

import http.server
import json
import socket
import ssl
import sys
import threading

REPLY = json.dumps(
    {"token_type": "bearer", "access_token": "bench-token", "expires_in": 86399999}
).encode()
MAX_BODY = 64 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "fake-ims-bench"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 - quiet
        pass

    def _send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)  # drain, or closing may reset the socket
        with self.server.lock:
            self.server.requests[self.path] = self.server.requests.get(self.path, 0) + 1
        if self.path == "/ims/exchange/jwt":
            self._send(200, REPLY)
        else:
            self._send(404, b'{"error":"not_found"}')

    def do_GET(self):
        with self.server.lock:
            self.server.requests[self.path] = self.server.requests.get(self.path, 0) + 1
        self._send(404, b'{"error":"not_found"}')


class FakeIms(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, tls=None):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.requests = {}
        self.context = None
        if tls:
            cert, key = tls
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(cert, key)
        self.thread = None

    def get_request(self):
        conn, addr = self.socket.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.context is not None:
            conn.settimeout(10)
            conn = self.context.wrap_socket(conn, server_side=True)
        return conn, addr

    def handle_error(self, request, client_address):
        pass  # a client that hangs up early is not our concern here

    @property
    def url(self):
        scheme = "https" if self.context else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def count(self, path="/ims/exchange/jwt"):
        with self.lock:
            return self.requests.get(path, 0)

    def total(self):
        with self.lock:
            return sum(self.requests.values())

    def start(self):
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()


def main(argv):
    tls = None
    if len(argv) == 4 and argv[1] == "--tls":
        tls = (argv[2], argv[3])
    elif len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    server = FakeIms(tls)
    print(server.url, flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
