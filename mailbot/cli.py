"""The ``mailbot`` command: a face — parse the arguments, call one method of the application
core (``app.Office``), print the result, exit.

Every failure an officer can cause or meet (bad config, bad rules, server down, wrong
password, a typing mistake on the command line) is printed in plain Thai with English below,
never as a traceback (unless ``--debug``). Exit codes: 0 done; 1 unexpected; 2 config, rules,
templates or command line; 3 a mail server cannot be reached or refuses the sign-in; 4 another
mailbot already works on the same data folder.
"""
from __future__ import annotations

import argparse
import getpass
import io
import logging
import logging.handlers
import re
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from .errors import ConfigError, MailbotError
from .files import private_files

if TYPE_CHECKING:
    from .clock import Clock

log = logging.getLogger("mailbot")

EXIT_SMTP_TROUBLE = 3


def _utf8_console() -> None:
    for stream in (sys.stdout, sys.stderr):
        if not isinstance(stream, io.TextIOWrapper):   # replaced (a test's capture, a pipe wrapper)
            continue
        try:
            stream.reconfigure(encoding="utf-8", errors="replace")
        except ValueError:
            pass


# argparse's own messages, as an officer should read them
_ARGPARSE_TH = [
    (r"the following arguments are required: (.+)", r"ต้องระบุ: \1"),
    (r"argument (\S+): invalid choice: '?([^' ]*)'? \(choose from (.+)\)", r"\1: ไม่มีตัวเลือก '\2' (ใช้ได้: \3)"),
    (r"invalid choice: '?([^' ]*)'? \(choose from (.+)\)", r"ไม่มีคำสั่ง '\1' (ใช้ได้: \2)"),
    (r"unrecognized arguments: (.+)", r"ไม่รู้จัก: \1"),
    (r"argument (\S+): expected one argument", r"\1: ต้องมีค่าตามหลัง"),
    (r"argument (\S+): (.+)", r"\1: \2"),
]


class ThaiArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        thai = message
        for pattern, repl in _ARGPARSE_TH:
            if re.search(pattern, message):
                thai = re.sub(pattern, repl, message)
                break
        self.exit(2, f"คำสั่งไม่ถูกต้อง: {thai}\nusage error: {message}\n"
                     f"ดูวิธีใช้ / help: {self.prog} --help\n")


def minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"ต้องเป็นจำนวนนาที 1–1440 / must be minutes 1–1440: {text!r}") from None
    if not 1 <= value <= 1440:
        raise argparse.ArgumentTypeError(f"ต้องเป็นจำนวนนาที 1–1440 / must be minutes 1–1440: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = ThaiArgumentParser(
        prog="mailbot",
        description="ผู้ช่วยงานสารบรรณสำหรับกล่องอีเมลกลาง (saraban@) / "
                    "front office for an agency's central mailbox",
    )
    p.add_argument("--config", type=Path, default=None,
                   help="ไฟล์ตั้งค่า / config file (default ./mailbot.yaml or $MAILBOT_CONFIG)")
    p.add_argument("--debug", action="store_true", help="แสดงรายละเอียดสำหรับผู้พัฒนา / show details and tracebacks")
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB", parser_class=ThaiArgumentParser)
    s = sub.add_parser("init", help="สร้างไฟล์ตั้งต้น / write starter mailbot.yaml, rules.yaml, templates/")
    s.add_argument("dir", nargs="?", type=Path, default=Path("."))
    sub.add_parser("check", help="ตรวจการตั้งค่าและทดลองเข้าสู่ระบบ / validate settings and log in to IMAP and SMTP")
    s = sub.add_parser("login", help="เข้าสู่ระบบกล่องอีเมลด้วย OAuth2 / sign in with OAuth2 (device code, client secret)")
    s.add_argument("--new-secret", action="store_true",
                   help="ใส่รหัสลับของแอปใหม่ / enter a new client secret (client_credentials)")
    s.add_argument("--secret-stdin", action="store_true",
                   help="อ่านรหัสลับของแอปจาก standard input / read the client secret from standard input")
    s.add_argument("--forget", action="store_true",
                   help="ลบโทเค็นและรหัสลับที่เก็บไว้ / delete the stored tokens and client secret")
    s = sub.add_parser("secret", help="รหัสลับในที่เก็บรหัสลับ เช่น โทเค็นของ LINE / secrets in the credential store")
    ss = s.add_subparsers(dest="secret_verb", required=True, metavar="set|delete", parser_class=ThaiArgumentParser)
    c = ss.add_parser("set", help="mailbot secret set line (โทเค็นของบัญชี LINE ที่ใช้แจ้งเตือน / "
                                  "the LINE channel access token)")
    c.add_argument("name", choices=["line"])
    c.add_argument("--stdin", action="store_true",
                   help="อ่านจาก standard input แทนการพิมพ์ / read it from standard input")
    c = ss.add_parser("delete", help="mailbot secret delete line")
    c.add_argument("name", choices=["line"])
    sub.add_parser("poll", help="ทำงานหนึ่งรอบแล้วจบ / run one cycle and exit")
    s = sub.add_parser("run", help="ทำงานต่อเนื่องทุก N นาที / keep polling every N minutes")
    s.add_argument("--every", type=minutes, default=None, metavar="MINUTES")
    s = sub.add_parser("rules", help="ทดลองกฎการจัดประเภท / try the classification rules")
    rs = s.add_subparsers(dest="rules_verb", required=True, metavar="test", parser_class=ThaiArgumentParser)
    t = rs.add_parser("test", help='mailbot rules test "หัวเรื่อง"')
    t.add_argument("subject")
    t.add_argument("--rules", type=Path, default=None, help="rules.yaml to use (default: from the config)")
    s = sub.add_parser("case", help="ดู/แก้สถานะเรื่อง โดยไม่ต้องแก้ Excel / show, list or update cases")
    cs = s.add_subparsers(dest="case_verb", required=True, metavar="show|list|set|cancel", parser_class=ThaiArgumentParser)
    c = cs.add_parser("show", help="mailbot case show 15/2569")
    c.add_argument("receipt")
    c = cs.add_parser("list", help="mailbot case list [--status awaiting_documents]")
    c.add_argument("--status", default=None)
    c = cs.add_parser("set", help='mailbot case set 15/2569 --status in_progress [--note "..."] [--tell "..."]')
    c.add_argument("receipt")
    c.add_argument("--status", default=None)
    c.add_argument("--note", default="", help="บันทึกภายใน ไม่ส่งถึงผู้ยื่น / internal note, never sent")
    c.add_argument("--tell", default="", help="ข้อความถึงผู้ยื่น ส่งทางอีเมล / a message e-mailed to the citizen")
    c.add_argument("--by", default=None, help="ชื่อเจ้าหน้าที่ / officer name (default: the logged-in user)")
    c.add_argument("--late-reason", default="", help="เหตุที่ล่าช้า (แจ้งผู้ยื่นทุก 7 วันเมื่อเกินกำหนด) / why it is late")
    c.add_argument("--expected", default="", help="คาดว่าจะแล้วเสร็จ เช่น 15/1/2570 / expected date")
    c.add_argument("--title", default=None,
                   help="คำนำหน้าชื่อผู้ยื่น เช่น นาย นาง นางสาว ร.ต.อ. (ใช้ใน เรียน ของหนังสือแจ้งผล; \"\" = ล้าง) / "
                        "the requester's title for the letter's salutation (\"\" clears it)")
    c = cs.add_parser("cancel", help='mailbot case cancel 15/2569 --reason "ลงทะเบียนซ้ำ"')
    c.add_argument("receipt")
    c.add_argument("--reason", required=True)
    c.add_argument("--by", default=None)
    s = sub.add_parser("audit", help="ตรวจบันทึกตรวจสอบ (hash chain) / verify the audit log")
    v = s.add_subparsers(dest="audit_verb", required=True, metavar="verify",
                         parser_class=ThaiArgumentParser).add_parser("verify", help="mailbot audit verify")
    v.add_argument("--head", action="append", default=[], metavar='"#N รหัส"',
                   help="จุดอ้างอิงจากสำเนาของผู้บังคับบัญชา (บรรทัด #เลข รหัส ในอีเมลบันทึกประจำวัน) / "
                        "a head from the supervisors' copy of a daily log (repeatable)")
    s = sub.add_parser("reply", help="อีเมลที่ระงับไว้ / held replies: list, release, discard")
    ps = s.add_subparsers(dest="reply_verb", required=True, metavar="list|release|discard",
                          parser_class=ThaiArgumentParser)
    ps.add_parser("list", help="mailbot reply list")
    for verb in ("release", "discard"):
        c = ps.add_parser(verb, help=f"mailbot reply {verb} NUMBER")
        c.add_argument("number", type=int)
        c.add_argument("--by", default=None)
    s = sub.add_parser("results", help="ลงนามและส่งผลการพิจารณาจาก results/outbox / sign and send result PDFs")
    rs2 = s.add_subparsers(dest="results_verb", required=False, metavar="letter", parser_class=ThaiArgumentParser)
    c = rs2.add_parser("letter", help="mailbot results letter 15/2569 --outcome approved|rejected|incomplete")
    c.add_argument("receipt")
    c.add_argument("--outcome", required=True, choices=["approved", "rejected", "incomplete"])
    c.add_argument("--note", default="")
    c.add_argument("--location", default="", help="สถานที่ (สำหรับทะเบียนใบอนุญาต) / location, for the licence register")
    c.add_argument("--holder", default="", help="ชื่อผู้ได้รับอนุญาต (ถ้าไม่ใช่ผู้ยื่น) / licence holder, if not the requester")
    c.add_argument("--preview", action="store_true",
                   help="เขียนหนังสือให้ดูก่อน ไม่ลงนาม ไม่ส่ง / write the letter only: not signed, not sent")
    sub.add_parser("status", help="สถานะการทำงาน / last poll, next runs, queues, backup, certificate")
    s = sub.add_parser("report", help="บันทึกประจำวัน / daily supervisors' log")
    s.add_argument("--date", default=None, help="29/11/2569, 2569-11-29 or 2026-11-29 (default: today)")
    s.add_argument("--email", action="store_true", help="ส่งถึงผู้บังคับบัญชาด้วย / also email it to supervisors")
    s.add_argument("--year", action="store_true",
                   help="พิมพ์ทะเบียนรับทั้งปีด้วย / also make the whole year's receive register PDF")
    sub.add_parser("backup", help="สำรองข้อมูลไปยัง backup.dir / back up to backup.dir")
    s = sub.add_parser("restore", help="กู้คืนจากข้อมูลสำรอง / restore from a backup")
    s.add_argument("--from", dest="source", type=Path, required=True)
    s.add_argument("--force", action="store_true")
    sub.add_parser("publish", help="เผยแพร่ทะเบียนใบอนุญาต (xlsx, csv, CKAN) / write the public licence register")
    s = sub.add_parser("privacy", help="ข้อมูลส่วนบุคคล (PDPA): ส่งออกหรือลบตามระยะเวลาเก็บ / data-subject export, retention")
    ps2 = s.add_subparsers(dest="privacy_verb", required=True, metavar="export|prune", parser_class=ThaiArgumentParser)
    c = ps2.add_parser("export", help="mailbot privacy export ADDRESS [--to FOLDER]")
    c.add_argument("address")
    c.add_argument("--to", type=Path, default=Path("."), help="โฟลเดอร์ที่จะเขียน / folder to write into")
    c = ps2.add_parser("prune", help="mailbot privacy prune [--yes]")
    c.add_argument("--yes", action="store_true", help="ลบโดยไม่ถามยืนยัน / delete without asking")
    s = sub.add_parser("console", help="หน้าจอเจ้าหน้าที่ (เว็บในเครื่อง) / the officer's web console")
    s.add_argument("--port", type=int, default=None, help="พอร์ต / port (default console.port, 8470)")
    s.add_argument("--no-browser", action="store_true", help="ไม่ต้องเปิดเบราว์เซอร์ / do not open a browser")
    cs2 = s.add_subparsers(dest="console_verb", required=False, metavar="user", parser_class=ThaiArgumentParser)
    u = cs2.add_parser("user", help="บัญชีเจ้าหน้าที่ / officer accounts: add, passwd, remove, list")
    us = u.add_subparsers(dest="user_verb", required=True, metavar="add|passwd|remove|list",
                          parser_class=ThaiArgumentParser)
    for verb in ("add", "passwd", "remove"):
        c = us.add_parser(verb, help=f"mailbot console user {verb} NAME")
        c.add_argument("name")
        if verb != "remove":
            c.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None,
                           help="แก้การตั้งค่าได้ / may change settings (--no-admin: may not)")
    us.add_parser("list", help="mailbot console user list")
    s = sub.add_parser("start", help="เปิดงาน: สร้างที่ทำงานในโฟลเดอร์เอกสาร (ครั้งแรก) เปิดหน้าจอเจ้าหน้าที่ และทำงานต่อเนื่อง "
                                     "/ start: make the workspace (first time), open the console, keep working")
    s.add_argument("--no-browser", action="store_true", help="ไม่เปิดเว็บเบราว์เซอร์ / do not open a browser")
    s.add_argument("--port", type=int, default=None, help="พอร์ตของหน้าจอเจ้าหน้าที่ / the console's port")
    s = sub.add_parser("demo", help="ทดลองทั้งระบบกับเซิร์ฟเวอร์จำลอง / full cycle on embedded servers")
    s.add_argument("--dir", type=Path, default=None, help="เก็บพื้นที่ทดลองไว้ที่นี่ / keep the workspace in this folder")
    s = sub.add_parser("host", help="ผู้ให้บริการหลายหน่วยงาน (PostgreSQL) / a host running many agencies "
                                    "(database from $MAILBOT_DATABASE_URL)")
    hs = s.add_subparsers(dest="host_verb", required=True, metavar="VERB", parser_class=ThaiArgumentParser)
    hs.add_parser("init", help="เตรียมฐานข้อมูล / prepare the registry and the job queue")
    c = hs.add_parser("add", help="mailbot host add AGENCY --config PATH/mailbot.yaml")
    c.add_argument("agency")
    c.add_argument("--config", dest="agency_config", type=Path, required=True)
    c = hs.add_parser("list", help="หน่วยงานและสถานะ / agencies and their health")
    c.add_argument("--all", action="store_true", help="รวมที่หยุดให้บริการแล้ว / with removed ones")
    c = hs.add_parser("remove", help="หยุดให้บริการ (เก็บข้อมูลไว้) / stop serving an agency (its data is kept)")
    c.add_argument("agency")
    c = hs.add_parser("worker", help="ทำงานตามคิว / take the agencies' jobs until stopped")
    c.add_argument("--concurrency", type=int, default=4, help="รอบที่ทำพร้อมกัน / cycles at once (default 4)")
    c.add_argument("--tick", type=int, default=10, help="ตรวจหน่วยงานที่ถึงรอบทุก N วินาที / seconds between checks")
    c.add_argument("--heartbeat", type=float, default=10.0, help="seconds between heartbeats")
    c.add_argument("--stalled", type=float, default=30.0, help="a worker silent this long is taken for dead")
    c.add_argument("--idle", action="store_true", help="เฝ้ากล่องอีเมลแบบ IDLE แทนการทำรอบ / watch mailboxes "
                                                        "(IMAP IDLE) for the agencies with schedule.idle")
    c = hs.add_parser("console", help="หน้าจอของทุกหน่วยงาน (/หน่วยงาน/) และหน้าสถานะของผู้ดูแล / "
                                      "every agency's console under /AGENCY/ and the operator's health page")
    c.add_argument("--port", type=int, default=8480)
    c.add_argument("--listen", default="127.0.0.1", help="0.0.0.0: every address (in a container)")
    c.add_argument("--name", action="append", default=[], help="a host name the page is opened by (repeatable)")
    c.add_argument("--behind-proxy", action="store_true", help="believe X-Forwarded-Proto/Host (a TLS ingress)")
    c = hs.add_parser("officer", help="บัญชีเจ้าหน้าที่ของหน่วยงาน / an agency's officer accounts: "
                                      "mailbot host officer AGENCY add|passwd|remove|list [NAME]")
    c.add_argument("agency")
    c.add_argument("user_verb", choices=["add", "passwd", "remove", "list"])
    c.add_argument("name", nargs="?", default="")
    c.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None,
                   help="แก้การตั้งค่าได้ / may change settings (--no-admin: may not)")
    c = hs.add_parser("operator", help="บัญชีผู้ดูแลของผู้ให้บริการ / a host operator's account "
                                       "(password from $MAILBOT_OPERATOR_PASSWORD or typed)")
    c.add_argument("name")
    return p


