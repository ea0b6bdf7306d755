"""Signed results back to the requester (and the register and `case show` then say sent),
result letters, the public licence register.

Every signed output is validated with pyHanko's validator against the test CA (intact,
valid, trusted) and, where poppler's pdfsig is installed (CI installs it), by pdfsig with an
NSS trust DB holding the test root."""
from __future__ import annotations

import csv
import email
import io
import json
import os
import shutil
import sqlite3
import subprocess
import time
from email import policy

import openpyxl
import pytest
from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives import serialization
from fpdf import FPDF
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from mailbot.casework.results import receipt_from_filename
from mailbot.config import yaml_load
from mailbot.documents.certs import make_demo_pki

from .conftest import letter, state_db
from .test_cli import register_rows
from .tsa import LoopbackTSA

pytestmark = pytest.mark.slow   # signing and sending results

IN_CI = os.environ.get("CI") == "true"


def make_pdf(text: str = "Result", pages: int = 1, **kw) -> bytes:  # type: ignore[no-untyped-def]
    pdf = FPDF()
    for i in range(pages):
        pdf.add_page()
        pdf.set_font("helvetica", size=16)
        pdf.cell(text=f"{text} page {i + 1}")
    if kw.get("encrypt"):
        pdf.set_encryption(owner_password="owner", user_password="user")
    return bytes(pdf.output())


@pytest.fixture
def signed_env(env):  # type: ignore[no-untyped-def]
    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password,
                            "signer_name": "นายสมศักดิ์ ใจดี"},
                   results={"stable_seconds": 0})
    env.pki = pki
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12", message_id="<req-12@example.com>"))
    [h] = env.cycle().handled
    env.receipt = h.receipt
    env.outbox = env.root / "results" / "outbox"
    env.outbox.mkdir(parents=True, exist_ok=True)
    return env


def trust(env, extra=()):  # type: ignore[no-untyped-def]
    root = ax509.Certificate.load(env.pki.ca_cert.public_bytes(serialization.Encoding.DER))
    return ValidationContext(trust_roots=[root, *extra])


def validate(data: bytes, vc):  # type: ignore[no-untyped-def]
    sig = PdfFileReader(io.BytesIO(data)).embedded_signatures[0]
    return validate_pdf_signature(sig, vc)


def tamper_detected(data: bytes, pos: int, env) -> bool:  # type: ignore[no-untyped-def]
    changed = bytearray(data)
    changed[pos] ^= 0x01
    try:
        status = validate(bytes(changed), trust(env))
    except Exception:  # noqa: BLE001 - the validator refusing the file is a detection too
        return True
    return not (status.intact and status.valid)


def sent_pdf(env, to="somchai@example.com"):  # type: ignore[no-untyped-def]
    for m in reversed(env.smtp.messages):
        if to in m.rcpt_tos:
            msg = email.message_from_bytes(m.data, policy=policy.default)
            for part in msg.iter_attachments():
                if part.get_content_type() == "application/pdf":
                    return msg, part.get_filename(), part.get_content()
    raise AssertionError("no PDF sent")


def db(env):  # type: ignore[no-untyped-def]
    con = state_db(env.cfg)
    con.row_factory = sqlite3.Row
    return con


@pytest.mark.parametrize("name,receipt", [
    ("15-2569.pdf", "15/2569"), ("15_2569 อนุมัติ.pdf", "15/2569"), ("๑๕-๒๕๖๙.pdf", "15/2569"),
    ("15 2569.pdf", "15/2569"), ("เลขรับ 15-2569.pdf", "15/2569"), ("15.2569.pdf", "15/2569"),
    ("ผลการพิจารณา.pdf", None), ("15-25691.pdf", None),
])
def test_receipt_from_file_name(name, receipt):
    assert receipt_from_filename(name) == receipt


