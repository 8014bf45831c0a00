"""A local webhook receiver (loopback only): records every JSON message posted
to it, and answers with the statuses it is told to (default 200). Used by the
tests and the demo to see what the notifier sends."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


class WebhookReceiver:
    def __init__(self, on_message: Callable[[dict[str, Any]], None] | None = None):
        self.received: list[dict[str, Any]] = []
        # Statuses to answer next, in order; (status, headers) to add headers (a redirect's Location).
        self.answers: list[int | tuple[int, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    message = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    message = {"unparsable": True}
                receiver.received.append(message)
                if on_message:
                    on_message(message)
                answer = receiver.answers.pop(0) if receiver.answers else 200
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/SECRETPATH"
        threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
