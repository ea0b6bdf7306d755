"""``mailbot demo``: one full cycle on embedded loopback servers, no set-up needed.

Owns: the sample citizen mail (Thai, in the encodings real clients send), a temporary
workspace made from the starter files, and the printed summary an officer reads.
"""
from __future__ import annotations

import base64
import email
import quopri
import tempfile
from datetime import date, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import yaml

from .app import Office
from .config import load_config, yaml_load
from .documents.certs import DEMO_LABEL
from .intake.cycle import CycleReport
from .mail.servers import HOST, ImapServer, SmtpServer
from .present import print_report
from .starter import init
from .thai import to_bangkok

AGENCY = "saraban@example.go.th"
def _b64word(text: str, charset: str, codec: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(codec)).decode()}?="


def _qword(data: bytes, charset: str) -> str:
    """An RFC 2047 Q encoded-word, as older mail clients write them."""
    chars = "".join("_" if b == 32 else chr(b) if 48 <= b < 123 and chr(b).isalnum() else f"={b:02X}" for b in data)
    return f"=?{charset}?Q?{chars}?="


def _simple(sender: str, subject: str, body: str, when: datetime, **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = f"เทศบาลตำบลบ้านตัวอย่าง <{AGENCY}>"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = headers.pop("message_id", None) or make_msgid(domain="mail.example.com")
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg


def sample_messages(now: datetime | None = None) -> list[bytes]:
    """About eight realistic messages for a sub-district office's saraban@ mailbox."""
    now = now or datetime.now(timezone.utc)
    t = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    out: list[bytes] = []

    # 1. Thai Outlook: windows-874 subject and body, quoted-printable (Python alone garbles it)
    body = ("เรียน นายกเทศมนตรี\r\n\r\nข้าพเจ้าขออนุญาตก่อสร้างอาคารพักอาศัย 2 ชั้น "
            "ที่บ้านเลขที่ 12 หมู่ 3 ตำบลบ้านตัวอย่าง\r\nจึงเรียนมาเพื่อโปรดพิจารณา\r\n\r\nนายสมชาย ใจดี\r\n")
    out.append((
        "From: =?windows-874?B?" + base64.b64encode("สมชาย ใจดี".encode("cp874")).decode() + "?= <somchai.j@hotmail.example>\r\n"
        f"To: {AGENCY}\r\n"
        f"Subject: {_b64word('ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12', 'windows-874', 'cp874')}\r\n"
        f"Date: {format_datetime(t(90))}\r\n"
        "Message-ID: <000001da1234$abcd$ef000000@hotmail.example>\r\n"
        "MIME-Version: 1.0\r\nX-Mailer: Microsoft Outlook 16.0\r\nThread-Index: AdoSNKvN7wAAAAAA\r\n"
        "Content-Type: text/plain; charset=\"windows-874\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    ).encode("ascii") + quopri.encodestring(body.encode("cp874")))

    # 2. land and building tax, UTF-8, with a PDF and a photo attached (RFC 2231 Thai file name)
    msg = _simple("มาลี ศรีสุข <malee.s@gmail.example>", "สอบถามภาษีที่ดินและสิ่งปลูกสร้าง ปี 2569",
                  "เรียน เจ้าหน้าที่\n\nขอสอบถามยอดภาษีที่ดินและสิ่งปลูกสร้าง แปลงโฉนดเลขที่ ๔๕๖๗ "
                  "แนบสำเนาโฉนดและรูปถ่ายมาด้วยค่ะ\n\nมาลี", t(80))
    msg.add_attachment(b"%PDF-1.4\n% sample\n%%EOF\n", maintype="application", subtype="pdf",
                       filename="สำเนาโฉนด.pdf")
    msg.add_attachment(b"\xff\xd8\xff\xe0sample-jpeg", maintype="image", subtype="jpeg", filename="รูปที่ดิน.jpg")
    out.append(bytes(msg))

    # 3. wrong agency: ID card is the district registration office's work
    out.append(bytes(_simple("ประยุทธ์ มั่นคง <prayut.m@yahoo.example>", "ขอทำบัตรประชาชนใหม่ เนื่องจากบัตรหาย",
                             "บัตรประชาชนหาย ต้องการทำใหม่ ต้องใช้เอกสารอะไรบ้างครับ", t(70))))

    # 4. a complaint from an older client in TIS-620, quoted-printable
    text = "ร้องเรียน ไฟฟ้าสาธารณะดับ ซอย 5 หมู่ 2 มา 2 สัปดาห์แล้ว".encode("tis-620")
    out.append((
        "From: wichai@school.example\r\n"
        f"To: {AGENCY}\r\n"
        f"Subject: {_qword(text, 'TIS-620')}\r\n"
        f"Date: {format_datetime(t(60))}\r\nMessage-ID: <tis620.1@school.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=TIS-620\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode("ascii") + "ไฟทางดับทั้งซอย กลางคืนมืดมาก ขอให้ช่วยซ่อมด้วยครับ\r\n".encode("tis-620"))

    # 5. an out-of-office auto-reply: never answered
    out.append(bytes(_simple("Somsri K. <somsri.k@company.example>", "ตอบกลับอัตโนมัติ: ไม่อยู่ที่สำนักงาน",
                             "ขณะนี้ดิฉันไม่อยู่ที่สำนักงาน จะกลับวันที่ 1 ธันวาคม", t(50),
                             Auto_Submitted="auto-replied", X_Auto_Response_Suppress="All")))

    # 6. a bounce (delivery status notification)
    out.append((
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.go.th>\r\n"
        f"To: {AGENCY}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(t(40))}\r\nMessage-ID: <bounce.77@mx.example.go.th>\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n"
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.go.th\r\n\r\n"
        "Final-Recipient: rfc822; nobody@nowhere.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "--b1--\r\n"
    ).encode("ascii"))

    # 7. unclassified: nobody wrote a rule for it; registered for the officer
    out.append(bytes(_simple("นิดา ทองดี <nida.t@outlook.example>", "สอบถามการรับสมัครพนักงานจ้างทั่วไป",
                             "อยากทราบว่าเทศบาลเปิดรับสมัครพนักงานจ้างเมื่อไรคะ", t(30))))

    # 8. a follow-up: Somchai sends the missing drawing as a reply to his first email
    fu = _simple("สมชาย ใจดี <somchai.j@hotmail.example>", "RE: ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12",
                 "ส่งแบบแปลนเพิ่มเติมครับ\n\n> ข้าพเจ้าขออนุญาตก่อสร้างอาคารพักอาศัย", t(10),
                 In_Reply_To="<000001da1234$abcd$ef000000@hotmail.example>",
                 References="<000001da1234$abcd$ef000000@hotmail.example>")
    fu.add_attachment(b"%PDF-1.4\n% plan\n%%EOF\n", maintype="application", subtype="pdf", filename="แบบแปลน.pdf")
    out.append(bytes(fu))
    return out


def make_workspace(folder: Path, imap_port: int, smtp_port: int, password: str, signing: bool = False,
                   since: date | None = None) -> Path:
    """A workspace over the embedded servers; ``since`` is the day written as ``imap.since``
    (default today: the demo's mail arrives now)."""
    init(folder, today=since)
    path = folder / "mailbot.yaml"
    data = yaml_load(path.read_text(encoding="utf-8"))
    if signing:  # a clearly labelled throw-away certificate (ใบรับรองสำหรับทดลองเท่านั้น)
        from .documents.certs import make_demo_pki

        pki = make_demo_pki(folder / "certs", data["agency"]["name"])
        data["signing"] = {"pkcs12": "certs/agency-demo.p12", "password": pki.password,
                           "signer_name": "นายสมศักดิ์ ใจดี (ทดลอง)"}
        data["results"] = {"stable_seconds": 0}
        from .documents.letters import placeholder_emblem  # a plain stand-in: no emblem is bundled

        (folder / "emblem-placeholder.png").write_bytes(placeholder_emblem())
        data["letters"] = {
            "emblem": "emblem-placeholder.png", "signer_name": "นายสมศักดิ์ ใจดี (ทดลอง)",
            "signer_position": "นายกเทศมนตรีตำบลบ้านตัวอย่าง",
            "address": ["99 หมู่ 1 ตำบลบ้านตัวอย่าง", "อำเภอเมือง จังหวัดตัวอย่าง 10000"],
            "unit": "สำนักปลัดเทศบาล งานธุรการ", "phone": "0 2000 0000 ต่อ 101",
            "digits": "thai",       # Thai digits throughout the letter, as many agencies now prefer
        }
    # a letter code like an agency's own (the ที่ of its letters); a real office sets its own
    data.setdefault("registers", {})["dispatch_pattern"] = "ทดลอง 0000.1/{seq}"
    for key, port in (("imap", imap_port), ("smtp", smtp_port)):
        section = data[key]
        section.update(host=HOST, port=port, security="none", username=AGENCY, password=password)
        section.pop("password_env", None)
    data["agency"]["address"] = AGENCY
    path.write_text(
        "# mailbot demo workspace (embedded loopback servers) / พื้นที่ทดลองของ mailbot demo\n"
        + yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return path


def seed(port: int, user: str, password: str, messages: list[bytes], folder: str = "INBOX") -> None:
    """Deliver sample mail into the embedded server (through mailbot's own IMAP module)."""
    from .config import ImapConfig
    from .mail.mailbox import Mailbox

    with Mailbox(ImapConfig(host=HOST, port=port, security="none", username=user, password=password)) as mb:
        mb.ensure_folder(folder)
        for raw in messages:
            mb.append(folder, raw)


def run_demo(workdir: Path | None = None, out=print) -> CycleReport:
    password = "demo-password"
    keep = workdir is not None
    folder = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="mailbot-demo-"))
    with ImapServer(AGENCY, password) as imap, SmtpServer(AGENCY, password) as smtp:
        out(f"เริ่มเซิร์ฟเวอร์ทดลอง / embedded servers: IMAP {HOST}:{imap.port}, SMTP {HOST}:{smtp.port}")
        cfg_path = make_workspace(folder, imap.port, smtp.port, password, signing=True)
        seed(imap.port, AGENCY, password, sample_messages())
        seed(imap.port, AGENCY, password, [], folder="Sent")   # webmail shows a Sent folder
        out(f"พื้นที่ทดลอง / demo workspace: {folder}")
        out("ส่งอีเมลตัวอย่างเข้ากล่อง saraban@ แล้ว 8 ฉบับ / 8 sample emails delivered; running one cycle ...\n")
        cfg = load_config(cfg_path)
        with Office.open(cfg) as office:
            report = office.poll()
            print_report(report, out)
            out("\nอีเมลตอบกลับที่ส่งออก / replies sent:")
            for m in smtp.messages:
                reply = email.message_from_bytes(m.data, policy=policy.default)
                plain = reply.get_body(("plain",))
                body = plain.get_content().strip().splitlines() if plain is not None else []
                internal = m.rcpt_tos[0].endswith("@example.go.th")
                out(f"  ถึง/to {m.rcpt_tos[0]}" + ("  (ส่งต่อภายในหน่วยงาน / internal forward)" if internal else ""))
                out(f"  เรื่อง/subject: {reply['subject']}")
                for line in [ln for ln in body if ln.strip()][:4]:
                    out(f"      {line}")
                out("")
            already = len(smtp.messages)
            out(f"ขั้นที่ 2: ออกหนังสือแจ้งผล ลงนามด้วยใบรับรองทดลอง ({DEMO_LABEL}) และส่งกลับ / "
                "step 2: a result letter, signed with the demo certificate, sent back:")
            land_tax = next(h.receipt for h in report.handled if h.receipt and "ภาษี" in h.subject)
            run = office.results(letter=(land_tax, "approved", "ชำระภาษีภายใน 30 วัน", "แปลงโฉนดเลขที่ 4567"))
            for m in smtp.messages[already:]:
                reply = email.message_from_bytes(m.data, policy=policy.default)
                files = [p.get_filename() or "" for p in reply.iter_attachments()]
                out(f"  ถึง/to {m.rcpt_tos[0]} · เรื่อง/subject: {reply['subject']} · แนบ/attached: {', '.join(files)}")
            for path in sorted((folder / "results" / "sent").glob("* (ลงนามแล้ว).pdf")):
                out(f"  หนังสือแจ้งผลที่ลงนามแล้ว / the signed letter: {path}")
            daily = office.daily_log(to_bangkok(office.clock()).date())
            licences = office.publish()
        out("")
        out("ผลลัพธ์ที่เจ้าหน้าที่เปิดดูได้ / what the officer opens:")
        for path in report.registers:
            out(f"  ทะเบียนรับ (Excel) / receive register: {path}")
        out(f"  ทะเบียนหนังสือส่ง / dispatch register: {cfg.registers_dir / ('ทะเบียนส่ง-' + report.registers[0].stem.split('-')[-1] + '.xlsx') if report.registers else '-'}")
        out(f"  บันทึกประจำวันสำหรับผู้บังคับบัญชา / supervisors' daily log: {daily}")
        for path in licences:
            if path.suffix == ".xlsx":
                out(f"  ทะเบียนใบอนุญาต (เผยแพร่) / public licence register: {path}")
        out(f"  ต้นฉบับอีเมลและฐานข้อมูล / raw archive and state: {cfg.data_dir}")
        out("")
        if keep:
            out(f"พื้นที่ทดลองเก็บไว้ที่ {folder} / the demo workspace is kept in {folder}")
        else:
            out(f"พื้นที่ทดลองอยู่ในโฟลเดอร์ชั่วคราว {folder} ถ้าต้องการเก็บไว้ที่อื่น สั่ง: mailbot demo --dir <โฟลเดอร์>\n"
                f"the demo workspace is a temporary folder ({folder}); to keep one elsewhere: mailbot demo --dir <folder>")
        out("")
        config = folder / "mailbot.yaml"
        url = f"http://127.0.0.1:{cfg.console.port}/"
        out("เปิดหน้าจอเจ้าหน้าที่ของพื้นที่ทดลองนี้ (ดูเรื่องที่รับ ทะเบียน และหนังสือแจ้งผล ในเว็บเบราว์เซอร์) สั่ง:\n"
            f"  mailbot --config \"{config}\" console\n"
            f"แล้วเปิด {url} / to open this workspace's officer console, run the command above "
            f"and open {url}")
    return report
