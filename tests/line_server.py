"""A loopback LINE Messaging API for the tests: plain HTTP on 127.0.0.1 only, in a thread.

It answers as the Messaging API does, so mailbot's client is exercised for real:
  * POST /v2/bot/message/push: the channel access token (``Authorization: Bearer``; 401 otherwise),
    a JSON body (``to``, one to five text messages of at most 5,000 characters; 400 otherwise),
    a recipient the bot is in (``groups``; 400 otherwise), the retry key (``X-Line-Retry-Key``, a
    UUID: once a push under a key was accepted, the same key again is 409 and nothing is
    delivered), and what the test plans for the next pushes (``plan``: 429 with or without
    Retry-After, 500, or ``"lose"``: accepted and delivered, the connection then closed without
    an answer — a timeout or a crash as the caller sees it);
  * GET /v2/bot/info (the bot's profile), /v2/bot/group/<id>/summary and /v2/bot/profile/<id>
    (404 for a group the bot is not in, a user who is not its friend).
``requests`` keeps every request (method, path, headers, JSON body); ``delivered`` what reached a
group: (to, [texts]) once per push accepted.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
GROUP = "C" + "1" * 32
OTHER_GROUP = "C" + "2" * 32       # a group the bot was never invited to
TOKEN = "line-test-token-" + "x" * 40
BOT = {"userId": "U" + "f" * 32, "basicId": "@123abcde", "displayName": "สารบรรณ แจ้งเตือน",
       "chatMode": "bot", "markAsReadMode": "auto"}


class LineServer:
    def __init__(self, token: str = TOKEN, groups: tuple[str, ...] = (GROUP,)) -> None:
        self.token = token
        self.groups = set(groups)
        self.plan: list[object] = []            # per push, in order: an int status, (429, "120"), "lose", "hang"
        self.requests: list[dict] = []
        self.delivered: list[tuple[str, list[str]]] = []
        self.accepted: set[str] = set()
        self.lock = threading.Lock()
        self.hang_seconds = 3.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # type: ignore[no-untyped-def]
                pass

            def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-line-request-id", "test-" + str(len(server.requests)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _record(self, body: object) -> dict:
                entry = {"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                         "body": body}
                with server.lock:
                    server.requests.append(entry)
                return entry

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    self._answer(401, {"message": "Authentication failed. Confirm that the access token in the "
                                                  "authorization header is valid."})
                    return False
                return True

            def do_GET(self):  # type: ignore[no-untyped-def]
                self._record(None)
                if not self._authorised():
                    return
                if self.path == "/v2/bot/info":
                    return self._answer(200, BOT)
                found = re.fullmatch(r"/v2/bot/(group|profile)/([^/]+)(/summary)?", self.path)
                if found and found[2] in server.groups:
                    return self._answer(200, {"groupId": found[2], "groupName": "งานสารบรรณ"}
                                        if found[1] == "group" else {"userId": found[2], "displayName": "เจ้าหน้าที่"})
                self._answer(404, {"message": "Not found"})

            def do_POST(self):  # type: ignore[no-untyped-def]
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw.decode("utf-8"))
                except ValueError:
                    body = None
                self._record(body)
                if self.path != "/v2/bot/message/push":
                    return self._answer(404, {"message": "Not found"})
                if not self._authorised():
                    return
                key = self.headers.get("X-Line-Retry-Key", "")
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json" or \
                        not isinstance(body, dict) or (key and not UUID.fullmatch(key)):
                    return self._answer(400, {"message": "The request body has 1 error(s)"})
                messages = body.get("messages")
                if not isinstance(messages, list) or not 1 <= len(messages) <= 5 or any(
                        m.get("type") != "text" or not m.get("text") or len(m["text"]) > 5000 for m in messages):
                    return self._answer(400, {"message": "The request body has 1 error(s)",
                                              "details": [{"message": "invalid messages", "property": "messages"}]})
                with server.lock:
                    step = server.plan.pop(0) if server.plan else 200
                if step == "hang":
                    time.sleep(server.hang_seconds)
                    return
                if isinstance(step, tuple):
                    return self._answer(step[0], {"message": "You have reached your monthly limit."
                                                  if step[0] == 429 else "error"},
                                        {"Retry-After": step[1]} if step[1] else None)
                if step != 200 and step != "lose":
                    return self._answer(int(step), {"message": "The API rate limit has been exceeded. Try again "
                                                               "later." if step == 429 else "Internal error"})
                if body.get("to") not in server.groups:
                    return self._answer(400, {"message": "Failed to send messages"})
                with server.lock:
                    if key and key in server.accepted:
                        return self._answer(409, {"message": "The retry key is already accepted"},
                                            {"x-line-accepted-request-id": "first"})
                    if key:
                        server.accepted.add(key)
                    server.delivered.append((body["to"], [m["text"] for m in messages]))
                if step == "lose":      # the push is LINE's; its answer never reaches the caller
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._answer(200, {"sentMessages": [{"id": str(i), "quoteToken": "q"} for i in range(len(messages))]})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def pushes(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    def __enter__(self) -> "LineServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
