"""A loopback Microsoft Graph for the tests: the mail part of Graph that mailbot uses, built from
Microsoft's documented request and response shapes, on 127.0.0.1 (a random port, plain HTTP) in
a thread. There is no real Graph here: what this server does is what the documentation says
Graph does, and nothing more is claimed for it.

Under ``/v1.0/users/{mailbox}``:
  GET   mailFolders/{id | well-known name}            a folder (inbox, sentitems, junkemail, drafts ...)
  GET   mailFolders?$filter=displayName eq '...'       the top-level folders; POST mailFolders makes one
                                                       (409 ErrorFolderExists when it is there)
  GET   mailFolders/{id}/childFolders, POST likewise   one level down
  GET   mailFolders/{id}/messages/delta                the delta query: pages of ``odata.maxpagesize``
                                                       (Prefer) joined by ``@odata.nextLink``, the last
                                                       with ``@odata.deltaLink``; from a delta link,
                                                       what changed since (``@removed`` for messages
                                                       that left); an unknown link: 410 SyncStateNotFound
  GET   mailFolders/{id}/messages                      $select, $top, $orderby, $filter sentDateTime ge ...
  GET   messages/{id}, GET messages/{id}/$value        a message; its MIME
  POST  messages/{id}/move                             {"destinationId"}: 201 and the message, under
                                                       the same id only when ``Prefer: IdType="ImmutableId"``
  PATCH messages/{id}                                  {"flag": {"flagStatus"}}
  POST  messages                                       base64 MIME (text/plain): a draft in Drafts
  POST  sendMail                                       base64 MIME (text/plain): 202; the MIME decoded
                                                       and kept (``sent``), a copy saved in Sent Items
Every request needs ``Authorization: Bearer`` with a token the server issued (``issue``) or
``check`` accepts; an expired one (``expire``) is answered 401 InvalidAuthenticationToken.
The tests' levers: ``deliver``, ``throttle`` (the next requests answered 429/503 with
Retry-After), ``refuse`` (sendMail answers 400 ErrorInvalidRecipients), ``allowed`` (mailboxes
the app may open: others 403 ErrorAccessDenied, as an RBAC scope or an application access policy
answers), ``move_by_hand``; at most 4 requests at once per mailbox (more: 429
ApplicationThrottled, MailboxConcurrency). ``requests`` records what was asked.
"""
from __future__ import annotations

import base64
import binascii
import email
import email.policy
import email.utils
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, quote, unquote, urlsplit

WELL_KNOWN = ("msgfolderroot", "inbox", "sentitems", "junkemail", "drafts", "deleteditems", "archive")
DISPLAY = {"inbox": "Inbox", "sentitems": "Sent Items", "junkemail": "Junk Email", "drafts": "Drafts",
           "deleteditems": "Deleted Items", "archive": "Archive", "msgfolderroot": "Top of Information Store"}
DEFAULT_PAGE = 10          # Graph's default page size of a message delta query


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id(prefix: str = "AAMkAGI2") -> str:
    """An id shaped like Exchange's: base64 with '-', '_' and '=' in it (paths must quote them)."""
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(33)).decode() + "AAA="


@dataclass
class Folder:
    id: str
    name: str
    parent: str | None              # None: the root; top-level folders have the root as parent
    well_known: str | None = None


@dataclass
class Item:
    id: str
    folder: str
    raw: bytes
    received: datetime
    version: int = 1
    flag: str = "notFlagged"
    draft: bool = False
    sent: datetime | None = None


@dataclass
class Sent:
    """A message sendMail accepted: its MIME as decoded, and parsed."""

    raw: bytes
    recipients: list[str]
    message: EmailMessage = field(repr=False)


@dataclass
class Round:
    """One delta round being paged: the changes, how many were served, the link that follows."""

    folder: str
    changes: list[dict]
    served: int
    next_token: str


