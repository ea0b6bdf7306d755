"""The ``mailbot`` command: verbs only — parse arguments, call one function, print, exit.

Every failure an officer can cause or meet (bad config, bad rules, server down, wrong
password) is printed in plain Thai with English below, never as a traceback (unless
``--debug``).
"""
from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
from pathlib import Path

from .errors import AlreadyRunning, MailbotError

log = logging.getLogger("mailbot")

EXIT_SMTP_TROUBLE = 3


def _utf8_console() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(encoding="utf-8", errors="replace")  # type: ignore[union-attr]
        except (AttributeError, ValueError):
            pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mailbot",
        description="ผู้ช่วยงานสารบรรณสำหรับกล่องอีเมลกลาง (saraban@) / "
                    "front office for an agency's central mailbox",
    )
    p.add_argument("--config", type=Path, default=None,
                   help="ไฟล์ตั้งค่า / config file (default ./mailbot.yaml or $MAILBOT_CONFIG)")
    p.add_argument("--debug", action="store_true", help="แสดงรายละเอียดสำหรับผู้พัฒนา / show details and tracebacks")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    s = sub.add_parser("init", help="สร้างไฟล์ตั้งต้น / write starter mailbot.yaml, rules.yaml, templates/")
    s.add_argument("dir", nargs="?", type=Path, default=Path("."))
    sub.add_parser("check", help="ตรวจการตั้งค่าและทดลองเข้าสู่ระบบ / validate settings and log in to IMAP and SMTP")
    sub.add_parser("poll", help="ทำงานหนึ่งรอบแล้วจบ / run one cycle and exit")
    s = sub.add_parser("run", help="ทำงานต่อเนื่องทุก N นาที / keep polling every N minutes")
    s.add_argument("--every", type=int, default=None, metavar="MINUTES")
    s = sub.add_parser("rules", help="ทดลองกฎการจัดประเภท / try the classification rules")
    rs = s.add_subparsers(dest="rules_verb", required=True, metavar="test")
    t = rs.add_parser("test", help='mailbot rules test "หัวเรื่อง"')
    t.add_argument("subject")
    t.add_argument("--rules", type=Path, default=None, help="rules.yaml to use (default: from the config)")
    s = sub.add_parser("case", help="ดู/แก้สถานะเรื่อง โดยไม่ต้องแก้ Excel / show, list or update cases")
    cs = s.add_subparsers(dest="case_verb", required=True, metavar="show|list|set")
    c = cs.add_parser("show", help="mailbot case show 15/2569")
    c.add_argument("receipt")
    c = cs.add_parser("list", help="mailbot case list [--status awaiting_documents]")
    c.add_argument("--status", default=None)
    c = cs.add_parser("set", help='mailbot case set 15/2569 --status in_progress [--note "..."]')
    c.add_argument("receipt")
    c.add_argument("--status", required=True)
    c.add_argument("--note", default="")
    c.add_argument("--by", default=None, help="ชื่อเจ้าหน้าที่ / officer name (default: the logged-in user)")
    s = sub.add_parser("results", help="ลงนามและส่งผลการพิจารณาจาก results/outbox / sign and send result PDFs")
    rs2 = s.add_subparsers(dest="results_verb", required=False, metavar="letter")
    c = rs2.add_parser("letter", help="mailbot results letter 15/2569 --outcome approved|rejected|incomplete")
    c.add_argument("receipt")
    c.add_argument("--outcome", required=True, choices=["approved", "rejected", "incomplete"])
    c.add_argument("--note", default="")
    c.add_argument("--location", default="", help="สถานที่ (สำหรับทะเบียนใบอนุญาต) / location, for the licence register")
    sub.add_parser("status", help="สถานะการทำงาน / last poll, next runs, queues, backup, certificate")
    s = sub.add_parser("report", help="บันทึกประจำวัน / daily supervisors' log")
    s.add_argument("--date", default=None, help="2569-11-27 or 2026-11-27 (default: today)")
    s.add_argument("--email", action="store_true", help="ส่งถึงผู้บังคับบัญชาด้วย / also email it to supervisors")
    sub.add_parser("backup", help="สำรองข้อมูลไปยัง backup.dir / back up to backup.dir")
    s = sub.add_parser("restore", help="กู้คืนจากข้อมูลสำรอง / restore from a backup")
    s.add_argument("--from", dest="source", type=Path, required=True)
    s.add_argument("--force", action="store_true")
    sub.add_parser("publish", help="เผยแพร่ทะเบียนใบอนุญาต (xlsx, csv, CKAN) / write the public licence register")
    s = sub.add_parser("demo", help="ทดลองทั้งระบบกับเซิร์ฟเวอร์จำลอง / full cycle on embedded servers")
    s.add_argument("--dir", type=Path, default=None, help="workspace folder (default: a new temporary one)")
    return p