def test_dropped_pdf_is_signed_sent_in_thread_and_closes_the_case(signed_env):
    env = signed_env
    n = env.receipt.split("/")[0]
    original = make_pdf("Approval")
    (env.outbox / f"{n}_2569 อนุมัติ.pdf").write_bytes(original)
    env.cycle()
    msg, filename, data = sent_pdf(env)
    assert msg["In-Reply-To"] == "<req-12@example.com>" and "<req-12@example.com>" in msg["References"]
    assert f"[เลขรับ {env.receipt}]" in msg["Subject"]
    assert filename == f"ผลการพิจารณา เลขรับ {n}-2569.pdf"
    assert "ลงลายมือชื่ออิเล็กทรอนิกส์" in msg.get_body(("plain",)).get_content()
    status = validate(data, trust(env))
    assert status.intact and status.valid and status.trusted, status.summary()
    # a one-byte change anywhere is detected: in the signed content, or in the signature itself
    assert tamper_detected(data, 20, env)                      # inside the signed byte range
    assert tamper_detected(data, data.index(b"/Contents <") + 40, env)   # inside the CMS blob
    # the case, the files
    case = db(env).execute("SELECT * FROM cases WHERE receipt=?", (env.receipt,)).fetchone()
    assert case["status"] == "completed" and "ส่งผลการพิจารณาแล้ว" in case["action"]
    sent = env.root / "results" / "sent"
    assert (sent / f"{n}_2569 อนุมัติ.pdf").read_bytes() == original            # unsigned original kept
    assert (sent / f"{n}_2569 อนุมัติ (ลงนามแล้ว).pdf").read_bytes() == data
    assert list(env.outbox.iterdir()) == []
    row = db(env).execute("SELECT level, outcome FROM results").fetchone()
    assert tuple(row) == ("B-B", "approved")


def test_result_email_is_sent_in_the_register_and_case_show(env):
    from mailbot.documents.certs import make_demo_pki

    from .test_results import make_pdf

    pki = make_demo_pki(env.root / "certs", "เทศบาลตำบลบ้านตัวอย่าง")
    env.set_config(signing={"pkcs12": "certs/agency-demo.p12", "password": pki.password},
                   results={"stable_seconds": 0})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร"))
    [h] = env.cycle().handled
    (env.root / "results" / "outbox" / f"{h.receipt.replace('/', '-')}.pdf").write_bytes(make_pdf())
    env.cycle()
    [row] = register_rows(env)
    assert row[16].startswith("ส่งแล้ว") and "queued" not in row[16] and "รอส่ง" not in row[16]
    show = env.cli("case", "show", h.receipt).stdout
    assert "การตอบกลับ / reply      : ส่งแล้ว" in show


def test_stamp_is_on_the_last_page_with_an_embedded_thai_font(signed_env):
    env = signed_env
    n = env.receipt.split("/")[0]
    (env.outbox / f"{n}-2569.pdf").write_bytes(make_pdf(pages=3))
    env.cycle()
    _, _, data = sent_pdf(env)
    reader = PdfFileReader(io.BytesIO(data))
    sig = reader.embedded_signatures[0]
    field = sig.sig_field
    pages = reader.root["/Pages"]["/Kids"]
    assert field.raw_get("/P").idnum == pages.raw_get(len(pages) - 1).idnum      # last page
    assert b"/FontFile2" in data and b"Sarabun" in data                # embedded TrueType subset


def test_problem_files_are_set_aside_with_a_thai_note(signed_env):
    env = signed_env
    n = env.receipt.split("/")[0]
    files = {
        "999-2569.pdf": make_pdf(),                       # no such case
        "ผลการพิจารณา.pdf": make_pdf(),                   # no number in the name
        f"{n}-2569 scan.pdf": b"not a pdf at all",        # not a PDF
        f"{n}-2569 lock.pdf": make_pdf(encrypt=True),     # encrypted
        f"{n}-2569 broken.pdf": make_pdf()[:200],         # damaged
    }
    for name, data in files.items():
        (env.outbox / name).write_bytes(data)
    report = env.cycle()
    problems = env.root / "results" / "problems"
    for name in files:
        assert (problems / name).exists(), name
        note = (problems / (name + ".txt")).read_text(encoding="utf-8")
        assert note.strip() and any("\u0e00" <= ch <= "\u0e7f" for ch in note), name
    assert "ไม่พบเรื่องเลขทะเบียนรับ 999/2569" in (problems / "999-2569.pdf.txt").read_text(encoding="utf-8")
    assert "เข้ารหัส" in (problems / f"{n}-2569 lock.pdf.txt").read_text(encoding="utf-8")
    assert not [m for m in env.smtp.messages if b"application/pdf" in m.data]
    assert len([w for w in report.warnings if "result file problem" in w]) == 5


def test_requester_without_address_is_a_problem(signed_env):
    env = signed_env
    env.deliver("From: somebody\r\nSubject: ขออนุญาตก่อสร้าง\r\nMessage-ID: <noaddr@x>\r\n\r\nhi\r\n".encode())
    [h] = env.cycle().handled
    (env.outbox / f"{h.receipt.replace('/', '-')}.pdf").write_bytes(make_pdf())
    env.cycle()
    note = (env.root / "results" / "problems" / f"{h.receipt.replace('/', '-')}.pdf.txt").read_text(encoding="utf-8")
    assert "ไม่มีอีเมลสำหรับตอบกลับ" in note