class GraphServer:
    def __init__(self, mailbox: str, clock: Callable[[], datetime] = _now, concurrency: int = 4) -> None:
        self.mailbox = mailbox.lower()
        self.users = {self.mailbox}
        self.allowed = {self.mailbox}       # the mailboxes the app's RBAC scope takes in
        self.clock = clock
        self.concurrency = concurrency
        self.lock = threading.RLock()
        self.folders: dict[str, Folder] = {}
        self.items: dict[str, Item] = {}
        self.sent: list[Sent] = []
        self.tokens: set[str] = set()
        self.expired: set[str] = set()
        self.check: Callable[[str], bool] | None = None
        self.requests: list[dict] = []
        self.refused: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay = 0.0
        self._throttles: list[dict] = []
        self._snapshots: dict[str, tuple[str, dict[str, int], str]] = {}   # token -> (folder, versions, $select)
        self._rounds: dict[str, Round] = {}
        self._order = itertools.count(1)
        self._arrival: dict[str, int] = {}
        root = Folder(new_id("AQMkRoot"), DISPLAY["msgfolderroot"], None, "msgfolderroot")
        self.folders[root.id] = root
        self.root = root.id
        for wk in WELL_KNOWN[1:]:
            f = Folder(new_id("AQMkAGI2"), DISPLAY[wk], root.id, wk)
            self.folders[f.id] = f
        self.httpd: ThreadingHTTPServer | None = None
        self.port = 0

    # ------------------------------------------------------------------ life

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1.0"

    def start(self) -> "GraphServer":
        server = self

        class Handler(_Handler):
            owner = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, name="graph-server", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()

    def __enter__(self) -> "GraphServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ the tests' levers

    def issue(self) -> str:
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(24) + ".sig"
        with self.lock:
            self.tokens.add(token)
        return token

    def expire(self, token: str | None = None) -> None:
        """The token (every token issued or seen so far) has expired: answered 401 from now on."""
        with self.lock:
            seen = {r["authorization"][7:] for r in self.requests if r["authorization"].startswith("Bearer ")}
            self.expired |= {token} if token else set(self.tokens) | seen

    def throttle(self, n: int = 1, status: int = 429, retry_after: float | None = 2, match: str = "",
                 skip: int = 0) -> None:
        """The next ``n`` requests whose path (and query) contains ``match``, after ``skip`` of them
        went through, are answered ``status`` with Retry-After."""
        with self.lock:
            self._throttles.append({"n": n, "status": status, "retry_after": retry_after, "match": match,
                                    "skip": skip})

    def refuse(self, address: str) -> None:
        self.refused.add(address.lower())

    def folder(self, name: str) -> Folder | None:
        """A folder by its well-known name, display name or path (A/B)."""
        with self.lock:
            key = name.strip().lower()
            for f in self.folders.values():
                if f.well_known and (f.well_known == key or f.name.lower() == key):
                    return f
            parent = self.root
            found = None
            for part in [p for p in name.split("/") if p]:
                found = next((f for f in self.folders.values() if f.parent == parent and f.name == part), None)
                if found is None:
                    return None
                parent = found.id
            return found

    def create_folder(self, name: str, parent: str | None = None) -> Folder:
        with self.lock:
            f = Folder(new_id("AQMkAGI2"), name, parent or self.root)
            self.folders[f.id] = f
            return f

    def deliver(self, *messages: bytes | EmailMessage, folder: str = "Inbox", when: datetime | None = None) -> list[str]:
        with self.lock:
            box = self.folder(folder) or self.create_folder(folder)
            ids = []
            for m in messages:
                item = Item(new_id(), box.id, bytes(m), (when or self.clock()).replace(microsecond=0))
                self.items[item.id] = item
                self._arrival[item.id] = next(self._order)
                ids.append(item.id)
            return ids

    def in_folder(self, name: str) -> list[Item]:
        with self.lock:
            box = self.folder(name)
            if box is None:
                return []
            return sorted((i for i in self.items.values() if i.folder == box.id), key=lambda i: self._arrival[i.id])

    def count(self, name: str) -> int:
        return len(self.in_folder(name))

    def messages_in(self, name: str) -> list[bytes]:
        return [i.raw for i in self.in_folder(name)]

    def move_by_hand(self, item_id: str, folder: str) -> None:
        """An officer moves a message in Outlook (its immutable id stays)."""
        with self.lock:
            box = self.folder(folder) or self.create_folder(folder)
            self.items[item_id].folder = box.id
            self.items[item_id].version += 1

    def asked(self, contains: str, method: str | None = None) -> list[dict]:
        with self.lock:
            return [r for r in self.requests if contains in r["path"] and (method is None or r["method"] == method)]

    # ------------------------------------------------------------------ what a request sees

    def _message_json(self, item: Item, select: str, immutable: bool = True) -> dict:
        fields = [f.strip() for f in select.split(",") if f.strip()] if select else \
            ["receivedDateTime", "subject", "parentFolderId", "internetMessageId", "isDraft"]
        head = email.message_from_bytes(item.raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0] + b"\r\n\r\n",
                                        policy=email.policy.default)
        out: dict = {"@odata.type": "#microsoft.graph.message", "@odata.etag": f'W/"{item.version}"', "id": item.id}
        for name in fields:
            if name == "receivedDateTime":
                out[name] = _stamp(item.received)
            elif name == "sentDateTime":
                out[name] = _stamp(item.sent or item.received)
            elif name == "subject":
                out[name] = str(head.get("Subject", "") or "")
            elif name == "parentFolderId":
                out[name] = item.folder
            elif name == "internetMessageId":
                out[name] = str(head.get("Message-ID", "") or "").strip() or None
            elif name == "isDraft":
                out[name] = item.draft
            elif name == "flag":
                out[name] = {"flagStatus": item.flag}
            elif name == "toRecipients":
                out[name] = [{"emailAddress": {"name": n, "address": a}}
                             for n, a in email.utils.getaddresses([str(v) for v in head.get_all("To") or []])]
            elif name == "internetMessageHeaders":
                out[name] = [{"name": k, "value": str(v)} for k, v in head.items()]
        return out


