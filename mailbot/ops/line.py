"""LINE: alerts pushed to the officers' LINE group, where they actually look.

Owns: the texts (short Thai, a link to the console page), recording them as owed with the alert
that makes them (``queue``: intent before effect), pushing what is owed through the Messaging API
of the agency's LINE Official Account (``Channel.deliver``; LINE Notify closed on 31 March 2025),
what LINE's answers mean in plain Thai, the channel's state for ``mailbot status`` and the
console, and ``mailbot check``'s trial of the token (GET /v2/bot/info and each recipient).

The crash contract: a text is recorded in the alert's own transaction; before a push is made the
texts it carries are given its ``X-Line-Retry-Key`` (a UUID, committed first); LINE's answer is
recorded after. A crash in between leaves the texts owed under the same key: the next push is
refused as a repeat (409), so it is marked sent and nothing reaches the group twice. A push never
runs under the work lock or inside a transaction, each request has a short timeout, and a round
stops at the first sign that LINE is out of reach: a cycle is never held up for long.

Rate limits: the same alert at most hourly (``alerts.Alerts``), at most ``alerts.line.max_per_hour``
pushes an hour (what waits goes together, up to five texts a push), and LINE's own 429 honoured
(its Retry-After, else a growing pause). The channel access token lives in the credential store
(``mail.credentials``; ``mailbot secret set line``), never in mailbot.yaml, the logs or the database.
"""
from __future__ import annotations

import email.utils
import http.client
import json
import logging
import socket
import ssl
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Callable
from urllib.parse import quote, urlsplit

from .. import faults
from ..config import Config, LineConfig
from ..errors import ConfigError, MailbotError
from ..kinds import Outcome
from ..mail.credentials import Store
from ..store import State, from_iso, iso
from ..thai import BANGKOK, thai_date, thai_datetime

log = logging.getLogger(__name__)

TOKEN = "line-channel-access-token"      # its name in the credential store
DEFAULT_API = "https://api.line.me"
PUSH = "/v2/bot/message/push"
MAX_TEXT = 5000            # characters in one text message (the Messaging API's limit)
PER_PUSH = 5               # message objects in one push
SHORT = 1000               # an alert's own words in LINE, at most (the rest is in the console)
PAUSE = "line_pause_until"         # meta: no push before this moment (429, token, LINE out of reach)
FAILURES = "line_failures"         # meta: pushes failed in a row (the pause grows with them)
LAST_FAILURE = "line_last_failure"  # meta: JSON {at, status, thai, english, fix}; cleared by a push accepted
FIX_TOKEN = "mailbot secret set line"


# ---------------------------------------------------------------------------- texts

def console_link(cfg: Config, receipt: str | None = None) -> str:
    """The console page as officers open it: the first of ``console.hosts``, else the address it
    listens on (this computer's name when it listens on every address); a case's own page for a
    receipt number (``/cases/<BE year>/<number>``), else the Today page."""
    c = cfg.console
    if c.hosts:
        host = c.hosts[0]
    elif c.listen in ("0.0.0.0", "::", ""):
        host = socket.gethostname() or "localhost"
    elif c.loopback:
        host = "localhost"
    else:
        host = c.listen
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    path = "/"
    if receipt and "/" in receipt:
        seq, _, year = receipt.partition("/")
        path = f"/cases/{quote(year)}/{quote(seq)}"
    return f"http://{host}:{c.port}{path}"


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def alert_text(cfg: Config, title: str, short: str, began: datetime, receipt: str | None = None) -> str:
    """An alert as the group reads it: what, since when, and where to look."""
    return clip(f"[mailbot แจ้งเตือน] {title}\n{clip(short, SHORT)}\nตั้งแต่ {thai_datetime(began)}\n"
                f"เปิดดู: {console_link(cfg, receipt)}", MAX_TEXT)


def queue(cfg: Config, state: State, kind: str, dedup: str, text: str, now: datetime) -> int:
    """The text owed to every configured group or user (inside the caller's transaction, with
    what it tells of); how many were recorded (none when LINE is not set up, or it was before)."""
    line = cfg.alerts.line
    if line is None:
        return 0
    return sum(state.queue_line(f"{dedup}|{to}", kind, to, clip(text, MAX_TEXT), iso(now)) for to in line.to)


