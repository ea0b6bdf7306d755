"""One malformed PDF never blocks a cycle (issue 10, item 2).

Each malformed file is written byte by byte here (objects, xref table, trailer), so the test
knows exactly what is wrong with it. Before the fix the self-referencing page tree made the
signer loop for ever; the others crashed the cycle with KeyError/TypeError/ValueError.
"""
from __future__ import annotations

import io
import threading
import time
from datetime import datetime, timezone

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader

from mailbot.documents import limits as bounded
from mailbot.documents.certs import make_demo_pki
from mailbot.documents.sign import BadPdf, SigningHelper, check_pdf, load_signer, sign_pdf, stamp_lines, text_width
from mailbot.thai import graphemes

from .test_results import make_pdf, sent_pdf, signed_env, trust, validate  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow   # malformed PDFs in helper processes under time limits

NOW = datetime(2026, 11, 27, 3, 42, tzinfo=timezone.utc)


def build(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF from numbered object bodies, with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"

MALFORMED = {
    # name: (objects, words the Thai + English reason must contain)
    "self-referencing tree": ([CATALOG, b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"], "วนกลับ"),
    "two-node loop": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                       b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>"], "วนกลับ"),
    "kids not an array": ([CATALOG, b"<< /Type /Pages /Kids 3 0 R /Count 1 >>", PAGE], "/Kids"),
    "kids holding null": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R null] /Count 2 >>", PAGE], "/Kids"),
    "kids holding a number": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>", PAGE, b"42"],
                              "/Kids"),
    "media box of text": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                           b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 (a) 842] >>"], "MediaBox"),
    "media box a number": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                            b"<< /Type /Page /Parent 2 0 R /MediaBox 7 >>"], "MediaBox"),
    "empty media box": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                         b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 0 0] >>"], "MediaBox"),
    "huge count": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 2147483647999 >>", PAGE], "/Count"),
    "count not matching": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 9 >>", PAGE], "/Count"),
    "negative count": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count -5 >>", PAGE], "/Count"),
    "deep nesting": ([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                      b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /X " + b"[" * 5000 + b"]" * 5000
                      + b" >>"], "เสียหาย"),
}


def _thai_and_english(text: str) -> bool:
    return any("\u0e00" <= ch <= "\u0e7f" for ch in text) and any("a" <= ch <= "z" for ch in text)


