"""A fake dockerd on a real unix socket: the HTTP the client sends is parsed by the standard library's
server and answered from a route table, so the client's wire format is what is under test (no Docker)."""

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit


class FakeDockerd:
    def __init__(self, path):
        self.path, self.routes, self.seen = str(path), {}, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def address_string(self):
                return "unix"

            def _serve(self):
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.seen.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                  "body": body, "headers": dict(self.headers)})
                route = fake.routes.get((self.command, url.path))
                if route is None:
                    status, payload = 404, {"message": "page not found"}
                else:
                    status, payload = route(fake.seen[-1]) if callable(route) else route
                if payload == "hang up":
                    self.close_connection = True
                    self.connection.close()
                    return
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode() if payload is not None else b""
                self.send_response(status)
                if self.command == "POST" and url.path == "/images/create":  # dockerd streams pulls chunked
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for line in raw.splitlines(keepends=True):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = do_DELETE = _serve

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(self.path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self):
        return "unix://" + self.path