def test_a_file_still_being_written_waits(signed_env, monkeypatch):
    """The file grows between mailbot's two looks at it, so it waits; once still, it goes.

    The rest of the file is written right after mailbot's first look (not after a
    fixed sleep, which a slow machine can outrun: the cycle may reach its first look
    only after the writer has finished, and then there is nothing to wait for)."""
    from mailbot.casework import results as results_mod

    env = signed_env
    env.set_config(results={"stable_seconds": 1.0})
    path = env.outbox / f"{env.receipt.replace('/', '-')}.pdf"
    data = make_pdf()
    path.write_bytes(data[:100])
    real_size = results_mod._size
    looks: list[int | None] = []

    def size_then_write_the_rest(p):  # type: ignore[no-untyped-def]
        size = real_size(p)
        looks.append(size)
        if p == path and len(looks) == 1:   # the first look: the writer is not done yet
            with path.open("ab") as fh:
                fh.write(data[100:])
        return size

    monkeypatch.setattr(results_mod, "_size", size_then_write_the_rest)
    report = env.cycle()
    assert looks == [100, len(data)]        # it looked before and after the wait
    assert report.results.waiting == [path.name] and not report.results.sent and path.exists()
    time.sleep(1.1)
    report = env.cycle()
    assert report.results.sent and not path.exists() and not report.results.waiting


def test_crash_after_commit_does_not_sign_or_send_twice(signed_env):
    env = signed_env
    (env.outbox / f"{env.receipt.replace('/', '-')}.pdf").write_bytes(make_pdf())
    r = env.cli("results", env={"MAILBOT_FAULT": "after_result_commit"})
    assert r.returncode == 86, r.stderr
    r = env.cli("results")
    assert r.returncode == 0, r.stderr
    pdf_mails = [m for m in env.smtp.messages if b"application/pdf" in m.data]
    assert len(pdf_mails) == 1
    assert db(env).execute("SELECT count(*) FROM results").fetchone()[0] == 1
    assert list(env.outbox.iterdir()) == []


def test_result_letter_is_rendered_in_thai_signed_and_sent(signed_env):
    env = signed_env
    r = env.cli("results", "letter", env.receipt, "--outcome", "approved", "--note", "ให้ติดป้ายใบอนุญาตไว้ในที่เปิดเผย")
    assert r.returncode == 0, r.stderr
    assert "ลงนามและส่งแล้ว" in r.stdout
    _, _, data = sent_pdf(env)
    status = validate(data, trust(env))
    assert status.intact and status.valid and status.trusted
    if shutil.which("pdftotext") is None:
        assert not IN_CI, "CI must install poppler-utils"
        return
    text = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True).stdout.decode()
    for phrase in ("ขอแสดงความนับถือ", "เทศบาลตำบลบ้านตัวอย่าง", env.receipt, "อนุมัติ", "ให้ติดป้ายใบอนุญาต"):
        assert phrase in text.replace("\u200b", ""), phrase


def test_licence_register_is_published_without_contact_data(signed_env):
    env = signed_env
    import yaml

    rules_path = env.root / "rules.yaml"
    rules = yaml_load(rules_path.read_text(encoding="utf-8"))
    rules["services"][0]["licence"] = True
    rules_path.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")
    r = env.cli("results", "letter", env.receipt, "--outcome", "approved", "--location", "บ้านเลขที่ 12 หมู่ 3")
    assert r.returncode == 0, r.stderr
    public = env.root / "registers" / "public"
    raw = (public / "ทะเบียนใบอนุญาต.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")                     # BOM: Excel shows Thai
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][0] == "เลขที่ใบอนุญาต" and len(rows) == 2
    assert rows[1][1] == "คุณสมชาย ใจดี" and rows[1][3] == "บ้านเลขที่ 12 หมู่ 3" and rows[1][6] == env.receipt
    everything = raw.decode("utf-8-sig") + json.dumps(json.loads((public / "ทะเบียนใบอนุญาต.ckan.json").read_text("utf-8")))
    assert "@" not in everything and "somchai" not in everything
    meta = json.loads((public / "ทะเบียนใบอนุญาต.ckan.json").read_text(encoding="utf-8"))
    assert meta["num_rows"] == 1 and {r["format"] for r in meta["resources"]} == {"CSV", "XLSX", "PDF"}
    ws = openpyxl.load_workbook(public / "ทะเบียนใบอนุญาต.xlsx").active
    assert ws["A2"].value == rows[1][0]
    assert env.cli("publish").returncode == 0


