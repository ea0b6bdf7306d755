"""Checks: ``mailbot check`` — every part of an office's setup tried in turn.

Owns: the list of checks and what each says when it fails (Thai, then English, then what to
do): the config file, the rules (and that they make sense for this agency: at least one
service, forwards only inside the agency's own domains), the reply templates, the OAuth2
sign-in (provider, flow, token expiry, granted scopes), a real IMAP and SMTP sign-in — or, with
``mailbox: graph``, the Graph token, the watched folder read through Graph, and sending (signed in
only: whether the app may send cannot be tried without sending) — and the signing certificate. Each check stands alone, so one broken part never
hides the others.
"""
from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from ..casework.replies import Templates
from ..config import Config, load_rules
from ..errors import ConnectionFailure, MailbotError
from ..mail.wire import REAL, Wire
from ..thai import thai_date, to_bangkok


@dataclass
class Check:
    label: str
    ok: bool
    detail: str = ""
    connection: bool = False     # a failure to reach a server (exit 3), not a setup mistake (exit 2)
    warning: str = ""


def run_checks(cfg: Config, now: datetime, wire: Wire = REAL) -> list[Check]:
    """Every check in turn; ``wire``: how the mail servers are reached (mail/wire.py)."""
    out: list[Check] = [Check("ไฟล์ตั้งค่า / config", True, str(cfg.source))]

    def step(label: str, fn: Callable[[], str | tuple[str, str]]) -> None:
        try:
            detail = fn()
        except ConnectionFailure as exc:
            out.append(Check(label, False, exc.plain(), connection=True))
        except MailbotError as exc:
            out.append(Check(label, False, exc.plain()))
        else:
            text, warning = detail if isinstance(detail, tuple) else (detail, "")
            out.append(Check(label, True, text, warning=warning))

    def rules() -> str:
        r = load_rules(cfg.rules_path)
        if not r.services:
            raise MailbotError(
                f"ไฟล์กฎไม่มีบริการเลย ทุกเรื่องจะรอเจ้าหน้าที่คัดแยก: {cfg.rules_path}",
                f"the rules file lists no services; every request would wait for an officer: {cfg.rules_path}",
                "เพิ่มบริการในส่วน services: (ดูตัวอย่างจาก mailbot init) / add services (see mailbot init's rules.yaml)")
        outside = []
        for i, s in enumerate(r.services, start=1):
            for entry in s.forward_to:
                _, address = email.utils.parseaddr(entry)
                if not address or address.rsplit("@", 1)[-1].lower() not in cfg.agency.own_domains:
                    outside.append(f"services ข้อที่ {i} ({s.code}): {entry}")
        if outside:
            raise MailbotError(
                "ส่งต่อเรื่องไปนอกหน่วยงานไม่ได้ (forward_to ต้องอยู่ในโดเมนของหน่วยงาน: "
                + ", ".join(cfg.agency.own_domains) + ")",
                "forward_to addresses must be inside the agency's own domains (agency.domains)",
                "\n".join(f"  - {o}" for o in outside))
        return f"บริการ {len(r.services)} รายการ หน่วยงานอื่น {len(r.referrals)} รายการ / " \
               f"{len(r.services)} services, {len(r.referrals)} referrals"

    def templates() -> str:
        n = Templates(cfg.templates_dir).check(cfg.agency, now)
        return f"{cfg.templates_dir} ({n} แม่แบบ / templates)"

    def imap() -> tuple[str, str]:
        from ..casework.trust import summarise_authserv_ids
        with wire.mailbox(cfg.imap) as mb:
            if mb.is_junk(cfg.imap.folder):
                raise MailbotError(
                    f"โฟลเดอร์ {cfg.imap.folder} เป็นโฟลเดอร์อีเมลขยะ (Junk) mailbot ไม่แตะต้องโฟลเดอร์นี้",
                    f"imap.folder {cfg.imap.folder} is the Junk folder; mailbot never touches it",
                    "ตั้ง imap.folder เป็น INBOX / set imap.folder to INBOX")
            mb.select()
            text = (f"{cfg.imap.host}: {len(mb.uids())} ข้อความในโฟลเดอร์ {cfg.imap.folder} / messages waiting"
                    f" ({mb.mechanism})")
            seen = summarise_authserv_ids(mb.recent_headers())
        configured = cfg.trust.authserv_ids
        if seen:
            text += ("\n  Authentication-Results บนอีเมลล่าสุดมาจาก / seen on recent mail: "
                     + ", ".join(f"{name} ({n})" for name, n in seen))
        warning = ""
        if not configured:
            where = (f"ตั้งเป็น {seen[0][0]} ซึ่งเป็นชื่อเซิร์ฟเวอร์ที่พบบนอีเมลล่าสุดข้างบน" if seen else
                     "ยังไม่พบผลการตรวจบนอีเมลในกล่อง ให้ถามผู้ดูแลระบบอีเมลว่าเซิร์ฟเวอร์รับอีเมลของหน่วยงานชื่ออะไร")
            warning = ("ยังไม่ได้ตั้งชื่อเซิร์ฟเวอร์รับอีเมลของหน่วยงาน: ผลการตรวจ SPF/DKIM/DMARC จะใช้ยืนยันตัวตนผู้ส่งไม่ได้ "
                       f"({where}) / trust.authserv_id is not set"
                       + (f"; likely: {seen[0][0]}" if seen else "; no Authentication-Results on recent mail"))
        return text, warning

    def smtp() -> str:
        with wire.smtp(cfg.smtp, cfg.agency.address) as s:
            s.connect()
            return f"{cfg.smtp.host}:{cfg.smtp.effective_port()} ({s.mechanism or 'no AUTH'})"

    def graph_sign_in() -> str:
        from ..mail.graph import GraphMailbox

        with wire.mailbox(cfg.imap) as mb:
            lines = mb.client.sign_in_lines() if isinstance(mb, GraphMailbox) else [mb.mechanism]
        return "\n  " + "\n  ".join(lines)

    def graph_mailbox() -> tuple[str, str]:
        text, warning = imap()
        first, newline, rest = text.partition("\n")
        first = first.replace(f"{cfg.imap.host}:", f"{cfg.graph_mailbox} (Microsoft Graph):", 1)
        return first.removesuffix(" (Microsoft Graph)") + newline + rest, warning

    def graph_send() -> tuple[str, str]:
        from ..mail.graph import GraphSender

        with wire.smtp(cfg.smtp, cfg.agency.address) as s:
            s.connect()
            note = s.client.send_note() if isinstance(s, GraphSender) else ""
        return (f"ลงชื่อเข้าใช้ได้ ส่งในนาม {cfg.graph_mailbox} / signed in, sending as {cfg.graph_mailbox} "
                f"({s.mechanism})", note)

    def oauth2() -> str:
        from ..mail.oauth import check_lines

        return "\n  " + "\n  ".join(check_lines(cfg))

    def certificate() -> tuple[str, str]:
        from ..documents.certs import read_pkcs12

        assert cfg.signing is not None
        _, info = read_pkcs12(cfg.resolve(cfg.signing.pkcs12), cfg.signing.key_password())
        left = info.days_left(now)
        if left < 0:
            raise MailbotError(f"ใบรับรองอิเล็กทรอนิกส์หมดอายุแล้วเมื่อ {thai_date(info.not_after)}",
                               f"the signing certificate expired: {info.subject}")
        text = f"{info.subject}; ใช้ได้ถึง {thai_date(info.not_after)} (อีก {left} วัน / {left} days left)"
        warning = ""
        if left <= 30:
            warning = f"ใบรับรองจะหมดอายุในอีก {left} วัน ต่ออายุโดยเร็ว / the certificate expires in {left} days: renew it"
        return text, warning

    def starter_values() -> tuple[str, str]:
        """Values from the starter files that would go out as they are: refused (the ที่ pattern
        placeholder) or named one by one."""
        from ..config import DISPATCH_PLACEHOLDER, is_placeholder_address
        from ..registers.numbering import numbering_year

        pattern = cfg.registers.dispatch_pattern
        found: list[str] = []
        if pattern.strip() == cfg.registers.receipt_pattern.strip():
            found.append(f"ที่ของหนังสือส่งมีรูปแบบเดียวกับเลขรับ ({pattern.format(seq=1, year=numbering_year(to_bangkok(now).date(), cfg.registers.year_reset))}) "
                         "ควรตั้งรหัสหนังสือของหน่วยงาน / registers.dispatch_pattern looks like a receipt number")
        if is_placeholder_address(cfg.agency.address):
            found.append(f"ที่อยู่อีเมลของหน่วยงานยังเป็นค่าตัวอย่าง: {cfg.agency.address} / agency.address is an example")
        try:
            services = load_rules(cfg.rules_path).services
        except MailbotError:
            services = []                               # said by the rules step
        for s in services:
            for entry in s.forward_to:
                if is_placeholder_address(email.utils.parseaddr(entry)[1]):
                    found.append(f"บริการ {s.code} ส่งต่อถึงที่อยู่ตัวอย่าง {entry} จะไม่ส่งจริง (ระงับไว้และแจ้งเตือน) "
                                 f"/ service {s.code} forwards to an example address: {entry}")
        days = sorted(cfg.schedule.holidays)
        today = to_bangkok(now).date()
        horizon = today + timedelta(days=300)
        if not days or days[-1] < horizon:
            last = thai_date(days[-1]) if days else "ไม่มี"
            found.append(f"รายการวันหยุดราชการมีถึง {last} เท่านั้น เพิ่มวันหยุดของปีถัดไปในรายการวันหยุด "
                         f"/ the holiday list (schedule.holidays) ends {days[-1].isoformat() if days else '(empty)'}")
        if pattern == DISPATCH_PLACEHOLDER or "(ตั้งรหัสหนังสือ)" in pattern:
            raise MailbotError(
                "ยังไม่ได้ตั้งรหัสหนังสือของหน่วยงาน (ที่ ของหนังสือส่ง) หนังสือแจ้งผลจะพิมพ์ข้อความตัวอย่างแทน",
                "the letter code (registers.dispatch_pattern) is still the starter's placeholder",
                'ตั้งในไฟล์ตั้งค่า เช่น dispatch_pattern: "มท 0808.2/{seq}" / set registers.dispatch_pattern, '
                'e.g. "มท 0808.2/{seq}"' + "".join(f"\n! {f}" for f in found))
        if not found:
            return "ไม่มีค่าตัวอย่างค้างอยู่ / no starter values left", ""
        return f"ค่าตัวอย่างที่ยังไม่ได้แก้ {len(found)} รายการ / {len(found)} starter value(s)", "\n  ! ".join(found)

    step("กฎการจัดประเภท / rules", rules)
    step("ค่าตัวอย่างจากไฟล์ตั้งต้น / starter values", starter_values)
    step("แม่แบบข้อความตอบกลับ / templates", templates)
    if cfg.mailbox == "graph":          # no IMAP, no SMTP: the token, the folder, and what sending allows
        step("ลงชื่อเข้าใช้ Microsoft Graph / Microsoft Graph sign-in", graph_sign_in)
        step("กล่องอีเมล Microsoft Graph / Microsoft Graph mailbox", graph_mailbox)
        step("ส่งอีเมลผ่าน Microsoft Graph / sending through Microsoft Graph", graph_send)
    else:
        if cfg.imap.auth == "oauth2" or cfg.smtp.auth == "oauth2":
            step("ลงชื่อเข้าใช้ OAuth2 / OAuth2 sign-in", oauth2)
        step("รับอีเมล / IMAP login", imap)
        step("ส่งอีเมล / SMTP login", smtp)
    if cfg.signing is not None:
        step("ใบรับรองอิเล็กทรอนิกส์ / signing certificate", certificate)
    if cfg.alerts.line is not None:       # the token tried and each group: harmless calls, nothing sent
        from .line import check as line_check

        step("แจ้งเตือนทาง LINE / LINE alerts", lambda: line_check(cfg))
    return out


def exit_code(checks: list[Check]) -> int:
    failed = [c for c in checks if not c.ok]
    if not failed:
        return 0
    return 3 if all(c.connection for c in failed) else 2