def daily_texts(cfg: Config, state: State, day: date) -> list[tuple[str, str]]:
    """(kind, text) for the day's summary and, when there are any, the overdue cases (no subject
    or name leaves for LINE: receipt numbers, counts and the link)."""
    start = datetime(day.year, day.month, day.day, tzinfo=BANGKOK)
    end = start + timedelta(days=1)
    registered = state.count_registered(iso(start), iso(end))
    arrivals = state.arrivals_by_outcome(iso(start), iso(end))
    late = state.late_cases(day.isoformat())
    parts = [f"ลงทะเบียนรับ {registered} เรื่อง"]
    if arrivals.get(Outcome.QUARANTINED):
        parts.append(f"กักกัน {arrivals[Outcome.QUARANTINED]} ฉบับ")
    held = state.count_outbox("held")
    if held:
        parts.append(f"อีเมลตอบกลับระงับรอเจ้าหน้าที่ {held} ฉบับ")
    parts.append(f"เรื่องเกินกำหนดเวลา {len(late)} เรื่อง")
    link = console_link(cfg)
    out = [("daily", f"[mailbot] สรุปประจำวัน {thai_date(day)}\n" + "\n".join(parts) + f"\nเปิดดู: {link}")]
    if late:
        lines = [f"- เลขรับ {c['receipt']} ครบกำหนด {thai_date(date.fromisoformat(c['due_date']))}"
                 + (" (ด่วน)" if c["urgency_rank"] else "") for c in late[:15]]
        if len(late) > 15:
            lines.append(f"และอีก {len(late) - 15} เรื่อง")
        out.append(("overdue", f"[mailbot] เรื่องเกินกำหนดเวลา {len(late)} เรื่อง\n" + "\n".join(lines)
                    + f"\nเปิดดู: {link}"))
    return out


# ---------------------------------------------------------------------------- the Messaging API