def test_timestamp_server_gives_b_t_and_an_absent_one_is_caught_up_later(signed_env):
    env = signed_env
    n = env.receipt.split("/")[0]
    with LoopbackTSA() as tsa:
        env.set_config(signing={"tsa_url": tsa.url})
        (env.outbox / f"{n}-2569.pdf").write_bytes(make_pdf("with tsa"))
        env.cycle()
        _, _, data = sent_pdf(env)
        status = validate(data, trust(env, [tsa.root]))
        assert status.intact and status.trusted and status.timestamp_validity is not None
        assert db(env).execute("SELECT level FROM results").fetchone()[0] == "B-T"
    # the TSA is gone: sign at B-B, mark the timestamp as owed
    env.deliver(letter("ร้องเรียนถนนชำรุด"))
    [h] = env.cycle().handled
    (env.outbox / f"{h.receipt.replace('/', '-')}.pdf").write_bytes(make_pdf("no tsa"))
    env.cycle()
    row = db(env).execute("SELECT * FROM results ORDER BY id DESC").fetchone()
    assert row["level"] == "B-B" and row["timestamp_pending"] == 1
    with LoopbackTSA() as tsa2:
        env.set_config(signing={"tsa_url": tsa2.url})
        env.cycle()
        row = db(env).execute("SELECT * FROM results ORDER BY id DESC").fetchone()
        assert row["timestamp_pending"] == 0 and tsa2.requests >= 1   # (pyHanko also sizes with one)
        stamped = (env.root / "results" / "sent" / row["signed"]).read_bytes()
        assert len(PdfFileReader(io.BytesIO(stamped)).embedded_signatures) == 2   # signature + doc timestamp


def test_check_reports_the_certificate_and_warns_before_expiry(signed_env):
    env = signed_env
    r = env.cli("check")
    assert "✓ ใบรับรองอิเล็กทรอนิกส์ / signing certificate" in r.stdout and "DEMO" in r.stdout
    assert "WARNING" not in r.stdout
    soon = make_demo_pki(env.root / "certs-soon", "เทศบาล", days=10)
    env.set_config(signing={"pkcs12": str(soon.p12)})
    r = env.cli("check")
    assert "หมดอายุในอีก" in r.stdout and "expires in" in r.stdout
    env.set_config(signing={"password": "wrong"})
    r = env.cli("check")
    assert "รหัสผ่านไม่ถูกต้อง" in r.stdout and "Traceback" not in r.stdout + r.stderr


def test_pdfsig_says_valid_with_the_test_root_trusted(signed_env, tmp_path):
    if not (shutil.which("pdfsig") and shutil.which("certutil")):
        assert not IN_CI, "CI must install poppler-utils and libnss3-tools"
        pytest.skip("pdfsig/certutil not installed here")
    env = signed_env
    (env.outbox / f"{env.receipt.replace('/', '-')}.pdf").write_bytes(make_pdf())
    env.cycle()
    _, _, data = sent_pdf(env)
    pdf = tmp_path / "signed.pdf"
    pdf.write_bytes(data)
    nss = tmp_path / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", "root", "-t", "CT,C,C", "-i", str(env.pki.ca_pem)],
                   check=True, capture_output=True)
    out = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(pdf)], capture_output=True, text=True).stdout
    assert "Signature is Valid." in out, out            # pdfsig exits 0 either way: read its text
    assert "Certificate is Trusted." in out, out
    tampered = bytearray(data)
    tampered[len(data) // 3] ^= 0x01
    pdf.write_bytes(bytes(tampered))
    out = subprocess.run(["pdfsig", "-nssdir", f"sql:{nss}", str(pdf)], capture_output=True, text=True).stdout
    assert "Signature is Valid." not in out


def test_an_english_senders_result_comes_english_first_and_the_letter_stays_thai(signed_env):
    """The covering e-mail follows the language the request was written in; the official letter
    (the PDF) is Thai whatever the sender wrote, as the regulation requires."""
    env = signed_env
    env.deliver(letter("Building permit application, 12 Moo 3", sender="John Smith <john@example.com>",
                       body="Dear Sir or Madam,\nplease find my building plans attached.\nRegards, John Smith"))
    [h] = env.cycle().handled
    r = env.cli("results", "letter", h.receipt, "--outcome", "approved")
    assert r.returncode == 0, r.stderr
    msg, _, data = sent_pdf(env, to="john@example.com")
    body = msg.get_body(("plain",)).get_content()
    assert body.startswith("Dear John Smith,") and body.index("Please find attached") < body.index("เรียน")
    assert f"[เลขรับ {h.receipt}]" in msg["Subject"] and msg["Subject"].startswith("Re: Building permit")
    if shutil.which("pdftotext") is None:
        assert not IN_CI, "CI must install poppler-utils"
        return
    text = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True).stdout.decode()
    for phrase in ("ขอแสดงความนับถือ", "อนุมัติ", h.receipt):
        assert phrase in text.replace("\u200b", ""), phrase
    assert "Dear" not in text