def main(argv: list[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()     # signing runs in a helper process (also in a frozen .exe)
    _utf8_console()
    private_files()                      # citizens' data: readable by the office's account only
    parser = build_parser()
    argv = _start_by_default(parser, sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(argv)
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
        from .errors import explain_environment

        known = explain_environment(exc, getattr(args, "data_dir", None))
        if known is not None:
            print(known.plain(), file=sys.stderr)
            return known.exit_code
        print(
            "เกิดข้อผิดพลาดที่ไม่คาดคิด ข้อมูลที่บันทึกแล้วไม่สูญหาย ลองใหม่อีกครั้ง หรือส่งผลของ --debug ให้ผู้ดูแล\n"
            f"Unexpected error ({type(exc).__name__}); saved data is safe. Retry, or send the output of --debug to support.",
            file=sys.stderr,
        )
        return 1


def _start_by_default(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`mailbot` with no verb (the Start-menu shortcut, a double click) is `mailbot start`: the
    global options stay in front, start's own (--no-browser, --port) go after it."""
    verbs = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if {"-h", "--help"} & set(argv) or any(a in verbs for a in argv):
        return argv
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--config" and i + 1 < len(argv):
            front += argv[i:i + 2]
            i += 2
            continue
        (front if a.startswith("--config=") or a == "--debug" else rest).append(a)
        i += 1
    return [*front, "start", *rest]


def _notify(thai: str, english: str) -> None:
    print(f"{thai}\n{english}", file=sys.stderr, flush=True)


def _dispatch(args: argparse.Namespace) -> int:
    from .clock import from_environment

    verb = args.verb
    clock, notice = from_environment()
    if notice:
        print(notice, file=sys.stderr)
    if verb == "init":
        return cmd_init(args.dir, clock)
    if verb == "demo":
        from .demo import run_demo

        run_demo(args.dir)
        return 0
    if verb == "host":
        return cmd_host(args, clock)
    from .config import default_config_path, load_config

    if verb == "start":
        return cmd_start(args, clock)
    if verb == "rules":
        return cmd_rules_test(args, clock)
    cfg = load_config(args.config or default_config_path())
    args.data_dir = cfg.data_dir
    for name, server in (("imap", cfg.imap), ("smtp", cfg.smtp)):
        if not server.verify_tls and server.security != "none":
            print(f"คำเตือน: ปิดการตรวจใบรับรอง TLS ของ {name} ({name}.verify_tls: false) เสี่ยงต่อการดักรหัสผ่าน\n"
                  f"WARNING: TLS certificate verification is OFF for {name} ({name}.verify_tls: false)",
                  file=sys.stderr)
    if verb == "check":
        return cmd_check(cfg, clock)
    if verb == "login":
        return cmd_login(cfg, args)
    if verb == "restore":
        return cmd_restore(cfg, args.source, args.force, clock)
    if verb == "console":
        return cmd_console(cfg, clock, args)
    if verb in ("poll", "run"):
        _log_to_file(cfg)
        return cmd_poll(cfg, clock) if verb == "poll" else cmd_run(cfg, clock, args.every)
    from .app import Office

    if verb in ("results", "case", "reply", "report", "backup", "publish", "privacy", "audit"):
        _log_to_file(cfg)
    with Office.open(cfg, clock=clock, notify=_notify) as office:
        if verb == "case":
            return cmd_case(office, args)
        if verb == "reply":
            return cmd_reply(office, args)
        if verb == "results":
            return cmd_results(office, args)
        if verb == "privacy":
            return cmd_privacy(office, args)
        if verb == "audit":
            result = office.audit_verify(args.head)
            for line in result.lines():
                print(line)
            return 0 if result.ok else 6
        if verb == "publish":
            for path in office.publish():
                print(f"เผยแพร่ / published: {path}")
            return 0
        if verb == "status":
            return cmd_status(office)
        if verb == "secret":
            return cmd_secret(office, args)
        if verb == "report":
            return cmd_report(office, args)
        if verb == "backup":
            return cmd_backup(office)
    raise AssertionError(verb)


def cmd_host(args: argparse.Namespace, clock) -> int:
    from importlib.util import find_spec

    if find_spec("psycopg") is None or find_spec("procrastinate") is None:
        print("โหมดผู้ให้บริการต้องติดตั้งส่วนเสริม: pip install \"mailbot-saraban[host]\"\n"
              "host mode needs its extra: pip install \"mailbot-saraban[host]\"", file=sys.stderr)
        return 2
    from .host.service import Host

    if args.host_verb == "worker":
        from .host.service import host_url
        from .host.worker import Options, run_worker

        run_worker(host_url(), Options(tick_seconds=args.tick, heartbeat=args.heartbeat, stalled=args.stalled,
                                       concurrency=args.concurrency, idle=args.idle))
        return 0
    if args.host_verb == "console":
        from waitress import serve

        from .host.console import HostConsole, make_wsgi
        from .host.service import host_url

        console = HostConsole(host_url(), clock, port=args.port, listen=args.listen, names=args.name)
        print(f"หน้าจอผู้ให้บริการ / host console: http://{args.listen}:{args.port}/", flush=True)
        serve(make_wsgi(console, args.behind_proxy), host=args.listen, port=args.port, threads=8)
        return 0
    if args.host_verb == "operator":
        from .host.console import add_operator
        from .host.service import host_url

        password = os.environ.get("MAILBOT_OPERATOR_PASSWORD") or getpass.getpass("รหัสผ่าน / password: ")
        add_operator(host_url(), args.name, password, clock())
        print(f"บันทึกบัญชีผู้ดูแล {args.name} แล้ว / operator {args.name} saved")
        return 0
    if args.host_verb == "officer":
        from .host.service import agency_config, check_name

        with Host() as host:
            row = host.store.agency(check_name(args.agency))
        if row is None or row["removed_at"] is not None:
            print(f"ไม่พบหน่วยงาน {args.agency} ที่ให้บริการอยู่ / {args.agency} is not served", file=sys.stderr)
            return 2
        if args.user_verb != "list" and not args.name:
            print("ต้องระบุชื่อบัญชี / a name is needed", file=sys.stderr)
            return 2
        return cmd_console_user(agency_config(args.agency, row["config"]), clock, args)
    with Host() as host:
        if args.host_verb == "init":
            from .host.worker import prepare_queue

            host.init()
            prepare_queue(host.url)
            print("เตรียมฐานข้อมูลของผู้ให้บริการแล้ว / the host's database is ready")
        elif args.host_verb == "add":
            added = host.add(args.agency, args.agency_config, clock())
            print(f"เพิ่มหน่วยงาน {args.agency} แล้ว / added {args.agency}" if added else
                  f"มีหน่วยงาน {args.agency} อยู่แล้ว / {args.agency} is served already")
        elif args.host_verb == "remove":
            if not host.remove(args.agency, clock()):
                print(f"ไม่พบหน่วยงาน {args.agency} ที่ให้บริการอยู่ / {args.agency} is not served", file=sys.stderr)
                return 2
            print(f"หยุดให้บริการ {args.agency} แล้ว ข้อมูลยังเก็บไว้ / {args.agency} removed; its data is kept")
        else:
            now = clock()
            rows = host.health(now, with_removed=args.all)
            for h in rows:
                print(h.line(now))
            if not rows:
                print("ยังไม่มีหน่วยงาน / no agencies yet: mailbot host add AGENCY --config mailbot.yaml")
    return 0


def cmd_init(folder: Path, clock: "Clock") -> int:
    from .starter import init
    from .thai import to_bangkok

    written, kept = init(folder, today=to_bangkok(clock()).date())
    for path in written:
        print(f"สร้าง / wrote    {path}")
    for path in kept:
        print(f"มีอยู่แล้ว ไม่แก้ไข / kept {path}")
    where = folder.resolve()
    cd = f'cd /d "{where}"' if sys.platform == "win32" else f'cd "{where}"'
    print("\nขั้นต่อไป / next:\n"
          f"  1. {cd}\n"
          "  2. แก้ไข mailbot.yaml (ส่วน agency, imap และ smtp) / fill in agency, imap and smtp in mailbot.yaml\n"
          "  3. mailbot check")
    return 0


def cmd_rules_test(args: argparse.Namespace, clock) -> int:
    from .app import Office, rules_test
    from .config import default_config_path, load_config, load_rules

    cfg_path = Path(args.config or default_config_path())
    if args.rules is None and cfg_path.exists():
        with Office.open(load_config(cfg_path), clock=clock) as office:
            result = office.rules_test(args.subject)
    else:
        rules = load_rules(args.rules or Path("rules.yaml"))
        result = rules_test(None, rules, args.subject, now=clock())
    print(result.thai)
    print(result.english)
    print(f"หัวเรื่องหลังปรับรูปแบบ / normalised subject: {result.normalised}")
    return 0


def cmd_check(cfg, clock) -> int:
    from .ops.checks import exit_code, run_checks

    checks = run_checks(cfg, clock())
    for c in checks:
        if c.ok:
            print(f"✓ {c.label}" + (f": {c.detail}" if c.detail else ""))
            if c.warning:
                print(f"  ! {c.warning}")
        else:
            print(f"✗ {c.label}\n  " + c.detail.replace("\n", "\n  "))
    code = exit_code(checks)
    failed = sum(1 for c in checks if not c.ok)
    if failed:
        print(f"\nพบปัญหา {failed} รายการ / {failed} problem(s) found")
    else:
        print("\nพร้อมใช้งาน / all good: mailbot poll")
    return code


def cmd_poll(cfg, clock) -> int:
    from .app import Office
    from .ops.locks import instance_lock
    from .present import ProgressLine, print_report

    lock = instance_lock(cfg.data_dir)
    try:
        with Office.open(cfg, clock=clock, notify=_notify) as office:
            report = office.poll(progress=ProgressLine())
    finally:
        lock.release()
    print_report(report)
    if report.smtp_error is not None:
        print(f"\nอีเมลตอบกลับ {report.backlog} ฉบับรอส่งในรอบถัดไป / {report.backlog} replies wait for the next cycle",
              file=sys.stderr)
        return EXIT_SMTP_TROUBLE
    return 0


def cmd_start(args: argparse.Namespace, clock) -> int:
    """`mailbot` / `mailbot start`: the one way in without a terminal. The config given (--config,
    $MAILBOT_CONFIG, ./mailbot.yaml), else the workspace in the documents folder, made from the
    starter files on the first run; then the service with its console, and the browser opened at
    the console (its setup page while setup is not through). Started twice: the browser opens the
    console already running."""
    import os

    from .config import load_config
    from .console.server import console_url, running
    from .setup import workspace
    from .thai import to_bangkok

    made = False
    if args.config is not None:
        path = args.config
    elif os.environ.get("MAILBOT_CONFIG") or Path("mailbot.yaml").is_file():
        path = Path(os.environ.get("MAILBOT_CONFIG") or "mailbot.yaml")
    else:
        folder = workspace.workspace()
        path, made = workspace.ensure(folder, to_bangkok(clock()).date())
        if made:
            print(f"สร้างที่ทำงานของ mailbot แล้ว: {folder}\nmade the mailbot workspace: {folder}", flush=True)
    cfg = load_config(path)
    args.data_dir = cfg.data_dir
    cfg.console.enabled = True
    if args.port:
        cfg.console.port = args.port
    url = console_url(cfg)
    if running(cfg):
        print(f"mailbot ทำงานอยู่แล้ว เปิดหน้าจอเจ้าหน้าที่: {url}\nmailbot is already running: {url}", flush=True)
        if not args.no_browser:
            _open_browser(url)
        return 0
    from .app import Office

    with Office.open(cfg, clock=clock) as office:
        if made:
            office.setup.begin()
        page = url.rstrip("/") + ("/setup/" if office.setup.waiting() else "/")
    if not args.no_browser:
        import threading

        threading.Timer(1.5, _open_browser, args=(page,)).start()   # once the console is listening
    print(f"หน้าจอเจ้าหน้าที่ / officer console: {page}", flush=True)
    _log_to_file(cfg)
    return cmd_run(cfg, clock, None)


def _open_browser(url: str) -> None:
    import webbrowser

    try:
        webbrowser.open(url)
    except Exception:  # noqa: BLE001 - no browser: the address is printed
        pass


def cmd_run(cfg, clock, every: int | None) -> int:
    from .ops.daemon import Daemon
    from .ops.locks import instance_lock
    from .present import print_report

    if every:
        cfg.schedule.every_minutes = every
    lock = instance_lock(cfg.data_dir)
    s = cfg.schedule
    print(f"mailbot ทำงานทุก {s.every_minutes} นาทีในเวลาราชการ ({s.office_hours}) และทุก "
          f"{s.after_hours_every_minutes} นาทีนอกเวลา{' พร้อมรับอีเมลใหม่ทันที (IMAP IDLE)' if s.idle else ''} "
          "(กด Ctrl-C เพื่อหยุด)\n"
          f"polling every {s.every_minutes} min in office hours, every {s.after_hours_every_minutes} min "
          f"outside{' + IMAP IDLE' if s.idle else ''} (Ctrl-C stops)", flush=True)
    try:
        def adjust(fresh) -> None:       # --every holds over a settings change read while running
            if every:
                fresh.schedule.every_minutes = every

        Daemon(cfg, clock=clock, on_report=print_report, notify=_notify, adjust=adjust).run_forever()
    finally:
        lock.release()
    print("หยุดทำงานแล้ว / stopped")
    return 0


def _actor(by: str | None, cfg) -> str:
    """Who did it: --by, else the name set once in settings (console.officer_name), else
    ผู้ใช้เครื่องนี้; never the computer's account name."""
    return " ".join((by or "").split()) or cfg.console.actor


def cmd_case(office, args: argparse.Namespace) -> int:
    from .casework import workflow
    from .present import case_lines

    if args.case_verb == "list":
        rows = office.cases(args.status)
        for c in rows:
            print(f"{c['receipt']:>10}  {workflow.label(c['status']):<24}  {c['sender_addr'] or '-':<30}  {c['subject']}")
        print(f"รวม {len(rows)} เรื่อง / {len(rows)} case(s)")
        return 0
    if args.case_verb == "show":
        for line in case_lines(office.case(args.receipt)):
            print(line)
        return 0
    if args.case_verb == "cancel":
        case = office.cancel_case(args.receipt, args.reason, _actor(args.by, office.cfg))
        print(f"{case['receipt']}: ยกเลิกแล้ว เลขนี้จะไม่ถูกใช้อีก / cancelled; the number is never reused")
        return 0
    if not (args.status or args.note or args.tell or args.late_reason or args.expected or args.title is not None):
        raise ConfigError("ระบุอย่างน้อยหนึ่งอย่าง: --status, --note, --tell, --late-reason, --expected หรือ --title",
                          "give at least one of --status, --note, --tell, --late-reason, --expected, --title")
    actor = _actor(args.by, office.cfg)
    if args.title is not None:
        from .thai import addressee

        case = office.set_title(args.receipt, args.title, actor)
        named = addressee(case["sender_name"] or "", case["sender_title"] or "") or "-"
        print(f"{case['receipt']}: หนังสือแจ้งผลและอีเมลถึงผู้ยื่นจะเรียน {named} / the letter and e-mails will address {named}")
        if not (args.status or args.note or args.tell or args.late_reason or args.expected):
            return 0
    if args.late_reason or args.expected:
        office.set_delay(args.receipt, args.late_reason, args.expected, actor)
    if not (args.status or args.note or args.tell):
        print(f"{args.receipt}: บันทึกเหตุที่ล่าช้าแล้ว / delay noted")
        return 0
    case, told = office.set_case(args.receipt, status=args.status, note=args.note, tell=args.tell, actor=actor)
    print(f"{case['receipt']}: {workflow.label(case['status'])} (โดย/by {actor})")
    print("แจ้งผู้ยื่น / citizen: " + told + (" — ส่งในรอบถัดไป / sent at the next cycle" if told == "รอส่ง" else ""))
    return 0


def cmd_privacy(office, args: argparse.Namespace) -> int:
    from .thai import thai_date

    if args.privacy_verb == "export":
        out = office.privacy_export(args.address, args.to)
        print(f"ส่งออกข้อมูลของ {args.address} แล้ว / exported: {out.folder}")
        print(f"  เรื่อง/cases {out.cases} · อีเมลที่ส่งมา/messages {out.messages} · อีเมลตอบกลับ/replies {out.replies}")
        return 0
    plan = office.privacy_due()
    years = office.cfg.retention.years
    print(f"ต้นฉบับอีเมลที่เก็บเกิน {years} ปี (ได้รับก่อน {thai_date(plan.before)}): {len(plan.files)} ไฟล์ "
          f"{plan.bytes // 1024} KB / raw messages older than {years} years")
    for path in plan.files[:50]:
        print(f"  {path}")
    if len(plan.files) > 50:
        print(f"  … และอีก {len(plan.files) - 50} ไฟล์ / and {len(plan.files) - 50} more")
    if plan.kept_open:
        print(f"คงไว้ {plan.kept_open} ฉบับ เพราะเรื่องยังไม่ยุติ / {plan.kept_open} kept: their case is still open")
    if plan.refused:
        print(f"ไม่ลบ {len(plan.refused)} รายการ เพราะที่อยู่ไฟล์ไม่อยู่ในโฟลเดอร์ archive หรือ quarantine "
              f"/ {len(plan.refused)} recorded paths refused: outside data/archive and data/quarantine")
    if not plan.files:
        return 0
    if not args.yes:
        try:
            answer = input("ลบไฟล์เหล่านี้ พิมพ์ ลบ แล้วกด Enter / type ลบ (or yes) to delete: ").strip().lower()
        except EOFError:
            answer = ""
        if answer not in ("ลบ", "yes", "y"):
            print("ไม่ได้ลบ / nothing deleted")
            return 0
    n = office.privacy_prune(plan)
    print(f"ลบแล้ว {n} ไฟล์ (ทะเบียนยังคงเดิม) / deleted {n} files (the registers keep their rows)")
    return 0


def cmd_reply(office, args: argparse.Namespace) -> int:
    if args.reply_verb == "list":
        from .kinds import kind_label, send_state

        rows = office.held(failed=True)
        for r in rows:
            why = r["hold_reason"] if r["status"] == "held" else r["last_error"]
            print(f"#{r['id']:<6} {r['receipt'] or '-':>10}  {kind_label(r['kind'])}  {send_state(r['status'])}  "
                  f"ถึง/to {r['recipient']}  เหตุผล/why: {why or '-'}")
        print(f"ระงับไว้หรือส่งไม่สำเร็จ {len(rows)} ฉบับ / {len(rows)} held or failed "
              "(mailbot reply release N: ส่ง/ส่งใหม่ในรอบถัดไป / send or send again)")
        return 0
    if args.reply_verb == "release":
        office.release(args.number, _actor(args.by, office.cfg))
        print(f"ปล่อยอีเมล #{args.number} แล้ว จะส่งในรอบถัดไป / released #{args.number}: sent at the next cycle")
    else:
        office.discard(args.number, _actor(args.by, office.cfg))
        print(f"ไม่ส่งอีเมล #{args.number} แล้ว / not sent: #{args.number}")
    return 0


def cmd_results(office, args: argparse.Namespace) -> int:
    letter = None
    if getattr(args, "results_verb", None) == "letter":
        if args.preview:
            path = office.preview_letter(args.receipt, args.outcome, args.note)
            print(f"ตัวอย่างหนังสือแจ้งผล (ยังไม่ลงนาม ยังไม่ส่ง) / preview, not signed, not sent:\n  {path}")
            return 0
        letter = (args.receipt, args.outcome, args.note, args.location, args.holder)
    run = office.results(letter=letter)
    report = run.report
    if run.letter is not None:
        print(f"สร้างหนังสือแจ้งผลแล้ว / result notice written: {run.letter}")
    for receipt, name in report.sent:
        print(f"✓ ลงนามและส่งแล้ว / signed and sent: {name} -> {receipt}")
    for receipt, name, why in report.refused:
        print(f"✗ {name} -> {receipt}: ลงนามแล้วแต่เซิร์ฟเวอร์อีเมลไม่ยอมส่ง / signed but refused by the mail server: {why}\n"
              "  ดูคำอธิบายใน results/problems / see results/problems")
    sent = {(r, n) for r, n in report.sent} | {(r, n) for r, n, _ in report.refused}
    for receipt, name, _ in report.queued:
        if (receipt, name) not in sent:
            print(f"… {name} -> {receipt}: ลงนามแล้ว รอส่งรอบถัดไป / signed; waits for the next cycle")
    for name, reason in report.problems:
        print(f"✗ {name}: ย้ายไป results/problems / moved to results/problems\n  " + reason.replace("\n", "\n  "))
    for name in report.waiting:
        print(f"… {name}: ไฟล์ยังเขียนไม่เสร็จ จะลองรอบถัดไป / still being written; next time")
    for name, why in report.stuck:
        print(f"… {name}: {why}")
    for receipt, name, when in report.already:
        print(f"= {name} -> {receipt}: ไฟล์นี้ลงนามและส่งไปแล้วเมื่อ {when} ไม่ส่งซ้ำ / already signed and sent")
    for path in report.published:
        print(f"เผยแพร่ / published: {path}")
    if not (report.queued or report.problems or report.waiting or report.already or report.stuck):
        print("ไม่มีไฟล์ใน results/outbox / nothing in results/outbox")
    if run.delivery.smtp_error is not None:
        print(run.delivery.smtp_error.plain(), file=sys.stderr)
        return EXIT_SMTP_TROUBLE
    return 1 if report.refused else 0


class _BomRotatingHandler(logging.handlers.RotatingFileHandler):
    """UTF-8 log files that start with a BOM, so Notepad shows Thai correctly."""

    def _open(self):
        stream = super()._open()
        if stream.tell() == 0:
            stream.write("\ufeff")
        return stream


def _log_to_file(cfg) -> None:
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


def cmd_report(office, args: argparse.Namespace) -> int:
    from .registers.daily import parse_day
    from .thai import BANGKOK

    try:
        day = parse_day(args.date) if args.date else office.clock().astimezone(BANGKOK).date()
    except ValueError:
        raise ConfigError(f"วันที่ไม่ถูกต้อง: {args.date} (เขียนเช่น 29/11/2569 หรือ 2569-11-29)",
                          f"bad date {args.date!r}: write e.g. 29/11/2569, 2569-11-29 or 2026-11-29") from None
    from .registers.numbering import numbering_year
    from .registers.receive import month_pdf_path

    path = office.daily_log(day, email=args.email)
    print(f"บันทึกประจำวัน / daily log: {path}")
    print(f"ฉบับพิมพ์ / printable: {path.with_suffix('.pdf')}")
    print(f"ทะเบียนรับ ฉบับพิมพ์ของเดือนนี้ / this month's receive register, printable: "
          f"{month_pdf_path(office.cfg.registers_dir, day.year, day.month)}")
    if args.year:          # the whole year: made now (it grows with the year, so only when asked)
        year = numbering_year(day, office.cfg.registers.year_reset)
        print(f"ทะเบียนรับ ฉบับพิมพ์ทั้งปี / the year's receive register, printable: "
              f"{office.receive_register_pdf(year)}")
    return 0


def cmd_backup(office) -> int:
    result = office.backup()
    print(f"สำรองข้อมูลแล้วและตรวจสอบผ่าน / backup written and verified: {result.folder}")
    print(f"  {result.files} ไฟล์/files, {result.bytes // 1024} KB" +
          (f"; ลบชุดเก่า/pruned {len(result.pruned)}" if result.pruned else ""))
    return 0


def cmd_restore(cfg, source: Path, force: bool, clock) -> int:
    from .app import restore
    from .ops.locks import instance_lock

    lock = instance_lock(cfg.data_dir)
    try:
        result = restore(cfg, source, force, clock())
    finally:
        lock.release()
    for line in result.lines():
        print(line)
    return 0


def cmd_login(cfg, args: argparse.Namespace) -> int:
    """``mailbot login``: device code (address and code to type, then wait) or the client secret."""
    import getpass

    from .mail.oauth import login

    def read_secret(prompt: str) -> str:
        if args.secret_stdin:
            return sys.stdin.readline()
        return getpass.getpass(prompt)

    _log_to_file(cfg)
    return login(cfg, out=lambda line: print(line, flush=True), read_secret=read_secret,
                 new_secret=args.new_secret or args.secret_stdin, forget=args.forget)


def cmd_secret(office, args: argparse.Namespace) -> int:
    """``mailbot secret set line``: the LINE channel access token, typed (not shown) or from
    standard input, tried with LINE and kept in the credential store; ``delete`` removes it."""
    if args.secret_verb == "delete":
        office.forget_line_token()
        print("ลบโทเค็นของ LINE แล้ว / the LINE token was removed")
        return 0
    if args.stdin:
        token = sys.stdin.readline()
    else:
        token = getpass.getpass("โทเค็นของบัญชี LINE (ไม่แสดงบนจอ) / LINE channel access token (not shown): ")
    said = office.set_line_token(token)
    print(said)
    print("✓ เก็บโทเค็นไว้ในที่เก็บรหัสลับแล้ว / the token is kept in the credential store")
    if office.cfg.alerts.line is None:
        print("ขั้นต่อไป: ใส่รหัสกลุ่ม LINE ในการตั้งค่าแจ้งเตือน แล้วสั่ง mailbot check / "
              "next: add alerts.line.to (the group id) to mailbot.yaml, then run mailbot check")
    else:
        print("ขั้นต่อไป / next: mailbot check")
    return 0


def cmd_status(office) -> int:
    from .mail import oauth
    from .present import status_lines

    url = None
    if office.cfg.console.enabled:
        from .console.server import console_url, running

        url = console_url(office.cfg) + ("" if running(office.cfg) else
                                         " (ยังไม่เปิด: mailbot run หรือ mailbot console / not running now)")
    for line in status_lines(office.status(), console_url=url):
        print(line)
    for line in oauth.status_lines(office.cfg, office.clock()):   # when an OAuth2 sign-in lapses
        print(line)
    try:
        print(f"อีเมลรอในกล่อง {office.cfg.imap.folder} / waiting in the mailbox: {office.mailbox_waiting()}")
    except MailbotError as exc:
        print(f"กล่องอีเมล: {exc.thai} / mailbox: {exc.english}")
    return 0


def cmd_console(cfg, clock, args: argparse.Namespace) -> int:
    """`mailbot console`: serve the officer's desk until Ctrl-C; `mailbot console user ...`: accounts."""
    if args.console_verb == "user":
        return cmd_console_user(cfg, clock, args)
    import threading
    import webbrowser

    from .console.server import ConsoleServer

    _log_to_file(cfg)
    server = ConsoleServer(cfg, clock, port=args.port, notify=_notify).start()
    print(f"หน้าจอเจ้าหน้าที่ / officer console: {server.url}  (กด Ctrl-C เพื่อหยุด / Ctrl-C stops)", flush=True)
    if not cfg.console.loopback:
        print(f"เครื่องอื่นในสำนักงานเปิดได้ที่พอร์ต {server.port} ของเครื่องนี้ (ต้องเข้าสู่ระบบ) / other computers: "
              f"port {server.port} of this computer (sign-in required)", flush=True)
    if not args.no_browser:
        try:
            webbrowser.open(server.url)
        except Exception:  # noqa: BLE001 - no browser: the address is printed
            pass
    stop = threading.Event()
    try:
        import signal

        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, lambda *a: stop.set())
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    print("หยุดหน้าจอเจ้าหน้าที่แล้ว / console stopped")
    return 0


def cmd_console_user(cfg, clock, args: argparse.Namespace) -> int:
    from .app import Office
    from .console import auth

    with Office.open(cfg, clock=clock) as office:
        if args.user_verb == "list":
            names = auth.officers(office.state)
            for name in names:
                print(name)
            print(f"บัญชีเจ้าหน้าที่ {len(names)} บัญชี / {len(names)} officer account(s)")
            return 0
        if args.user_verb == "remove":
            auth.remove(office.state, args.name)
            print(f"ลบบัญชี {args.name} แล้ว / removed {args.name}")
            return 0
        name = auth.check_name(args.name)
        password = getpass.getpass(f"รหัสผ่านของ {name} / password: ")
        auth.check_password(password)
        if getpass.getpass("พิมพ์รหัสผ่านอีกครั้ง / again: ") != password:
            raise ConfigError("รหัสผ่านสองครั้งไม่ตรงกัน ไม่ได้บันทึก", "the two passwords differ; nothing saved")
        auth.set_password(office.state, name, password, clock(), new=args.user_verb == "add", admin=args.admin)
    print(f"{'สร้างบัญชี' if args.user_verb == 'add' else 'เปลี่ยนรหัสผ่านของ'} {name} แล้ว / "
          f"{'added' if args.user_verb == 'add' else 'password changed for'} {name}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