class _Handler(BaseHTTPRequestHandler):
    owner: GraphServer
    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16          # head and body in one write (else Nagle and delayed ACKs: 40 ms a request)

    def log_message(self, *args) -> None:  # noqa: D401 - quiet
        pass

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: int, body: dict | bytes | None = None, headers: dict | None = None,
              content_type: str = "application/json") -> None:
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self._status = status

    def _error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        self._send(status, {"error": {"code": code, "message": message,
                                      "innerError": {"date": _stamp(_now()), "request-id": secrets.token_hex(8)}}},
                   headers)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        o = self.owner
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = self._body() if method in ("POST", "PATCH") else b""
        prefer = self.headers.get("Prefer", "")
        self._status = 0
        with o.lock:
            o.in_flight += 1
            o.max_in_flight = max(o.max_in_flight, o.in_flight)
            busy = o.in_flight > o.concurrency
        try:
            if busy:
                self._error(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                            {"Retry-After": "1"})
            else:
                if o.delay:
                    time.sleep(o.delay)     # a slow Graph: requests overlap
                self._serve(method, path, query, body, prefer)
        finally:
            with o.lock:
                o.in_flight -= 1
                o.requests.append({"method": method, "path": path, "query": query, "status": self._status,
                                   "prefer": prefer, "authorization": self.headers.get("Authorization", "")})

    # ------------------------------------------------------------------ the endpoints

    def _serve(self, method: str, path: str, query: dict, body: bytes, prefer: str) -> None:
        o = self.owner
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with o.lock:
            known = token in o.tokens or (o.check is not None and bool(token) and o.check(token))
            if not known or token in o.expired:
                self._error(401, "InvalidAuthenticationToken",
                            "Access token has expired or is not yet valid." if token in o.expired else
                            "Access token validation failure.",
                            {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
                return
            for rule in o._throttles:
                if rule["n"] > 0 and rule["match"] in self.path:
                    if rule["skip"] > 0:
                        rule["skip"] -= 1
                        continue
                    rule["n"] -= 1
                    headers = {"Retry-After": str(rule["retry_after"])} if rule["retry_after"] is not None else {}
                    code = "TooManyRequests" if rule["status"] == 429 else "ServiceUnavailable"
                    self._error(rule["status"], code, "Please retry after the time given.", headers)
                    return
        m = re.fullmatch(r"/v1\.0/users/([^/]+)(/.*)", path)
        if m is None:
            self._error(400, "BadRequest", f"Resource not found for the segment '{path}'.")
            return
        user, rest = m.group(1).lower(), m.group(2)
        if user not in o.users:
            self._error(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
            return
        if user not in o.allowed:
            self._error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            return
        immutable = 'idtype="immutableid"' in prefer.lower()
        size = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        page = int(size.group(1)) if size else DEFAULT_PAGE
        with o.lock:
            self._route(method, rest, query, body, immutable, page)

    def _folder_of(self, key: str) -> Folder | None:
        o = self.owner
        if key in o.folders:
            return o.folders[key]
        return next((f for f in o.folders.values() if f.well_known == key.lower()), None)

    def _folder_json(self, f: Folder) -> dict:
        o = self.owner
        return {"id": f.id, "displayName": f.name, "parentFolderId": f.parent,
                "childFolderCount": sum(1 for c in o.folders.values() if c.parent == f.id),
                "totalItemCount": sum(1 for i in o.items.values() if i.folder == f.id)}

    def _route(self, method: str, rest: str, query: dict, body: bytes, immutable: bool, page: int) -> None:
        o = self.owner
        if rest == "/sendMail" and method == "POST":
            self._send_mail(body)
            return
        if rest == "/messages" and method == "POST":
            raw = self._mime(body)
            if raw is None:
                return
            drafts = self._folder_of("drafts")
            assert drafts is not None
            item = Item(new_id(), drafts.id, raw, o.clock().replace(microsecond=0), draft=True)
            o.items[item.id] = item
            o._arrival[item.id] = next(o._order)
            self._send(201, o._message_json(item, "parentFolderId,isDraft"))
            return
        m = re.fullmatch(r"/messages/([^/]+)(/\$value|/move)?", rest)
        if m is not None:
            self._message(method, m.group(1), m.group(2) or "", query, body, immutable)
            return
        m = re.fullmatch(r"/mailFolders(?:/([^/]+))?(/childFolders|/messages/delta|/messages)?", rest)
        if m is None:
            self._error(400, "BadRequest", f"Resource not found for the segment '{rest}'.")
            return
        key, sub = m.group(1), m.group(2) or ""
        parent = None
        if key is not None:
            parent = self._folder_of(key)
            if parent is None:
                self._error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
                return
        if sub == "/messages/delta":
            assert parent is not None
            self._delta(parent, query, page)
        elif sub == "/messages":
            assert parent is not None
            self._list(parent, query)
        elif sub == "/childFolders" or key is None:
            self._folders(parent.id if parent is not None else o.root, method, query, body)
        elif method == "GET":
            assert parent is not None
            self._send(200, self._folder_json(parent))
        else:
            self._error(405, "BadRequest", "method not allowed")

    def _folders(self, parent: str, method: str, query: dict, body: bytes) -> None:
        o = self.owner
        children = [f for f in o.folders.values() if f.parent == parent]
        if method == "POST":
            name = str(json.loads(body or b"{}").get("displayName") or "")
            if not name:
                self._error(400, "ErrorInvalidParameter", "The displayName is required.")
            elif any(f.name.lower() == name.lower() for f in children):
                self._error(409, "ErrorFolderExists", "A folder with the specified name already exists.")
            else:
                self._send(201, self._folder_json(o.create_folder(name, parent)))
            return
        wanted = query.get("$filter", "")
        m = re.fullmatch(r"displayName eq '((?:[^']|'')*)'", wanted)
        if m is not None:
            name = m.group(1).replace("''", "'")
            children = [f for f in children if f.name.lower() == name.lower()]
        elif wanted:
            self._error(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
            return
        self._send(200, {"value": [self._folder_json(f) for f in children]})

    def _message(self, method: str, item_id: str, sub: str, query: dict, body: bytes, immutable: bool) -> None:
        o = self.owner
        item = o.items.get(item_id)
        if item is None:
            self._error(404, "ErrorItemNotFound", "The specified object was not found in the store.")
            return
        if sub == "/$value" and method == "GET":
            self._send(200, item.raw, content_type="text/plain")
        elif sub == "/move" and method == "POST":
            target = self._folder_of(str(json.loads(body or b"{}").get("destinationId") or ""))
            if target is None:
                self._error(400, "ErrorInvalidIdMalformed", "Id is malformed.")
                return
            item.folder = target.id
            item.version += 1
            if not immutable:           # a regular id changes when the item moves to another folder
                del o.items[item.id]
                item.id = new_id()
                o.items[item.id] = item
                o._arrival[item.id] = next(o._order)
            self._send(201, o._message_json(item, "parentFolderId,receivedDateTime"))
        elif sub == "" and method == "PATCH":
            change = json.loads(body or b"{}")
            if "flag" in change:
                item.flag = str(change["flag"].get("flagStatus") or "notFlagged")
                item.version += 1
            self._send(200, o._message_json(item, "flag"))
        elif sub == "" and method == "GET":
            self._send(200, o._message_json(item, query.get("$select", "")))
        else:
            self._error(405, "BadRequest", "method not allowed")

    def _delta(self, folder: Folder, query: dict, page: int) -> None:
        o = self.owner
        here = f"{o.url}/users/{quote(o.mailbox, safe='@')}/mailFolders/{quote(folder.id, safe='')}/messages/delta"
        if "$skiptoken" in query:
            rnd = o._rounds.get(query["$skiptoken"])
            if rnd is None:
                self._error(410, "SyncStateNotFound", "The sync state generation is not found.")
                return
        else:
            before: dict[str, int] = {}
            select = query.get("$select", "")
            if "$deltatoken" in query:
                snap = o._snapshots.get(query["$deltatoken"])
                if snap is None or snap[0] != folder.id:
                    self._error(410, "SyncStateNotFound", "The sync state generation is not found.")
                    return
                before, select = snap[1], snap[2]
            now = {i.id: i.version for i in o.items.values() if i.folder == folder.id}
            changes = [o._message_json(o.items[i], select or "receivedDateTime")
                       for i in sorted(now, key=lambda i: o._arrival[i]) if before.get(i) != now[i]]
            changes += [{"@odata.type": "#microsoft.graph.message", "id": i, "@removed": {"reason": "deleted"}}
                        for i in before if i not in now]
            token = secrets.token_urlsafe(16)
            o._snapshots[token] = (folder.id, now, select)
            rnd = Round(folder.id, changes, 0, token)
            o._rounds[secrets.token_urlsafe(12)] = rnd
        chunk = rnd.changes[rnd.served:rnd.served + page]
        rnd.served += len(chunk)
        out: dict = {"@odata.context": "$metadata#Collection(message)", "value": chunk}
        if rnd.served < len(rnd.changes):
            skip = secrets.token_urlsafe(12)
            o._rounds[skip] = rnd
            out["@odata.nextLink"] = f"{here}?$skiptoken={skip}"
        else:
            out["@odata.deltaLink"] = f"{here}?$deltatoken={rnd.next_token}"
        self._send(200, out)

    def _list(self, folder: Folder, query: dict) -> None:
        o = self.owner
        items = [i for i in o.items.values() if i.folder == folder.id]
        wanted = query.get("$filter", "")
        m = re.fullmatch(r"(sentDateTime|receivedDateTime) ge (\S+)", wanted)
        if m is not None:
            since = datetime.fromisoformat(m.group(2).replace("Z", "+00:00"))
            items = [i for i in items if ((i.sent or i.received) if m.group(1) == "sentDateTime" else i.received)
                     >= since]
        elif wanted:
            self._error(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.")
            return
        order = query.get("$orderby", "")
        items.sort(key=lambda i: (i.sent or i.received, o._arrival[i.id]), reverse=order.endswith(" desc"))
        top = int(query.get("$top") or 10)
        skip = int(query.get("$skip") or 0)
        chunk = items[skip:skip + top]
        out: dict = {"value": [o._message_json(i, query.get("$select", "")) for i in chunk]}
        if skip + top < len(items):
            rest = {k: v for k, v in query.items() if k != "$skip"}
            rest["$skip"] = str(skip + top)
            here = f"{o.url}/users/{quote(o.mailbox, safe='@')}/mailFolders/{quote(folder.id, safe='')}/messages"
            out["@odata.nextLink"] = here + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in rest.items())
        self._send(200, out)

    def _mime(self, body: bytes) -> bytes | None:
        if self.headers.get("Content-Type", "").split(";")[0].strip().lower() != "text/plain":
            self._error(400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")
            return None
        try:
            raw = base64.b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if not raw or b":" not in raw.split(b"\n", 1)[0]:
            self._error(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
            return None
        return raw

    def _send_mail(self, body: bytes) -> None:
        o = self.owner
        raw = self._mime(body)
        if raw is None:
            return
        message = email.message_from_bytes(raw, policy=email.policy.default)
        recipients = [a.lower() for _, a in email.utils.getaddresses(
            [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name) or []]) if a]
        if not recipients:
            self._error(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
            return
        refused = [r for r in recipients if r in o.refused]
        if refused:
            self._error(400, "ErrorInvalidRecipients", f"At least one recipient isn't valid., Recipient '{refused[0]}' "
                        "is not resolved.")
            return
        o.sent.append(Sent(raw, recipients, message))
        sent_items = self._folder_of("sentitems")
        assert sent_items is not None
        now = o.clock().replace(microsecond=0)
        item = Item(new_id(), sent_items.id, raw, now, sent=now)        # saveToSentItems: true by default
        o.items[item.id] = item
        o._arrival[item.id] = next(o._order)
        self._send(202)