def _bounded_call(fn, limit: float = 10.0):  # type: ignore[no-untyped-def]
    """fn() in a thread; the test fails (instead of hanging) when it does not return in time."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"still running after {limit} s"
    return box, time.monotonic() - started


@pytest.fixture(scope="module")
def pki(tmp_path_factory):  # type: ignore[no-untyped-def]
    return make_demo_pki(tmp_path_factory.mktemp("pki"), "เทศบาลตำบลบ้านตัวอย่าง")


def test_the_built_pdf_is_sound_when_nothing_is_wrong():
    good = build([CATALOG, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", PAGE])
    assert check_pdf(good) == 1


@pytest.mark.parametrize("name", list(MALFORMED))
def test_check_and_sign_refuse_a_malformed_pdf_quickly(name, pki):
    objects, reason = MALFORMED[name]
    data = build(objects)
    signer = load_signer(pki.p12.read_bytes(), pki.password)
    for fn in (lambda: check_pdf(data),
               lambda: sign_pdf(data, signer, agency="เทศบาล", signer_name="", when=NOW)):
        box, took = _bounded_call(fn)
        assert isinstance(box.get("error"), BadPdf), (name, box)
        message = str(box["error"])
        assert reason in message and _thai_and_english(message), message
        assert took < 5, took


def test_the_helper_kills_a_job_past_its_limit_and_the_next_file_is_signed(pki):
    data = make_pdf("slow")
    with SigningHelper(pki.p12.read_bytes(), pki.password, timeout=0.001) as helper:
        started = time.monotonic()
        with pytest.raises(BadPdf, match="เกิน") as err:
            helper.sign(data, agency="เทศบาล", signer_name="", when=NOW)
        assert time.monotonic() - started < 5
        assert "longer than" in str(err.value)
        first = helper.helper.started
        helper.timeout = 60
        signed = helper.sign(data, agency="เทศบาล", signer_name="", when=NOW)   # a fresh helper
        assert helper.helper.started == first + 1
        assert len(PdfFileReader(io.BytesIO(signed.data)).embedded_signatures) == 1
        # and a looping file is refused by the walk inside the helper, not by the clock
        loop = build(MALFORMED["self-referencing tree"][0])
        with pytest.raises(BadPdf, match="วนกลับ"):
            helper.sign(loop, agency="เทศบาล", signer_name="", when=NOW)
        assert helper.helper.started == first + 1                               # no kill needed


def test_bounded_helper_returns_results_and_raises_timeouts():
    import math

    with bounded.Helper() as helper:     # stdlib jobs: the helper imports nothing from the tests
        assert helper.run(math.factorial, 5, timeout=30) == 120
        started = time.monotonic()
        with pytest.raises(bounded.TimedOut):
            helper.run(time.sleep, 60, timeout=0.5)
        assert time.monotonic() - started < 10
        with pytest.raises(ValueError):                  # the job's own exception comes back
            helper.run(math.factorial, -1, timeout=30)
        assert helper.run(math.factorial, 3, timeout=30) == 6
        assert helper.started == 2


def test_malformed_results_reach_problems_while_good_files_are_signed(signed_env):
    env = signed_env
    from .conftest import letter

    env.deliver(letter("ร้องเรียนถนนชำรุด", sender="มาลี ศรีสุข <malee@example.com>"))
    [second] = env.cycle().handled
    good = {env.receipt: make_pdf("good one"), second.receipt: make_pdf("good two")}
    names = {}
    for receipt, data in good.items():
        names[receipt] = f"{receipt.replace('/', '-')}.pdf"
        (env.outbox / names[receipt]).write_bytes(data)
    n = env.receipt.split("/")[0]
    bad = {f"{n}-2569 {i}.pdf": build(objects) for i, (objects, _) in enumerate(MALFORMED.values())}
    for name, data in bad.items():
        (env.outbox / name).write_bytes(data)
    started = time.monotonic()
    report = env.cycle()
    took = time.monotonic() - started
    problems = env.root / "results" / "problems"
    for name in bad:
        assert (problems / name).exists(), name
        note = (problems / (name + ".txt")).read_text(encoding="utf-8")
        assert "เสียหาย" in note and "damaged" in note, note
    assert sorted(r for r, _ in report.results.sent) == sorted(good)
    _, _, data = sent_pdf(env, "malee@example.com")
    status = validate(data, trust(env))
    assert status.intact and status.valid and status.trusted
    assert list(env.outbox.iterdir()) == []
    assert took < 60, took
    print(f"cycle with {len(bad)} malformed and {len(good)} good results: {took:.1f} s")


def test_stamp_names_are_cut_between_whole_thai_characters():
    long_name = "เทศบาลตำบลบ้านตัวอย่างที่มีชื่อยาวมากเป็นพิเศษ อำเภอเมืองตัวอย่าง จังหวัดตัวอย่าง ผู้ใหญ่บ้าน"
    for width in range(120, 260, 7):
        lines = stamp_lines(agency="เทศบาล", signer_name="", certificate=long_name, when="27 พฤศจิกายน 2569",
                            width=width)
        cert = [ln for ln in lines if ln.startswith("ใบรับรอง")][0]
        assert text_width(cert) <= width - 20
        kept = cert.removeprefix("ใบรับรอง: ").removesuffix("…")
        assert long_name.startswith(kept)
        # the cut never separates a consonant from its vowel or tone marks: what follows the
        # kept part starts a new character (not a mark, not sara am)
        rest = long_name[len(kept):].lstrip()
        assert rest and rest[0] not in MARKS, (kept, rest[:3])
        assert graphemes(long_name)[: len(graphemes(kept))] == graphemes(kept)


MARKS = "\u0e31\u0e33\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e3a\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c\u0e4d"


def test_cuts_by_count_and_bytes_keep_whole_thai_characters():
    from mailbot.documents.certs import _fit
    from mailbot.thai import cut

    name = "เทศบาลตำบลบ้านตัวอย่าง ผู้ใหญ่บ้านที่ดิน"
    for n in range(1, len(name)):
        kept = cut(name, lambda t: len(t) <= n, ellipsis="")
        assert len(kept) <= n and name.startswith(kept)
        assert (name[len(kept):] or " ")[0] not in MARKS, (n, kept)      # a naive name[:n] fails here
    # a certificate's name is shortened on purpose: the agency's kind in its short form, then whole
    # words (never "…บ้านตัวอ" or "…ตัวอย่า"); only a limit below the first word cuts inside it
    words = ["ทต.", "บ้าน", "ตัวอย่าง", " ", "ผู้ใหญ่บ้าน", "ที่ดิน"]
    short = "".join(words)
    whole = {"".join(words[:i]).rstrip() for i in range(1, len(words) + 1)}
    for limit in range(3, 120):
        kept = _fit(name, limit)
        assert len(kept.encode()) <= limit, (limit, kept)
        if limit >= len(name.encode()):
            assert kept == name
        elif limit >= len(words[0].encode()):
            assert kept in whole, (limit, kept)
        else:
            assert short.startswith(kept) and (short[len(kept):] or " ")[0] not in MARKS, (limit, kept)


def test_the_demo_certificate_names_the_agency_in_whole_words(tmp_path):
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    pki = make_demo_pki(tmp_path, "เทศบาลตำบลบ้านตัวอย่าง")
    _key, leaf, _chain = pkcs12.load_key_and_certificates(pki.p12.read_bytes(), pki.password.encode())
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    org = leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    assert (cn, org) == ("DEMO ทต.บ้านตัวอย่าง", "ทต.บ้านตัวอย่าง")      # was "…บ้านตัวอ" and "…ตัวอย่า"


def test_stamp_without_signer_name_names_the_agency_once():
    lines = stamp_lines(agency="เทศบาลตำบลบ้านตัวอย่าง", signer_name="", certificate="เทศบาลตำบลบ้านตัวอย่าง",
                        when="27 พฤศจิกายน 2569 เวลา 10:42 น.", width=250)
    assert sum("เทศบาลตำบลบ้านตัวอย่าง" in ln for ln in lines) == 1
    assert not any(ln.startswith("ผู้ลงนาม") for ln in lines)
    lines = stamp_lines(agency="เทศบาล", signer_name="นายสมศักดิ์ ใจดี", certificate="DEMO เทศบาล",
                        when="27 พฤศจิกายน 2569", width=250)
    assert "ผู้ลงนาม: นายสมศักดิ์ ใจดี" in lines
