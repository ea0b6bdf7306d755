"""Trying the mailbox for real: the setup's "test the connection" step.

Owns: signing in to IMAP (and opening the watched folder) and to SMTP through the same sessions
the service uses (``mail/wire``), and saying what a failure means in plain Thai with what to do
about it. The explanations are one table (``KINDS``); which one applies is read from the
failure the session raised (its ``reason`` and the server's own words), never guessed from a
traceback. Nothing is sent.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config import Config
from ..errors import ConfigError, ConnectionFailure, MailbotError
from ..mail.wire import REAL, Wire

# kind -> (what it means, what to do), Thai; English below for the log and the README
KINDS: dict[str, tuple[str, str, str]] = {
    "wrong_password": (
        "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง",
        "ตรวจรหัสผ่านของกล่อง saraban@ แล้วใส่ใหม่ในขั้น \"กล่องอีเมล\" ถ้าใช้ Gmail หรือ Google Workspace ต้องใช้รหัสผ่านสำหรับแอป (App Password)",
        "wrong user name or password"),
    "app_password": (
        "ผู้ให้บริการอีเมลต้องการรหัสผ่านสำหรับแอป (App Password) ไม่ใช่รหัสผ่านที่ใช้เข้าเว็บเมล",
        "เปิดการยืนยันตัวตนแบบสองขั้นตอนของบัญชี สร้างรหัสผ่านสำหรับแอป 16 ตัว แล้วใส่แทนรหัสผ่านเดิม",
        "an app password is required"),
    "basic_auth_refused": (
        "ระบบอีเมลของหน่วยงาน (Microsoft 365) ไม่รับการเข้าสู่ระบบด้วยรหัสผ่าน",
        "เลือก \"workD / Microsoft 365\" ในขั้นกล่องอีเมล แล้วลงชื่อเข้าใช้แบบ OAuth2 หรือให้ผู้ดูแลระบบเปิด SMTP AUTH ให้กล่องนี้",
        "the tenant refuses basic (password) sign-in"),
    "imap_disabled": (
        "กล่องอีเมลนี้ปิดการรับอีเมลผ่าน IMAP ไว้",
        "ให้ผู้ดูแลระบบอีเมลเปิด IMAP ให้กล่อง saraban@ (Gmail: การตั้งค่า > การส่งต่อและ POP/IMAP > เปิดใช้ IMAP)",
        "IMAP is switched off for this mailbox"),
    "certificate": (
        "ใบรับรองความปลอดภัย (certificate) ของเซิร์ฟเวอร์ไม่ถูกต้องหรือเครื่องนี้ไม่เชื่อถือ จึงไม่ส่งรหัสผ่านไป",
        "ตรวจว่าชื่อเซิร์ฟเวอร์สะกดตรงกับที่ผู้ให้บริการบอก ถ้าถูกแล้วให้ผู้ดูแลระบบอีเมลตรวจใบรับรองของเซิร์ฟเวอร์",
        "the server's certificate is not valid or not trusted"),
    "tls": (
        "ตั้งการเข้ารหัสไม่ตรงกับเซิร์ฟเวอร์ (SSL/TLS หรือ STARTTLS)",
        "ลองเปลี่ยนการเข้ารหัส: พอร์ต 993 และ 465 ใช้ SSL/TLS พอร์ต 143 และ 587 ใช้ STARTTLS",
        "the TLS setting does not match the server"),
    "port_closed": (
        "เซิร์ฟเวอร์ปฏิเสธการเชื่อมต่อที่พอร์ตนี้ (ไม่มีบริการที่พอร์ตนี้)",
        "ตรวจชื่อเซิร์ฟเวอร์และหมายเลขพอร์ตกับผู้ให้บริการอีเมล (IMAP มักเป็น 993 ส่วน SMTP มักเป็น 465 หรือ 587)",
        "connection refused: nothing listens on this port"),
    "port_blocked": (
        "ติดต่อเซิร์ฟเวอร์ไม่ได้ภายในเวลาที่กำหนด อาจมีไฟร์วอลล์ของหน่วยงานหรือผู้ให้บริการอินเทอร์เน็ตปิดพอร์ตนี้",
        "ลองเปิดเว็บเมลจากเครื่องนี้ ถ้าเปิดได้ให้ผู้ดูแลเครือข่ายเปิดพอร์ตนี้ขาออก",
        "no answer: a firewall may block the port"),
    "unknown_host": (
        "ไม่พบเซิร์ฟเวอร์ชื่อนี้",
        "ตรวจการสะกดชื่อเซิร์ฟเวอร์ และตรวจว่าเครื่องนี้ต่ออินเทอร์เน็ตอยู่",
        "the server's name was not found"),
    "auth_not_offered": (
        "เซิร์ฟเวอร์ส่งอีเมลไม่เปิดให้เข้าสู่ระบบ mailbot จึงไม่ส่งอีเมลผ่านเซิร์ฟเวอร์นี้ (เสี่ยงถูกปลอมเป็นผู้ส่ง)",
        "ตรวจพอร์ตและการเข้ารหัส (ลองพอร์ต 587 กับ STARTTLS) หรือถามผู้ดูแลระบบอีเมล",
        "the SMTP server offers no sign-in"),
    "folder_missing": (
        "ไม่พบโฟลเดอร์ที่ตั้งให้เฝ้าดูในกล่องอีเมล",
        "ใช้โฟลเดอร์ INBOX (กล่องจดหมายเข้า)",
        "the watched folder does not exist"),
    "no_password": (
        "ยังไม่ได้ใส่รหัสผ่านหรือยังไม่ได้ลงชื่อเข้าใช้",
        "กลับไปขั้น \"กล่องอีเมล\" แล้วใส่รหัสผ่าน",
        "no password yet"),
    "signed_out": (
        "ระบบอีเมลไม่ยอมรับการลงชื่อเข้าใช้แบบ OAuth2",
        "ลงชื่อเข้าใช้ใหม่ หรือให้ผู้ดูแลตรวจสิทธิ์ของแอป (ดู \"สิ่งที่ผู้ดูแลระบบอีเมลต้องตั้ง\")",
        "the OAuth2 sign-in was refused"),
    "other": (
        "เชื่อมต่อไม่สำเร็จ",
        "ตรวจการตั้งค่ากล่องอีเมลอีกครั้ง ถ้ายังไม่ได้ให้ส่งรายละเอียดด้านล่างให้ผู้ดูแลระบบอีเมล",
        "the connection failed"),
}
LABELS = {"imap": "รับอีเมล (IMAP)", "smtp": "ส่งอีเมล (SMTP)"}
MICROSOFT_HOSTS = ("office365.com", "outlook.com", "office.com")


@dataclass
class Finding:
    server: str          # imap | smtp
    ok: bool
    kind: str = ""       # a key of KINDS when not ok
    said: str = ""       # the technical detail (English; the server's words)

    @property
    def label(self) -> str:
        return LABELS[self.server]

    @property
    def thai(self) -> str:
        return KINDS[self.kind][0] if self.kind else ""

    @property
    def todo(self) -> str:
        return KINDS[self.kind][1] if self.kind else ""

    @property
    def english(self) -> str:
        return KINDS[self.kind][2] if self.kind else "ok"


def kind_of(exc: MailbotError, server: str, host: str) -> str:
    """Which explanation a failure gets, from what the session said about it."""
    if not isinstance(exc, ConnectionFailure):
        return "no_password" if isinstance(exc, ConfigError) else "other"
    reason, said = getattr(exc, "reason", ""), getattr(exc, "said", "").lower()
    if exc.__class__.__name__ == "OAuthError":
        return "signed_out"
    if reason == "login":
        if "application-specific password" in said or "5.7.9" in said:
            return "app_password"
        if "basic authentication is disabled" in said or "5.7.139" in said or "smtpclientauthentication" in said:
            return "basic_auth_refused"
        if "not enabled for imap" in said or "not connected" in said:
            return "imap_disabled"
        if server == "imap" and host.lower().endswith(MICROSOFT_HOSTS):
            return "basic_auth_refused"      # Exchange Online answers every password login so
        return "wrong_password"
    if reason == "no_auth":
        return "auth_not_offered"
    if reason in KINDS:
        return reason
    if "not found in the mailbox" in exc.english:
        return "folder_missing"
    return "other"


def probe(cfg: Config, wire: Wire = REAL) -> list[Finding]:
    """IMAP (sign in, open the watched folder) and SMTP (connect, sign in), each for real."""
    out: list[Finding] = []
    try:
        with wire.mailbox(cfg.imap) as mb:
            mb.select()
        out.append(Finding("imap", True))
    except MailbotError as exc:
        out.append(Finding("imap", False, kind_of(exc, "imap", cfg.imap.host), f"{exc.english} {getattr(exc, 'said', '')}".strip()))
    try:
        with wire.smtp(cfg.smtp, cfg.agency.address) as s:
            s.connect()
        out.append(Finding("smtp", True))
    except MailbotError as exc:
        out.append(Finding("smtp", False, kind_of(exc, "smtp", cfg.smtp.host), f"{exc.english} {getattr(exc, 'said', '')}".strip()))
    return out