def main(argv: list[str] | None = None) -> int:
    _utf8_console()
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.debug:
        logging.getLogger("mailbot").setLevel(logging.ERROR)  # warnings reach the officer via reports
    try:
        return int(_dispatch(args) or 0)
    except MailbotError as exc:
        if args.debug:
            log.exception("failed")
        print(exc.plain(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\nหยุดทำงานแล้ว / stopped", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: no traceback for officers
        if args.debug:
            raise
        print(
            "เกิดข้อผิดพลาดที่ไม่คาดคิด ข้อมูลที่บันทึกแล้วไม่สูญหาย ลองใหม่อีกครั้ง หรือส่งผลของ --debug ให้ผู้ดูแล\n"
            f"Unexpected error ({type(exc).__name__}); saved data is safe. Retry, or send the output of --debug to support.",
            file=sys.stderr,
        )
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    verb = args.verb
    if verb == "init":
        return cmd_init(args.dir)
    if verb == "demo":
        from .demo import run_demo

        run_demo(args.dir)
        return 0
    if verb == "rules":
        return cmd_rules_test(args)
    from .config import load_config

    cfg = load_config(args.config)
    for name, server in (("imap", cfg.imap), ("smtp", cfg.smtp)):
        if not server.verify_tls and server.security != "none":
            print(f"คำเตือน: ปิดการตรวจใบรับรอง TLS ของ {name} ({name}.verify_tls: false) เสี่ยงต่อการดักรหัสผ่าน\n"
                  f"WARNING: TLS certificate verification is OFF for {name} ({name}.verify_tls: false)",
                  file=sys.stderr)
    if verb == "check":
        return cmd_check(cfg)
    if verb == "poll":
        return cmd_poll(cfg)
    if verb == "run":
        return cmd_run(cfg, args.every)
    if verb == "case":
        return cmd_case(cfg, args)
    if verb == "results":
        return cmd_results(cfg, args)
    if verb == "publish":
        return cmd_publish(cfg)
    if verb == "status":
        return cmd_status(cfg)
    if verb == "report":
        return cmd_report(cfg, args)
    if verb == "backup":
        return cmd_backup(cfg)
    if verb == "restore":
        return cmd_restore(cfg, args.source, args.force)
    raise AssertionError(verb)


def cmd_init(folder: Path) -> int:
    from .starter import init

    written, kept = init(folder)
    for path in written:
        print(f"สร้าง / wrote    {path}")
    for path in kept:
        print(f"มีอยู่แล้ว ไม่แก้ไข / kept {path}")
    print("\nขั้นต่อไป: แก้ไข mailbot.yaml (ส่วน imap และ smtp) แล้วสั่ง mailbot check\n"
          "Next: fill in imap and smtp in mailbot.yaml, then run: mailbot check")
    return 0


def cmd_rules_test(args: argparse.Namespace) -> int:
    from .classify import match_subject
    from .config import default_config_path, load_config, load_rules

    path = args.rules
    if path is None:
        cfg_path = args.config or default_config_path()
        path = load_config(cfg_path).rules_path if Path(cfg_path).exists() else Path("rules.yaml")
    rules = load_rules(path)
    m = match_subject(args.subject, rules)
    print(m.label)
    if m.kind == "none":
        print("rule: - (ไม่ตรงกฎใด จะลงทะเบียนเป็น 'รอเจ้าหน้าที่ตรวจสอบ' / no rule matched: registered for officer review)")
    else:
        print(f"rule: {m.rule} · keyword: {m.keyword}")
    print(f"normalised subject: {m.normalised}")
    return 0


def cmd_check(cfg) -> int:  # type: ignore[no-untyped-def]
    from .config import load_rules
    from .fetch import Mailbox
    from .replies import Templates
    from .send import Smtp

    failures = 0

    def step(label: str, fn) -> None:  # type: ignore[no-untyped-def]
        nonlocal failures
        try:
            detail = fn()
        except MailbotError as exc:
            failures += 1
            print(f"✗ {label}\n  " + exc.plain().replace("\n", "\n  "))
        else:
            print(f"✓ {label}" + (f": {detail}" if detail else ""))

    print(f"✓ ไฟล์ตั้งค่า / config: {cfg.base_dir / 'mailbot.yaml'}")

    def rules():  # type: ignore[no-untyped-def]
        r = load_rules(cfg.rules_path)
        return f"{len(r.services)} services, {len(r.referrals)} referrals"

    def templates():  # type: ignore[no-untyped-def]
        Templates(cfg.templates_dir).check(cfg.agency)
        return str(cfg.templates_dir)

    def imap():  # type: ignore[no-untyped-def]
        with Mailbox(cfg.imap) as mb:
            mb.select()
            return f"{cfg.imap.host}: {len(mb.uids())} ข้อความใน/messages in {cfg.imap.folder}"

    def smtp():  # type: ignore[no-untyped-def]
        with Smtp(cfg.smtp, cfg.agency.address) as s:
            s.connect()
            return f"{cfg.smtp.host}:{cfg.smtp.effective_port()}"

    def certificate():  # type: ignore[no-untyped-def]
        from datetime import datetime, timezone

        from .certs import read_pkcs12

        _, info = read_pkcs12(cfg.resolve(cfg.signing.pkcs12), cfg.signing.secret())
        now = datetime.now(timezone.utc)
        left = info.days_left(now)
        if left < 0:
            raise MailbotError("ใบรับรองอิเล็กทรอนิกส์หมดอายุแล้ว", f"the signing certificate expired: {info.subject}")
        text = f"{info.subject}; ใช้ได้ถึง/valid until {info.not_after:%Y-%m-%d} ({left} วัน/days)"
        if left <= 30:
            text += f"\n  ! ใบรับรองจะหมดอายุใน {left} วัน ต่ออายุด่วน / WARNING: expires in {left} days: renew it"
        return text

    step("กฎการจัดประเภท / rules", rules)
    step("แม่แบบข้อความตอบกลับ / templates", templates)
    step("รับอีเมล / IMAP login", imap)
    step("ส่งอีเมล / SMTP login", smtp)
    if cfg.signing is not None:
        step("ใบรับรองอิเล็กทรอนิกส์ / signing certificate", certificate)
    if failures:
        print(f"\nพบปัญหา {failures} รายการ / {failures} problem(s) found")
        return 2 if failures else 0
    print("\nพร้อมใช้งาน / all good: mailbot poll")
    return 0


def cmd_case(cfg, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    import getpass

    from . import workflow
    from .cases import Desk
    from .config import load_rules
    from .pipeline import utcnow
    from .register import write_registers
    from .replies import Templates
    from .state import State, from_iso
    from .thai import thai_datetime, thai_digits_to_arabic

    state = State(cfg.data_dir / "state.sqlite3")
    desk = Desk(cfg, load_rules(cfg.rules_path), state, Templates(cfg.templates_dir))
    try:
        if args.case_verb == "list":
            key = None
            if args.status:
                key = workflow.status_key(args.status)
                if key is None:
                    raise MailbotError(f"ไม่รู้จักสถานะ '{args.status}'", f"unknown status '{args.status}'",
                                       "ใช้ได้ / known: " + ", ".join(f"{k} ({v})" for k, v in workflow.STATUSES.items()))
            sql = "SELECT * FROM cases" + (" WHERE status=?" if key else "") + " ORDER BY year_be, seq"
            rows = state.db.execute(sql, (key,) if key else ()).fetchall()
            for c in rows:
                print(f"{c['receipt']:>10}  {workflow.label(c['status']):<24}  {c['sender_addr'] or '-':<30}  {c['subject']}")
            print(f"รวม {len(rows)} เรื่อง / {len(rows)} case(s)")
            return 0
        receipt = thai_digits_to_arabic(args.receipt).replace(" ", "")
        case = state.case(receipt)
        if case is None:
            raise MailbotError(f"ไม่พบเรื่องเลขทะเบียนรับ {receipt}", f"no case with receipt number {receipt}")
        if args.case_verb == "show":
            print(f"เลขทะเบียนรับ / receipt : {case['receipt']}")
            print(f"เรื่อง / subject        : {case['subject']}")
            print(f"จาก / from              : {case['sender_name'] or ''} <{case['sender_addr'] or '-'}>")
            print(f"รับเมื่อ / received       : {thai_datetime(from_iso(case['received_at']))}")
            print(f"บริการ / service        : {case['service_code'] or '-'} {case['service_name'] or ''}")
            print(f"สถานะ / status          : {workflow.label(case['status'])} ({case['status']})")
            print(f"การตอบกลับ / reply      : {case['reply_status'] or '-'}")
            checklist = desk.checklist(case)
            if checklist.verdict != "none":
                print(f"เอกสาร / documents      : {checklist.verdict}")
                for item in checklist.items:
                    print(f"   [{ {'found': '/', 'missing': ' ', 'unknown': '?'}[item.status] }] {item.document}")
            print("ความเป็นมา / history:")
            for h in desk.history(case):
                print(f"   {h['at']}  {h['note']}  ({h['actor']})")
            return 0
        actor = args.by or getpass.getuser()
        try:
            case, told = desk.officer_set(receipt, args.status, args.note, actor, utcnow())
        except workflow.InvalidTransition:
            raise MailbotError(f"ไม่รู้จักสถานะ '{args.status}'", f"unknown status '{args.status}'",
                               "ใช้ได้ / known: " + ", ".join(f"{k} ({v})" for k, v in workflow.STATUSES.items())) from None
        print(f"{case['receipt']}: {workflow.label(case['status'])} (โดย/by {actor})")
        print("แจ้งผู้ยื่น / citizen: " + ("จะส่งในรอบถัดไป / sent at the next cycle" if told == "queued" else told))
        write_registers(state, cfg.registers_dir, cfg.agency.name)
        return 0
    finally:
        state.close()


def _desk(cfg):  # type: ignore[no-untyped-def]
    from .cases import Desk
    from .config import load_rules
    from .replies import Templates
    from .state import State

    state = State(cfg.data_dir / "state.sqlite3")
    return Desk(cfg, load_rules(cfg.rules_path), state, Templates(cfg.templates_dir))


def cmd_results(cfg, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    """Process results/outbox once and send what is owed (SMTP only; Sent copies next cycle)."""
    from .pipeline import CycleReport, deliver, utcnow
    from .register import write_registers
    from .results import Results
    from .send import Smtp

    lock = _lock(cfg)
    _log_to_file(cfg)
    desk = _desk(cfg)
    try:
        results = Results(cfg, desk)
        if getattr(args, "results_verb", None) == "letter":
            from .thai import thai_digits_to_arabic

            receipt = thai_digits_to_arabic(args.receipt).replace(" ", "")
            path = results.letter(receipt, args.outcome, args.note, utcnow(), location=args.location)
            print(f"สร้างหนังสือแจ้งผลแล้ว / result notice written: {path}")
        report = results.process(utcnow())
        sent = CycleReport()
        with Smtp(cfg.smtp, cfg.agency.address) as smtp:
            deliver(desk.state, smtp, utcnow, cfg.limits.replies_per_hour, sent)
        write_registers(desk.state, cfg.registers_dir, cfg.agency.name)
    finally:
        desk.state.close()
        lock.release()
    for receipt, name in report.sent:
        print(f"✓ ลงนามและส่งแล้ว / signed and sent: {name} -> {receipt}")
    for name, reason in report.problems:
        print(f"✗ {name}: ย้ายไป results/problems / moved to results/problems\n  " + reason.replace("\n", "\n  "))
    for name in report.waiting:
        print(f"… {name}: ไฟล์ยังเขียนไม่เสร็จ จะลองรอบถัดไป / still being written; next time")
    for path in report.published:
        print(f"เผยแพร่ / published: {path}")
    if not (report.sent or report.problems or report.waiting):
        print("ไม่มีไฟล์ใน results/outbox / nothing in results/outbox")
    if sent.smtp_error is not None:
        print(sent.smtp_error.plain(), file=sys.stderr)
        return EXIT_SMTP_TROUBLE
    return 0


def cmd_publish(cfg) -> int:  # type: ignore[no-untyped-def]
    from . import licences
    from .pipeline import utcnow
    from .state import State

    state = State(cfg.data_dir / "state.sqlite3")
    try:
        for path in licences.publish(state, cfg.resolve(cfg.publish.folder), cfg.agency.name, utcnow()):
            print(f"เผยแพร่ / published: {path}")
    finally:
        state.close()
    return 0


class _BomRotatingHandler(logging.handlers.RotatingFileHandler):
    """UTF-8 log files that start with a BOM, so Notepad shows Thai correctly."""

    def _open(self):  # type: ignore[no-untyped-def]
        stream = super()._open()
        if stream.tell() == 0:
            stream.write("\ufeff")
        return stream


def _log_to_file(cfg) -> None:  # type: ignore[no-untyped-def]
    """data/logs/mailbot.log: one line per handled message and every warning, for the officer."""
    folder = cfg.data_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    handler = _BomRotatingHandler(folder / "mailbot.log", maxBytes=5_000_000, backupCount=10, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("mailbot")
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    for h in logging.getLogger().handlers:  # the console stays quiet: the report is printed
        if h.level == logging.NOTSET:
            h.setLevel(logging.ERROR)


def _lock(cfg):  # type: ignore[no-untyped-def]
    from filelock import FileLock, Timeout

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(cfg.data_dir / "mailbot.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise AlreadyRunning(
            "mailbot อีกตัวกำลังทำงานกับข้อมูลชุดนี้อยู่ ไม่เริ่มซ้ำ",
            f"another mailbot is already working on {cfg.data_dir}; not starting a second one",
        ) from None
    return lock


def cmd_poll(cfg) -> int:  # type: ignore[no-untyped-def]
    from .demo import print_report
    from .pipeline import run_cycle

    lock = _lock(cfg)
    _log_to_file(cfg)
    try:
        report = run_cycle(cfg)
    finally:
        lock.release()
    print_report(report)
    if report.smtp_error is not None:
        print(f"\nอีเมลตอบกลับ {report.backlog} ฉบับรอส่งในรอบถัดไป / {report.backlog} replies wait for the next cycle",
              file=sys.stderr)
        return EXIT_SMTP_TROUBLE
    return 0


def cmd_run(cfg, every: int | None) -> int:  # type: ignore[no-untyped-def]
    from .daemon import Daemon
    from .demo import print_report

    if every:
        cfg.schedule.every_minutes = every
    lock = _lock(cfg)
    _log_to_file(cfg)
    s = cfg.schedule
    print(f"mailbot ทำงานทุก {s.every_minutes} นาทีในเวลาราชการ ({s.office_hours}) และทุก "
          f"{s.after_hours_every_minutes} นาทีนอกเวลา (Ctrl-C เพื่อหยุด)\n"
          f"polling every {s.every_minutes} min in office hours, every {s.after_hours_every_minutes} min "
          f"outside{' + IMAP IDLE' if s.idle else ''} (Ctrl-C stops)", flush=True)
    try:
        Daemon(cfg, on_report=print_report).run_forever()
    finally:
        lock.release()
    print("หยุดทำงานแล้ว / stopped")
    return 0


def open_side(cfg):  # type: ignore[no-untyped-def]
    """The state database and the alerts desk, for jobs outside the intake cycle."""
    from .alerts import Alerts
    from .replies import Templates
    from .state import State

    state = State(cfg.data_dir / "state.sqlite3")
    return state, Alerts(cfg, state, Templates(cfg.templates_dir))


def send_daily_report(cfg, day, now, email_it: bool = True):  # type: ignore[no-untyped-def]
    """Write registers/daily/<BE date>.xlsx and queue it to the supervisors; returns the path."""
    from . import report
    from .daemon import send_alerts
    from .replies import Templates, build, context
    from .thai import thai_date

    state, _ = open_side(cfg)
    try:
        path = report.write(state, day, cfg.registers_dir, cfg.agency.name)
        if email_it and cfg.supervisors:
            ctx = context(cfg.agency, receipt=None, received_at=now, subject="", sender_name="")
            ctx["received_date"] = thai_date(day)
            with state.tx():
                for i, to in enumerate(cfg.supervisors):
                    mid = f"<mailbot.daily.{day:%Y%m%d}.{i}@{cfg.agency.domain}>"
                    raw = build(kind="daily_report", templates=Templates(cfg.templates_dir), agency=cfg.agency,
                                to=to, subject=f"บันทึกประจำวัน {thai_date(day)} / daily log", receipt=None,
                                in_reply_to=None, references=(), message_id=mid, now=now, ctx=ctx,
                                files=((path.name, path.read_bytes()),))
                    state.queue_reply(message_id=mid, kind="daily_report", case_id=None, message_row=None,
                                      recipient=to, subject=f"daily log {day}", raw=raw, status="queued",
                                      hold_reason=None, now=now)
            send_alerts(cfg, state)
        return path
    finally:
        state.close()


def cmd_report(cfg, args: argparse.Namespace) -> int:  # type: ignore[no-untyped-def]
    from .pipeline import utcnow
    from .report import parse_day
    from .thai import BANGKOK

    now = utcnow()
    try:
        day = parse_day(args.date) if args.date else now.astimezone(BANGKOK).date()
    except ValueError:
        raise MailbotError(f"วันที่ไม่ถูกต้อง: {args.date} (ใช้ 2569-11-27 หรือ 2026-11-27)",
                           f"bad date {args.date!r}: use 2569-11-27 or 2026-11-27") from None
    path = send_daily_report(cfg, day, now, email_it=args.email)
    print(f"บันทึกประจำวัน / daily log: {path}")
    return 0


def cmd_backup(cfg) -> int:  # type: ignore[no-untyped-def]
    from .backup import backup
    from .pipeline import utcnow

    result = backup(cfg, utcnow())
    state, _ = open_side(cfg)
    try:
        state.put("last_backup", f"{utcnow().isoformat()} {result.folder}")
    finally:
        state.close()
    print(f"สำรองข้อมูลแล้วและตรวจสอบผ่าน / backup written and verified: {result.folder}")
    print(f"  {result.files} ไฟล์/files, {result.bytes // 1024} KB" +
          (f"; ลบชุดเก่า/pruned {len(result.pruned)}" if result.pruned else ""))
    return 0


def cmd_restore(cfg, source: Path, force: bool) -> int:  # type: ignore[no-untyped-def]
    from .backup import restore

    lock = _lock(cfg)
    try:
        count = restore(cfg, source, force=force)
    finally:
        lock.release()
    print(f"กู้คืนแล้ว {count} ไฟล์ / restored {count} files into {cfg.data_dir}")
    return 0


def cmd_status(cfg) -> int:  # type: ignore[no-untyped-def]
    from datetime import datetime

    from . import schedule
    from .backup import latest
    from .pipeline import utcnow
    from .thai import thai_datetime

    now = utcnow()
    state, _ = open_side(cfg)
    try:
        last = state.get("last_poll_ok")
        print("ตรวจกล่องอีเมลสำเร็จล่าสุด / last successful poll: "
              + (thai_datetime(datetime.fromisoformat(last)) if last else "ยังไม่เคย / never"))
        nxt = schedule.next_poll(now, cfg.schedule)
        print(f"รอบถัดไป / next poll: {thai_datetime(nxt)}")
        print(f"บันทึกประจำวันถัดไป / next daily log: "
              f"{thai_datetime(schedule.next_daily(now, cfg.schedule.daily_report, cfg.schedule))}")
        queued = state.db.execute("SELECT count(*) FROM outbox WHERE status='queued'").fetchone()[0]
        held = state.db.execute("SELECT count(*) FROM outbox WHERE status='held'").fetchone()[0]
        quarantined = state.db.execute("SELECT count(*) FROM messages WHERE outcome='quarantined'").fetchone()[0]
        print(f"อีเมลรอส่ง / outbox queue: {queued} (ระงับ/held {held})")
        print(f"กักกัน / quarantined: {quarantined}")
        backup_info = state.get("last_backup")
        folder = latest(cfg)
        print("สำรองข้อมูลล่าสุด / last backup: " + (backup_info or (str(folder) if folder else "ยังไม่เคย / never")))
        if cfg.signing is not None:
            from .certs import read_pkcs12

            try:
                _, info = read_pkcs12(cfg.resolve(cfg.signing.pkcs12), cfg.signing.secret())
                print(f"ใบรับรองหมดอายุ / certificate expires: {info.not_after:%Y-%m-%d} ({info.days_left(now)} วัน/days)")
            except MailbotError as exc:
                print("ใบรับรอง / certificate: " + exc.english)
    finally:
        state.close()
    try:
        from .fetch import Mailbox

        with Mailbox(cfg.imap) as mb:
            mb.select()
            print(f"อีเมลรอในกล่อง / waiting in {cfg.imap.folder}: {len(mb.uids())}")
    except MailbotError as exc:
        print("กล่องอีเมล / mailbox: " + exc.english)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
