"""Mail providers: what an officer picks in the setup's mailbox step, and the settings each
one needs filled in (hosts, ports, security, how it signs in).

Owns: the table of providers (data, defined once) and turning a provider plus the officer's
few answers into the ``imap``/``smtp`` (or ``graph``) settings. Pure.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Provider:
    key: str
    label: str                  # Thai first, as the page shows it
    imap: tuple[str, int, str] | None    # host, port, security; None: the officer types them
    smtp: tuple[str, int, str] | None
    note: str                   # what the officer needs to know, in Thai
    app_password: bool = False  # an app password, not the account's own (Gmail with 2-step)
    oauth: bool = False         # signs in with OAuth2 only (Exchange Online refuses passwords)


PROVIDERS: tuple[Provider, ...] = (
    Provider("microsoft", "workD / Microsoft 365 (อีเมลหน่วยงานรัฐบนระบบของไมโครซอฟท์)",
             ("outlook.office365.com", 993, "ssl"), ("smtp.office365.com", 587, "starttls"),
             "Microsoft 365 ไม่รับรหัสผ่านสำหรับ IMAP: ลงชื่อเข้าใช้แบบ OAuth2 ด้วยแอปที่ผู้ดูแลระบบของหน่วยงานลงทะเบียนไว้ "
             "ขอรหัสผู้เช่า (tenant) และรหัสแอป (client ID) จากผู้ดูแล แล้วเลือกวิธีลงชื่อเข้าใช้ด้านล่าง",
             oauth=True),
    Provider("graph", "Microsoft 365 ที่ปิด IMAP และ SMTP (ใช้ Microsoft Graph)", None, None,
             "ผู้ดูแลระบบลงทะเบียนแอปที่มีสิทธิ์ Mail.ReadWrite และ Mail.Send แบบ Application และจำกัดให้เข้าได้เฉพาะกล่อง saraban@ "
             "แล้วส่งรหัสผู้เช่า รหัสแอป และรหัสลับของแอปให้เจ้าหน้าที่", oauth=True),
    Provider("google", "Google Workspace (อีเมลหน่วยงานบน Google)",
             ("imap.gmail.com", 993, "ssl"), ("smtp.gmail.com", 465, "ssl"),
             "ใช้รหัสผ่านสำหรับแอป (App Password) ของบัญชี saraban@ หรือให้ผู้ดูแลตั้งบัญชีบริการ (OAuth2)",
             app_password=True),
    Provider("gmail", "Gmail (บัญชี @gmail.com)",
             ("imap.gmail.com", 993, "ssl"), ("smtp.gmail.com", 465, "ssl"),
             "เปิดการยืนยันตัวตนแบบสองขั้นตอนของบัญชี แล้วสร้างรหัสผ่านสำหรับแอป (App Password) 16 ตัว มาใส่ที่นี่",
             app_password=True),
    Provider("other", "เซิร์ฟเวอร์อื่น (ผู้ให้บริการอีเมลของหน่วยงาน)", None, None,
             "ขอชื่อเซิร์ฟเวอร์และพอร์ตของ IMAP และ SMTP จากผู้ดูแลระบบอีเมล"),
)
BY_KEY = {p.key: p for p in PROVIDERS}
SECURITY = ("ssl", "starttls", "none")


def guess(host: str) -> str:
    """The provider a configured IMAP host belongs to ("other" when unknown)."""
    for p in PROVIDERS:
        if p.imap and p.imap[0] == host.strip().lower():
            return "google" if p.key == "gmail" else p.key
    return "other"


def server_settings(provider: str, address: str, *, imap: tuple[str, int, str] | None = None,
                    smtp: tuple[str, int, str] | None = None) -> dict[str, dict[str, object]]:
    """The imap and smtp sections for ``provider``: its known hosts, or the ones given (other),
    signed in as ``address`` with the password in the credential store."""
    p = BY_KEY[provider]
    i = p.imap or imap
    s = p.smtp or smtp
    if i is None or s is None:
        raise ValueError("this provider needs the servers typed in")
    out: dict[str, dict[str, object]] = {}
    for name, (host, port, security) in (("imap", i), ("smtp", s)):
        out[name] = {"host": host, "port": int(port), "security": security, "username": address,
                     "password_store": True}
    return out
