"""The small exception hierarchy: every error an officer may see, in Thai then English.

Owns: the message texts of failures that stop a command. Each carries ``thai`` and
``english`` so the CLI prints both, never a traceback (unless ``--debug``).
"""
from __future__ import annotations


class MailbotError(Exception):
    """Base: a failure with a plain-language explanation in Thai and English."""

    exit_code = 1

    def __init__(self, thai: str, english: str, detail: str = "") -> None:
        super().__init__(english)
        self.thai = thai
        self.english = english
        self.detail = detail

    def plain(self) -> str:
        lines = [self.thai, self.english]
        if self.detail:
            lines.append(self.detail)
        return "\n".join(lines)


class ConfigError(MailbotError):
    """mailbot.yaml is missing, unreadable or invalid."""

    exit_code = 2


class RulesError(MailbotError):
    """rules.yaml is missing, unreadable or invalid."""

    exit_code = 2


class TemplateError(MailbotError):
    """A reply template is missing or does not render."""

    exit_code = 2


class ConnectionFailure(MailbotError):
    """The mail server could not be reached or refused the login. ``reason``: what kind of
    failure it was, when the place that raised it knows (``connection_reason`` for a socket's,
    "login" for a refused sign-in, "no_auth" for an SMTP server offering none); ``said``: the
    server's own words (its reply to the sign-in), for telling one refusal from another."""

    exit_code = 3

    def __init__(self, thai: str, english: str, detail: str = "", *, reason: str = "", said: str = "") -> None:
        super().__init__(thai, english, detail)
        self.reason = reason
        self.said = said


def connection_reason(exc: BaseException) -> str:
    """What kind of failure a socket or TLS error is: unknown_host, port_closed, port_blocked
    (nothing answers: a firewall drops it), certificate, tls, or other."""
    import socket
    import ssl

    for e in _chain(exc):
        if isinstance(e, socket.gaierror):
            return "unknown_host"
        if isinstance(e, ssl.SSLCertVerificationError):
            return "certificate"
        if isinstance(e, ConnectionRefusedError):
            return "port_closed"
        if isinstance(e, (socket.timeout, TimeoutError)):
            return "port_blocked"
        if isinstance(e, ssl.SSLError):
            return "tls"
        text = str(e).lower()
        if "certificate verify failed" in text:
            return "certificate"
        if "connection refused" in text:
            return "port_closed"
        if "timed out" in text or "timeout" in text:
            return "port_blocked"
    return "other"


def _chain(exc: BaseException):
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]


class AlreadyRunning(MailbotError):
    """Another mailbot is working on the same data folder."""

    exit_code = 4


class EnvironmentFailure(MailbotError):
    """The computer, not the mail: disk full, no permission, database locked or damaged.
    Never counted against a message; the cycle stops cleanly and the next one resumes."""

    exit_code = 5


def _disk_full(where) -> bool:
    import shutil

    try:
        return where is not None and shutil.disk_usage(where).free < 2 * 1024 * 1024
    except OSError:
        return False


def _database_error(exc: BaseException) -> bool:
    """A database driver's error (DB-API 2.0: every driver's errors derive from one named
    DatabaseError, sqlite3's and psycopg's alike); read by name, so only store/ imports a driver."""
    return any(cls.__name__ == "DatabaseError" for cls in type(exc).__mro__)


def explain_environment(exc: BaseException, where=None) -> EnvironmentFailure | None:
    """A plain message for a failure of the machine (naming the path), or None if it is not one.
    ``where``: the data folder, to tell a full disk from a damaged database (SQLite reports
    both as an I/O error)."""
    import errno

    if isinstance(exc, EnvironmentFailure):
        return exc
    if _database_error(exc):
        text = str(exc).lower()
        if "locked" in text or "busy" in text or "lock timeout" in text:
            return EnvironmentFailure(
                "ฐานข้อมูลถูกโปรแกรมอื่นล็อกไว้ (เช่น เปิดค้างในโปรแกรมอื่นหรือสำรองข้อมูลอยู่) จะลองใหม่รอบถัดไป",
                f"the state database is locked by another program ({exc}); retried next cycle")
        if "full" in text or ("disk i/o" in text and _disk_full(where)):
            return EnvironmentFailure(f"ดิสก์เต็ม บันทึกฐานข้อมูลไม่ได้: {where or 'โฟลเดอร์ data'} "
                                      "ลบไฟล์ที่ไม่ใช้หรือย้ายข้อมูล แล้วระบบจะทำต่อเอง ไม่มีอีเมลสูญหาย",
                                      f"disk full: the state database in {where or 'the data folder'} cannot be "
                                      f"written ({exc}); free some space and mailbot resumes")
        if "disk i/o" in text:
            return EnvironmentFailure(
                "อ่านหรือเขียนฐานข้อมูลไม่ได้ (disk I/O error) อาจเป็นชั่วคราว เช่น โปรแกรมป้องกันไวรัสหรือไดรฟ์เครือข่าย "
                "จะลองใหม่รอบถัดไป ถ้าเกิดซ้ำทุกรอบ ให้ตรวจดิสก์ หรือกู้คืนด้วย mailbot restore --from <โฟลเดอร์สำรอง>",
                f"the state database could not be read or written ({exc}); retried next cycle. If it happens "
                "every cycle, check the disk or restore with: mailbot restore --from <backup folder>")
        if "malformed" in text or "not a database" in text or "corrupt" in text:
            return EnvironmentFailure(
                "ฐานข้อมูลของ mailbot เสียหาย ให้กู้คืนจากข้อมูลสำรองด้วยคำสั่ง mailbot restore --from <โฟลเดอร์สำรอง>",
                f"mailbot's state database is damaged ({exc}); restore it with: mailbot restore --from <backup folder>")
        if "readonly" in text or "read-only" in text:
            return EnvironmentFailure("เขียนฐานข้อมูลไม่ได้ (โฟลเดอร์หรือไฟล์เป็นแบบอ่านอย่างเดียว) ตรวจสิทธิ์ของโฟลเดอร์ data",
                                      f"the state database is read-only ({exc}); check the data folder's permissions")
        return None
    if isinstance(exc, OSError):
        where = exc.filename or ""
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
            return EnvironmentFailure(f"ดิสก์เต็ม เขียนไฟล์ไม่ได้: {where} ลบไฟล์ที่ไม่ใช้แล้วระบบจะทำต่อเอง ไม่มีอีเมลสูญหาย",
                                      f"disk full at {where}; free some space and mailbot resumes, nothing is lost")
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return EnvironmentFailure(f"ไม่มีสิทธิ์เขียนไฟล์: {where} ตรวจสิทธิ์ของโฟลเดอร์ ไม่มีอีเมลสูญหาย",
                                      f"permission denied writing {where}; check the folder's permissions; nothing is lost")
    return None