@dataclass
class Answer:
    """What LINE answered: ``status`` 0 when nothing came back (out of reach, timed out)."""

    status: int
    message: str = ""
    retry_after: float | None = None
    body: dict | None = None

    @property
    def accepted(self) -> bool:
        """200, or 409: a push under the same retry key was accepted before."""
        return self.status == 200 or self.status == 409


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After in seconds (a number or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


class Api:
    """The Messaging API at ``base`` (https, verified; plain http only to this computer)."""

    def __init__(self, base: str, token: str, timeout: float, clock: Callable[[], datetime]) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.clock = clock

    def push(self, to: str, texts: list[str], retry_key: str) -> Answer:
        body = {"to": to, "messages": [{"type": "text", "text": t} for t in texts]}
        return self.call("POST", PUSH, body, {"X-Line-Retry-Key": retry_key})

    def bot_info(self) -> Answer:
        return self.call("GET", "/v2/bot/info")

    def recipient(self, to: str) -> Answer:
        """Whether the bot can push to ``to``: a group's summary, a room's member count, a user's profile."""
        kind = {"C": "group/{}/summary", "R": "room/{}/members/count", "U": "profile/{}"}[to[0]]
        return self.call("GET", "/v2/bot/" + kind.format(quote(to)))

    def call(self, method: str, path: str, body: dict | None = None, headers: dict | None = None) -> Answer:
        parts = urlsplit(self.base)
        host = parts.hostname or ""
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(host, parts.port, timeout=self.timeout,
                                                     context=ssl.create_default_context())
        else:
            connection = http.client.HTTPConnection(host, parts.port, timeout=self.timeout)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8") if body is not None else None
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        try:
            connection.request(method, parts.path.rstrip("/") + path, body=data, headers=sent)
            response = connection.getresponse()
            raw = response.read(64 * 1024)
            status, retry_after = response.status, response.getheader("Retry-After")
        except (OSError, http.client.HTTPException) as exc:    # refused, timed out, TLS, a broken answer
            return Answer(0, f"{type(exc).__name__}: {str(exc)[:200]}")
        finally:
            connection.close()
        try:
            parsed = json.loads(raw.decode("utf-8")) if raw else {}
        except ValueError:
            parsed = {}
        parsed = parsed if isinstance(parsed, dict) else {}
        message = str(parsed.get("message") or "")[:300]
        return Answer(status, message, _retry_after(retry_after, self.clock()), parsed)


@dataclass
class Trouble:
    """A LINE answer told to a person: Thai, English, and the command that fixes it (if any)."""

    thai: str
    english: str
    fix: str = ""
    later: bool = True       # tried again after a pause; False: this push is refused for good


def explain(answer: Answer, to: str, api: str) -> Trouble:
    code, said = answer.status, answer.message
    if code == 401:
        return Trouble("LINE ไม่รับโทเค็นของบัญชีที่ใช้แจ้งเตือน (ผิด หมดอายุ หรือออกโทเค็นใหม่แทนแล้ว) "
                       "ให้ผู้ดูแลคัดลอกโทเค็นใหม่จากหน้าตั้งค่าสำหรับนักพัฒนาของบัญชี LINE ของหน่วยงาน "
                       "แล้วบันทึกด้วยคำสั่งนี้",
                       f"LINE refused the channel access token (401 {said}): issue a new one in the LINE Developers "
                       "Console (the channel's Messaging API tab) and save it", FIX_TOKEN)
    if code == 403:
        return Trouble("บัญชี LINE ของหน่วยงานไม่มีสิทธิ์ส่งข้อความแบบนี้ ให้ผู้ดูแลตรวจแพ็กเกจและสิทธิ์ของบัญชี",
                       f"LINE: not allowed (403 {said}); check the LINE Official Account's plan and permissions")
    if code == 429:
        return Trouble("LINE จำกัดจำนวนข้อความ (ส่งถี่เกินไป หรือใช้โควตาข้อความของเดือนนี้หมดแล้ว) "
                       "ข้อความที่ค้างจะส่งเมื่อ LINE รับอีกครั้ง",
                       f"LINE rate limit or monthly quota (429 {said}); what is owed goes when LINE takes it again")
    if code == 0:
        return Trouble("ติดต่อ LINE ไม่ได้ (อินเทอร์เน็ตขัดข้องหรือเครือข่ายปิดกั้น) ข้อความที่ค้างจะส่งเมื่อติดต่อได้",
                       f"cannot reach {api}: {said}")
    if code >= 500:
        return Trouble("ระบบของ LINE ขัดข้องชั่วคราว ข้อความที่ค้างจะส่งอีกครั้ง (ไม่ส่งซ้ำ)",
                       f"LINE is failing ({code} {said}); tried again under the same retry key")
    return Trouble("LINE ไม่รับข้อความถึงกลุ่มหรือผู้รับนี้ มักเป็นเพราะยังไม่ได้เชิญบัญชี LINE ของหน่วยงานเข้ากลุ่ม "
                   "หรือรหัสกลุ่มในการตั้งค่าไม่ถูกต้อง",
                   f"LINE refused the push to {to} ({code} {said}): is the bot in that group, is alerts.line.to right?",
                   later=False)


# ---------------------------------------------------------------------------- the channel

@dataclass
class Round:
    """One delivery round: texts sent, refused for good, still owed; why it stopped."""

    sent: int = 0
    refused: int = 0
    owed: int = 0
    stopped: str = ""


@dataclass
class LineStatus:
    """The channel as ``mailbot status`` and the console tell it."""

    recipients: int
    token: bool
    last_sent: datetime | None
    queued: int
    failed: int
    problem: dict | None           # the last failure not followed by a push accepted: at (datetime), thai,
    #                                english, fix (a command), status (LINE's answer, 0: none)
    paused_until: datetime | None
    refused: str = ""              # why LINE refused the latest text it refused for good (Thai)


def secret_store(cfg: Config) -> Store:
    """The credential store the office keeps its secrets in (``mail.credentials``)."""
    from .anchors import store

    return store(cfg)


class Channel:
    """Pushing what is owed to LINE for one office."""

    def __init__(self, cfg: Config, state: State, clock: Callable[[], datetime]) -> None:
        self.cfg = cfg
        self.state = state
        self.clock = clock

    @property
    def settings(self) -> LineConfig | None:
        return self.cfg.alerts.line

    def token(self) -> str | None:
        return secret_store(self.cfg).get(TOKEN)

    def deliver(self) -> Round:
        """Push what is owed, oldest first; never raises, never waits long (a round stops at the
        first sign that LINE is out of reach, or after a few seconds)."""
        try:
            return self._deliver()
        except Exception as exc:  # noqa: BLE001 - LINE never stops the work: the log has it
            log.warning("LINE delivery failed: %s: %s", type(exc).__name__, str(exc)[:200])
            return Round(stopped="error")

    def _deliver(self) -> Round:
        line = self.settings
        done = Round()
        if line is None:
            return done
        now = self.clock()
        pause = self.state.get(PAUSE)
        if not self.state.line_unkeyed() and not self.state.line_keyed():
            return done
        if pause and from_iso(pause) > now:
            done.stopped = "paused"
            done.owed = self.state.line_counts().get("queued", 0)
            return done
        try:
            token = self.token()
        except MailbotError as exc:             # the credential store cannot be read
            self._failed(now, 0, Trouble(exc.thai, exc.english), pause=True)
            done.stopped = "store"
            return done
        if not token:
            self._failed(now, 0, Trouble("ยังไม่ได้บันทึกโทเค็นของบัญชี LINE ที่ใช้แจ้งเตือน ข้อความรอส่งไว้",
                                         "no LINE channel access token in the credential store; texts wait",
                                         FIX_TOKEN), pause=False)
            done.stopped = "token"
            done.owed = self.state.line_counts().get("queued", 0)
            return done
        self._give_keys(line, now)
        api = Api(line.api, token, line.timeout_seconds, self.clock)
        started = time.monotonic()
        budget = max(10.0, 2 * line.timeout_seconds)
        batches: dict[str, list] = defaultdict(list)
        for row in self.state.line_keyed():
            batches[row["push_key"]].append(row)
        for key, rows in batches.items():
            if time.monotonic() - started > budget:
                done.stopped = "time"
                break
            to = rows[0]["recipient"]
            answer = api.push(to, [r["text"] for r in rows], key)
            faults.point("after_line_push")      # (the crash tests: pushed, LINE's answer not yet recorded)
            now = self.clock()
            if answer.accepted:
                with self.state.tx():
                    self.state.line_sent(key, iso(now))
                    self.state.put(FAILURES, None)
                    self.state.put(LAST_FAILURE, None)
                done.sent += len(rows)
                continue
            trouble = explain(answer, to, line.api)
            if not trouble.later:
                with self.state.tx():
                    self.state.line_refused(key, trouble.thai)
                self._failed(now, answer.status, trouble, pause=False)
                done.refused += len(rows)
                continue
            with self.state.tx():
                self.state.line_not_yet(key, trouble.thai)
            self._failed(now, answer.status, trouble, pause=True, retry_after=answer.retry_after)
            done.stopped = str(answer.status)
            break
        done.owed = self.state.line_counts().get("queued", 0)
        return done

    def _give_keys(self, line: LineConfig, now: datetime) -> None:
        """Owed texts without a push are given one (committed before any request): up to five texts
        for the same group a push, no more pushes than ``max_per_hour`` allows."""
        with self.state.tx():
            waiting = {r["push_key"] for r in self.state.line_keyed()}
            room = line.max_per_hour - self.state.line_pushes_since(iso(now - timedelta(hours=1))) - len(waiting)
            by_recipient: dict[str, list] = defaultdict(list)
            for row in self.state.line_unkeyed():
                by_recipient[row["recipient"]].append(row)
            batches = [rows[i:i + PER_PUSH] for rows in by_recipient.values() for i in range(0, len(rows), PER_PUSH)]
            batches.sort(key=lambda b: b[0]["id"])
            for batch in batches[:max(0, room)]:
                self.state.line_give_key([r["id"] for r in batch], str(uuid.uuid4()))

    def _failed(self, now: datetime, status: int, trouble: Trouble, pause: bool,
                retry_after: float | None = None) -> None:
        """Logged (never the token) and kept for status and the console; with ``pause``, no push
        before LINE's Retry-After, else 1, 2, 4 ... 60 minutes after failures in a row."""
        log.warning("LINE: %s", trouble.english)
        with self.state.tx():
            failures = int(self.state.get(FAILURES) or 0) + (1 if pause else 0)
            until = None
            if pause:
                wait = retry_after if retry_after is not None else min(60 * 2 ** (failures - 1), 3600)
                until = now + timedelta(seconds=min(wait, 86400))
                self.state.put(PAUSE, iso(until))
                self.state.put(FAILURES, str(failures))
            self.state.put(LAST_FAILURE, json.dumps({
                "at": iso(now), "status": status, "thai": trouble.thai, "english": trouble.english,
                "fix": trouble.fix, "until": iso(until) if until else None}, ensure_ascii=False))

    def token_changed(self) -> None:
        """A new token: what waits goes at the next round, not after the pause a bad one earned."""
        with self.state.tx():
            self.state.put(PAUSE, None)
            self.state.put(FAILURES, None)
            self.state.put(LAST_FAILURE, None)

    def status(self) -> LineStatus | None:
        line = self.settings
        if line is None:
            return None
        try:
            has_token = bool(self.token())
        except MailbotError:
            has_token = False
        counts = self.state.line_counts()
        last = self.state.line_last_sent()
        problem = json.loads(self.state.get(LAST_FAILURE) or "null")
        if problem:
            problem["at"] = from_iso(problem["at"])
        pause = self.state.get(PAUSE)
        refused = self.state.line_last_refused()
        until = from_iso(pause) if pause else None
        return LineStatus(
            recipients=len(line.to), token=has_token, last_sent=from_iso(last) if last else None,
            queued=counts.get("queued", 0), failed=counts.get("failed", 0),
            problem=problem or None,
            paused_until=until if until is not None and until > self.clock() else None,
            refused=refused["last_error"] if refused is not None else "")


# ---------------------------------------------------------------------------- mailbot check, secret set

def _api(cfg: Config, token: str, clock: Callable[[], datetime] | None) -> tuple[Api, str]:
    line = cfg.alerts.line
    base = line.api if line is not None else DEFAULT_API
    timeout = line.timeout_seconds if line is not None else 5.0
    return Api(base, token, timeout, clock or (lambda: datetime.now(timezone.utc))), base


def _named(answer: Answer) -> str:
    body = answer.body or {}
    return f"บัญชี LINE / LINE account: {body.get('displayName') or ''} {body.get('basicId') or ''}".rstrip()


def _account(api: Api, base: str) -> str:
    """The bot's own profile (GET /v2/bot/info): its name; a MailbotError in plain Thai if not."""
    answer = api.bot_info()
    if answer.status != 200:
        trouble = explain(answer, "", base)
        raise MailbotError(trouble.thai, trouble.english, f"สั่ง / run: {trouble.fix}" if trouble.fix else "")
    return _named(answer)


def try_token(cfg: Config, token: str, clock: Callable[[], datetime] | None = None) -> str:
    """A new token before it is kept: refused (MailbotError) only when LINE refuses it (401, 403);
    when LINE cannot be asked now, it is kept and the answer says so."""
    api, base = _api(cfg, token, clock)
    answer = api.bot_info()
    if answer.status in (401, 403):        # a setting to fix, as a wrong password is (exit 2)
        trouble = explain(answer, "", base)
        raise ConfigError(trouble.thai, trouble.english)
    if answer.status != 200:
        trouble = explain(answer, "", base)
        return f"ยังตรวจกับ LINE ไม่ได้: {trouble.thai} / not checked with LINE yet: {trouble.english}"
    return _named(answer)


def check(cfg: Config, token: str | None = None, clock: Callable[[], datetime] | None = None) -> str:
    """``mailbot check``: the token tried with harmless calls (the bot's own profile, then each
    recipient: that the bot is in the group, or the user its friend); a MailbotError in plain Thai
    when something is wrong. Nothing is sent."""
    line = cfg.alerts.line
    if token is None:
        token = secret_store(cfg).get(TOKEN)
    if not token:
        raise MailbotError("ยังไม่ได้บันทึกโทเค็นของบัญชี LINE ที่ใช้แจ้งเตือน",
                           "no LINE channel access token in the credential store",
                           f"สั่ง / run: {FIX_TOKEN}")
    api, base = _api(cfg, token, clock)
    text = _account(api, base)
    if line is None:
        return text
    missing = []
    for to in line.to:
        found = api.recipient(to)
        if found.status == 200:
            what = (found.body or {}).get("groupName") or (found.body or {}).get("displayName") or ""
            text += f"\n  ✓ {to[:1]}…{to[-6:]} {what}".rstrip()
        elif found.status in (0, 401, 403, 429) or found.status >= 500:
            trouble = explain(found, to, base)
            raise MailbotError(trouble.thai, trouble.english)
        else:
            missing.append(to)
    if missing:
        raise MailbotError(
            "บัญชี LINE ของหน่วยงานส่งข้อความถึงกลุ่มหรือผู้รับนี้ไม่ได้: " + ", ".join(missing)
            + " ให้เชิญบัญชีเข้ากลุ่ม (หรือให้ผู้รับเพิ่มบัญชีเป็นเพื่อน) แล้วตรวจรหัสในการตั้งค่า",
            "the bot cannot push to " + ", ".join(missing) + ": invite it to the group (or have the user add it "
            "as a friend) and check alerts.line.to")
    return text
