"""Official result letters (issue 16): layout facts read back with pdftotext, signatures with
pyHanko validation, the Thai QR payment code, the receipt stamp on received documents.

The letters are also rendered to PNG and looked at by hand while developing (see README);
these tests check what text extraction and the validator can see."""
from __future__ import annotations

import email
import io
import re
import shutil
import sqlite3
import subprocess
from datetime import datetime, timezone
from email import policy
from pathlib import Path

import pytest
import yaml
from pyhanko.pdf_utils.reader import PdfFileReader

from mailbot.app import Office
from mailbot.casework.replies import Templates
from mailbot.casework.results import Results
from mailbot.config import load_rules, yaml_load
from mailbot.documents import promptpay
from mailbot.documents.letters import ZERO_WIDTH, tokens, wrap
from mailbot.documents.promptpay import fee_qr
from mailbot.documents.sign import FIELD_NAME, BadPdf
from mailbot.documents.stamp import stamp_bounded, stamp_pdf, stamped_copies, stamped_name
from mailbot.errors import MailbotError
from mailbot.thai import THAI_MONTHS

from .conftest import REPO, letter, state_db
from .test_pdf_limits import MALFORMED, build
from .test_results import IN_CI, make_pdf, sent_pdf, signed_env, trust, validate  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow   # letters signed and read back with pyHanko and poppler

NOW = datetime(2026, 11, 27, 3, 42, tzinfo=timezone.utc)        # 27 พฤศจิกายน 2569, 10:42 Bangkok
BILLER = "099400016550100"


def pdftotext(data: bytes, *args: str) -> str:
    if shutil.which("pdftotext") is None:
        assert not IN_CI, "CI must install poppler-utils"
        pytest.skip("pdftotext not installed here")
    return subprocess.run(["pdftotext", *args, "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def results_of(env):  # type: ignore[no-untyped-def]
    """Results over the workspace, as the application core opens it; close the second value."""
    office = Office.open(env.cfg, clock=env.clock)
    return Results(office.cfg, office.desk, office.clock), office


def set_letters(env, **extra):  # type: ignore[no-untyped-def]
    env.set_config(letters={
        "signer_name": "นายสมศักดิ์ ใจดี", "signer_position": "นายกเทศมนตรีตำบลบ้านตัวอย่าง",
        "address": ["99 หมู่ 1 ตำบลบ้านตัวอย่าง", "อำเภอเมือง จังหวัดตัวอย่าง 10000"],
        "unit": "สำนักปลัดเทศบาล งานธุรการ", "phone": "0 2000 0000", "email": "saraban@example.go.th", **extra})


def set_service(env, **fields):  # type: ignore[no-untyped-def]
    path = env.root / "rules.yaml"
    rules = yaml_load(path.read_text(encoding="utf-8"))
    rules["services"][0].update(fields)
    path.write_text(yaml.safe_dump(rules, allow_unicode=True, sort_keys=False), encoding="utf-8")


def db(env):  # type: ignore[no-untyped-def]
    con = state_db(env.cfg)
    con.row_factory = sqlite3.Row
    return con


def has(text: str, phrase: str) -> bool:
    """The phrase is in the extracted text, where a line may have been broken inside it
    (a Thai line break falls between words and shows as a newline)."""
    return phrase in " ".join(text.split()) or "".join(phrase.split()) in "".join(text.split())


def without_continuation(text: str) -> str:
    """The text without its continuation words ("/หนังสือ..." at the foot of a page)."""
    return re.sub(r"/\S+\.\.\.", "", text)


def dates_whole(text: str) -> list[str]:
    """Every 'day month' in the text followed by its year on the same line (none split)."""
    months = "|".join(THAI_MONTHS)
    broken = [m.group(0) for m in re.finditer(rf"\d{{1,2}}\s+(?:{months})(?! \d{{4}})", text)]
    broken += [m.group(0) for m in re.finditer(rf"\d{{1,2}}\n(?:{months})", text)]
    return broken


# ---------------------------------------------------------------------------- line breaking

def test_lines_break_between_words_and_never_inside_dates_or_amounts():
    text = ("ขอให้ท่านชำระค่าธรรมเนียม จำนวน 1,500.00 บาท ภายในวันที่ 27 พฤศจิกายน 2569 เวลา 16:30 น. "
            "ณ กองคลัง เทศบาลตำบลบ้านตัวอย่าง ตามเลขทะเบียนรับ 15/2569 และหนังสือที่ มท 0808.2/123")
    assert "27 พฤศจิกายน 2569" in tokens(text) and "1,500.00 บาท" in tokens(text)
    for width in range(8, 60):
        lines = wrap(len, text, width)
        joined = "".join(lines)
        assert joined.replace(" ", "") == text.replace(" ", "")            # nothing lost or added
        for unit in ("27 พฤศจิกายน 2569", "1,500.00 บาท", "เวลา 16:30 น.", "15/2569", "มท 0808.2/123"):
            if len(unit) <= width:
                assert any(unit in ln for ln in lines), (width, unit, lines)
        for word in ("ชำระ", "ค่าธรรมเนียม", "เทศบาล"):
            if len(word) <= width:
                assert any(word in ln for ln in lines), (width, word)
        assert not any(ch in joined for ch in ZERO_WIDTH)


def test_a_word_longer_than_the_line_is_cut_between_whole_characters():
    lines = wrap(len, "ผู้ใหญ่บ้านที่ดินน้ำท่วม", 5)
    assert all(len(ln) <= 5 or len(ln.rstrip()) <= 5 for ln in lines[:-1])
    for ln in lines[1:]:
        assert ln[:1] not in "\u0e31\u0e33\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c"


# ---------------------------------------------------------------------------- the letter

def test_letter_reads_as_an_official_letter_with_a_clean_text_layer(signed_env):
    env = signed_env
    set_letters(env)
    results, state = results_of(env)
    try:
        path = results.letter(env.receipt, "approved", "ขอให้ชำระค่าธรรมเนียมภายในวันที่ 30 พฤศจิกายน 2569",
                              NOW, dispatch_no="มท 0808.2/15")
    finally:
        state.close()
    assert path.parent == env.outbox
    data = path.read_bytes()
    text = pdftotext(data)
    for phrase in ("ที่ มท 0808.2/15", "เทศบาลตำบลบ้านตัวอย่าง", "99 หมู่ 1 ตำบลบ้านตัวอย่าง", "27 พฤศจิกายน 2569",
                   "เรื่อง", "เรียน คุณสมชาย ใจดี", "อ้างถึง", f"เลขทะเบียนรับ {env.receipt}", "ขอแสดงความนับถือ",
                   "(นายสมศักดิ์ ใจดี)", "นายกเทศมนตรีตำบลบ้านตัวอย่าง", "สำนักปลัดเทศบาล งานธุรการ",
                   "โทร. 0 2000 0000", "ไปรษณีย์อิเล็กทรอนิกส์ saraban@example.go.th", "อนุมัติตามที่ท่านขอ"):
        assert has(text, phrase), phrase
    assert "ชำระ" in text and "ชำ ระ" not in text                      # search finds the word
    assert "ตำบล" in text and "ตำ บล" not in text
    assert not [ch for ch in text if ch in ZERO_WIDTH]                 # no zero-width characters
    # no "อนุมัติ/อนุญาต" (a slash is the receipt's, the letter's number's or a continuation word's: "/คำ...")
    assert "/" not in without_continuation(text).replace(env.receipt, "").replace("0808.2/15", "")
    assert dates_whole(text) == []
    assert not [ch for ch in data.decode("latin-1") if ch == "\u200b"]
    # the layout: ที่ on the left, the address on the right of the same line; the date from the centre
    boxes = word_boxes(data)
    assert 80 < boxes["ที่ มท 0808.2/15"][0] < 90                       # 3 cm = 85 pt from the left edge
    assert boxes["99 หมู่"][0] > 297                                     # address block right of centre
    assert 290 < boxes["27 พฤศจิกายน"][0] < 310                          # date starts at the centre (105 mm)
    assert abs(boxes["ที่ มท"][1] - boxes["เทศบาลตำบลบ้านตัวอย่าง"][1]) < 3   # on the same line
    assert boxes["ตามที่ท่าน"][0] - boxes["เรื่อง"][0] > 60              # paragraphs indented (2.5 cm)
    # the empty signature field waits in the signature space
    x0, y0, x1, y1 = field_rect(data)
    closing, name = boxes["ขอแสดงความนับถือ"], boxes["(นายสมศักดิ์ ใจดี)"]
    page_h = 842
    assert closing[1] < page_h - y1 and page_h - y0 < name[1]            # between the closing and the name


def field_rect(data: bytes) -> tuple[float, ...]:
    """The rectangle of the letter's (empty or signed) signature field."""
    reader = PdfFileReader(io.BytesIO(data))
    for ref in reader.root["/AcroForm"]["/Fields"]:
        f = ref.get_object()
        if f["/T"] == FIELD_NAME:
            return tuple(float(v) for v in f["/Rect"])
    raise AssertionError("no signature field")


class word_boxes:  # noqa: N801 - reads like a function
    """Where text starts on the page: ``boxes[prefix]`` is (xMin, yMin) in points from the
    top-left of the first piece (pdftotext -bbox; one piece per line here) starting with it."""

    def __init__(self, data: bytes) -> None:
        html = pdftotext(data, "-bbox")
        pattern = r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="[\d.]+">([^<]*)</word>'
        self.pieces = [(m.group(3).strip(), float(m.group(1)), float(m.group(2))) for m in re.finditer(pattern, html)]

    def __getitem__(self, prefix: str) -> tuple[float, float]:
        for text, x, y in self.pieces:
            if text.startswith(prefix):
                return x, y
        raise KeyError(prefix)


def page_lines(data: bytes) -> list[list[tuple[str, float, float, float, float]]]:
    """Each page's lines as pdftotext -bbox reads them: (text, xMin, yMin, xMax, yMax) in points from
    the top-left, top to bottom (one piece per line: each line carries its text as /ActualText)."""
    html = pdftotext(data, "-bbox")
    word = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>')
    pages = []
    for page in html.split("<page ")[1:]:
        found = [(html_unescape(m.group(5)).strip(), *(float(m.group(i)) for i in range(1, 5)))
                 for m in word.finditer(page)]
        pages.append(sorted(found, key=lambda w: (round(w[2], 1), w[1])))
    return pages


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


MM = 72 / 25.4
INDENTED = (30 + 25) * MM          # a paragraph's first line starts here; the lines after it at 30 mm


def indented(line: tuple) -> bool:
    """A paragraph's first line (the glyphs start a little right of where the line is placed)."""
    return INDENTED - 1 < line[1] < INDENTED + 6
PAGE_NUMBER = re.compile(r"- [0-9๐-๙]+ -")
CONTINUATION = re.compile(r"/(\S+)\.\.\.")


def body_of(page: list[tuple], first: bool) -> list[tuple]:
    """The body's lines on a page: after the heading (page 1: from the first indented line) or the
    page number, before the closing and the continuation word."""
    lines = [ln for ln in page if not PAGE_NUMBER.fullmatch(ln[0]) and not CONTINUATION.fullmatch(ln[0])]
    if first:
        start = next(i for i, ln in enumerate(lines) if indented(ln))
        lines = lines[start:]
    end = next((i for i, ln in enumerate(lines) if ln[0] == "ขอแสดงความนับถือ"), len(lines))
    return lines[:end]


def check_page_breaks(data: bytes) -> int:
    """Every page break of a letter as Thai typing practice has it; returns the number of pages.

    Every page but the last ends with its continuation word ("/คำ...", at the right), the first
    word of the next page; every page after the first starts with its number; a paragraph split
    across pages is longer than three lines and leaves two lines at least on each page; the last
    page holds two lines of the body at least before the closing."""
    pages = page_lines(data)
    bodies = [body_of(page, i == 0) for i, page in enumerate(pages)]
    for i, (page, lines) in enumerate(zip(pages, bodies)):
        if i > 0:
            assert PAGE_NUMBER.fullmatch(page[0][0]), page[0]
        if i == len(pages) - 1:
            assert len(pages) == 1 or len(lines) >= 2, lines
            assert not any(CONTINUATION.fullmatch(ln[0]) for ln in page)
            break
        word = CONTINUATION.fullmatch(page[-1][0])
        assert word, f"page {i + 1} ends with {page[-1][0]!r}, no continuation word"
        assert abs(page[-1][3] - (210 - 20) * MM) < 5                   # ends at the right margin
        following = bodies[i + 1][0][0] if bodies[i + 1] else "ขอแสดงความนับถือ"
        assert following.startswith(word.group(1)), (word.group(0), following)
        nxt = bodies[i + 1]
        if nxt and not indented(nxt[0]):                        # a paragraph goes on over the page
            here = 0
            for ln in reversed(lines):                                  # its lines on this page
                here += 1
                if indented(ln):
                    break
            there = next((k for k, ln in enumerate(nxt) if indented(ln)), len(nxt))
            assert here >= 2 and there >= 2 and here + there > 3, (i, here, there)
    return len(pages)


def test_signed_letter_is_valid_and_the_stamp_fills_the_signature_space(signed_env):
    env = signed_env
    set_letters(env)
    results, state = results_of(env)
    try:
        path = results.letter(env.receipt, "approved", "", NOW, dispatch_no="มท 0808.2/16")
        rect_before = list(field_rect(path.read_bytes()))
    finally:
        state.close()
    env.cycle()
    _, _, data = sent_pdf(env)
    status = validate(data, trust(env))
    assert status.intact and status.valid and status.trusted, status.summary()
    sig = PdfFileReader(io.BytesIO(data)).embedded_signatures[0]
    assert [float(v) for v in sig.sig_field["/Rect"]] == rect_before      # signed in the letter's own field
    appearance = sig.sig_field["/AP"]["/N"].data
    assert b"1 1 1 rg" not in appearance and b" re f" not in appearance  # no opaque box painted
    assert "ขอแสดงความนับถือ" in pdftotext(data)


def test_rejection_states_reason_and_where_and_when_to_appeal(signed_env):
    env = signed_env
    set_letters(env, appeal_to="นายอำเภอเมืองตัวอย่าง", appeal_days=30)
    results, state = results_of(env)
    try:
        with pytest.raises(MailbotError) as err:
            results.letter(env.receipt, "rejected", "", NOW)
        assert "เหตุผล" in err.value.thai and "reason" in err.value.english
        path = results.letter(env.receipt, "rejected", "แบบแปลนอาคารไม่เป็นไปตามกฎกระทรวง", NOW,
                              dispatch_no="มท 0808.2/17")
    finally:
        state.close()
    text = pdftotext(path.read_bytes())
    flat = " ".join(text.split())
    for phrase in ("ไม่อาจอนุมัติตามที่ท่านขอได้ เนื่องจากแบบแปลนอาคารไม่เป็นไปตามกฎกระทรวง", "อุทธรณ์",
                   "นายอำเภอเมืองตัวอย่าง", "ภายใน 30 วัน"):
        assert has(text, phrase), phrase
    assert "/" not in without_continuation(flat).replace(env.receipt, "").replace("0808.2/17", "")


def test_licence_service_letter_says_permit_and_holder_reaches_the_register(signed_env):
    env = signed_env
    set_service(env, licence=True)
    results, state = results_of(env)
    try:
        path = results.letter(env.receipt, "approved", "", NOW, location="บ้านเลขที่ 12", holder="บริษัท ตัวอย่าง จำกัด")
    finally:
        state.close()
    assert has(pdftotext(path.read_bytes()), "อนุญาตตามที่ท่านขอ")
    env.cycle()
    row = db(env).execute("SELECT holder, location FROM licences").fetchone()
    assert tuple(row) == ("บริษัท ตัวอย่าง จำกัด", "บ้านเลขที่ 12")


def test_preview_writes_the_letter_without_signing_sending_or_recording(signed_env):
    env = signed_env
    results, state = results_of(env)
    try:
        path = results.letter(env.receipt, "approved", "", NOW, preview=True, holder="ใครก็ได้", location="ที่ไหน")
    finally:
        state.close()
    assert path.exists() and path.parent.name == "preview" and "ตัวอย่าง" in path.name
    assert list(env.outbox.iterdir()) == []
    data = path.read_bytes()
    reader = PdfFileReader(io.BytesIO(data))
    assert reader.embedded_signatures == [] and "/AcroForm" not in reader.root
    assert "ขอแสดงความนับถือ" in pdftotext(data)
    before = len(env.smtp.messages)
    env.cycle()
    assert len(env.smtp.messages) == before                      # the cycle found nothing to sign or send
    assert db(env).execute("SELECT count(*) FROM results").fetchone()[0] == 0
    case = db(env).execute("SELECT * FROM cases WHERE receipt=?", (env.receipt,)).fetchone()
    assert case["location"] in (None, "") and case["status"] != "completed"


def test_an_old_workspace_template_still_renders(signed_env):
    env = signed_env
    old = Path(__file__).parent / "fixtures" / "round1" / "templates" / "result_letter.txt.j2"
    shutil.copyfile(old, env.root / "templates" / "result_letter.txt.j2")
    results, state = results_of(env)
    try:
        path = results.letter(env.receipt, "approved", "", NOW, preview=True)
    finally:
        state.close()
    text = pdftotext(path.read_bytes())
    assert has(text, "ขอแสดงความนับถือ") and has(text, "แจ้งผลการพิจารณาคำขอ")


def test_a_workspace_with_the_previous_release_template_no_longer_doubles_the_word(signed_env):
    # offices keep the letter template `mailbot init` copied for them; the previous one wrote
    # "คำขอ{{ service }}", which doubled ขอ for a name that starts with it
    env = signed_env
    old = Path(__file__).parent / "fixtures" / "round2" / "templates" / "result_letter.txt.j2"
    assert "คำขอ{{ service }}" in old.read_text(encoding="utf-8")
    shutil.copyfile(old, env.root / "templates" / "result_letter.txt.j2")
    results, state = results_of(env)
    try:
        path = results.letter(env.receipt, "approved", "", NOW, preview=True)
    finally:
        state.close()
    text = " ".join(pdftotext(path.read_bytes()).split())
    assert "ขอขอ" not in text.replace(" ", "")
    assert has(text, "แจ้งผลการพิจารณาคำขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร")
    assert has(text, "ตามที่ท่านได้ยื่นคำขออนุญาตก่อสร้าง")


def test_old_config_without_letters_section_loads(signed_env):
    cfg = signed_env.cfg
    assert cfg.letters.emblem is None and cfg.letters.appeal_days == 15
    assert load_rules(cfg.rules_path).services[0].fee is None


def test_emblem_from_config_is_drawn_and_a_missing_one_is_a_plain_error(signed_env):
    env = signed_env
    from mailbot.documents.letters import placeholder_emblem

    (env.root / "emblem.png").write_bytes(placeholder_emblem())
    set_letters(env, emblem="emblem.png")
    results, state = results_of(env)
    try:
        path = results.letter(env.receipt, "approved", "", NOW, preview=True)
        assert b"/Subtype /Image" in path.read_bytes()
        set_letters(env, emblem="missing.png")
        results2, state2 = results_of(env)
        try:
            with pytest.raises(MailbotError, match="emblem"):
                results2.letter(env.receipt, "approved", "", NOW, preview=True)
        finally:
            state2.close()
    finally:
        state.close()


# ---------------------------------------------------------------------------- issue 26

@pytest.mark.parametrize("digits", ["thai", "arabic"])
def test_the_two_page_fee_letter(signed_env, digits):
    """The letter of the issue: a licence fee's approval, two pages. No blank page end in the middle
    of a short paragraph, the continuation word at the foot of page 1, one digit style, and the
    QR code's caption apart from the contact lines at the foot."""
    env = signed_env
    set_letters(env, digits=digits)
    set_service(env, licence=True, fee={"amount": 1500, "biller_id": BILLER, "name": "ค่าธรรมเนียมใบอนุญาต"})
    results, state = results_of(env)
    try:
        data = results.letter(env.receipt, "approved", "", NOW).read_bytes()
    finally:
        state.close()
    assert check_page_breaks(data) == 2
    pages = page_lines(data)
    assert pages[1][0][0] == ("- ๒ -" if digits == "thai" else "- 2 -")
    # one digit style throughout (e-mail addresses are written as typed)
    text = re.sub(r"\S+@\S+", "", pdftotext(data))
    other, own = ("[0-9]", "[๐-๙]") if digits == "thai" else ("[๐-๙]", "[0-9]")
    assert not re.search(other, text), re.findall(rf".{{0,20}}{other}.{{0,20}}", text)
    assert len(re.findall(own, text)) > 20
    # the caption beside the QR code and the contact lines are separate lines, one above the other
    caption = [ln for ln in pages[1] if "สแกนเพื่อชำระ" in ln[0] or ln[0].startswith("เลขอ้างอิง")
               or ln[0].endswith("บาท") and ln[1] > 250]
    foot = [ln for ln in pages[1] if ln[0].startswith(("สำนักปลัดเทศบาล", "โทร.", "ไปรษณีย์อิเล็กทรอนิกส์"))]
    assert len(caption) == 3 and len(foot) == 3, (caption, foot)
    assert max(ln[4] for ln in caption) <= min(ln[2] for ln in foot)
    for line in pdftotext(data).splitlines():
        assert not ("สแกนเพื่อชำระ" in line and "สำนักปลัด" in line), line
    assert "ขอขอ" not in "".join(text.split())
    # signed and sent: the stamp in the signature space writes its date in the letter's digits too
    env.cycle()
    _, _, signed = sent_pdf(env)
    signed_text = re.sub(r"\S+@\S+", "", pdftotext(signed))
    assert "ลงนามด้วยลายมือชื่ออิเล็กทรอนิกส์" in signed_text
    assert not re.search(other, signed_text), re.findall(rf".{{0,20}}{other}.{{0,20}}", signed_text)


def test_letters_for_every_starter_service_say_the_request_once(signed_env, tmp_path):
    """Every starter service (rules.yaml and a workspace `mailbot init` writes), every outcome:
    no "ขอขอ" in เรื่อง, อ้างถึง or the body, and the letter shows the words it was given."""
    from mailbot.starter import init

    env = signed_env
    init(tmp_path / "fresh", today=NOW.date())
    services = load_rules(REPO / "rules.yaml").services + load_rules(tmp_path / "fresh" / "rules.yaml").services
    assert len(services) >= 14 and any(s.name.startswith("ขอ") for s in services)
    results, state = results_of(env)
    try:
        for service in services:
            with db(env) as con:
                con.execute("UPDATE cases SET service_code=?, service_name=? WHERE receipt=?",
                            (service.code, service.name, env.receipt))
            case = state.state.case(env.receipt)
            for outcome in ("approved", "rejected", "incomplete"):
                words = results.letter_words(case, outcome, "เหตุผลตัวอย่าง")
                said = "".join(" ".join([words.subject, words.reference, *words.paragraphs]).split())
                assert "ขอขอ" not in said and "เรื่องเรื่อง" not in said, (service.name, outcome, said[:200])
                assert service.name.replace(" ", "")[2:] in said
            data = results.letter(env.receipt, "approved", "", NOW, preview=True).read_bytes()
            text = pdftotext(data)
            assert "ขอขอ" not in "".join(text.split()), service.name
            assert has(text, results.letter_words(case, "approved", "").subject)
    finally:
        state.close()


@pytest.mark.parametrize("licence", [True, False])
def test_one_word_in_the_letter_the_mail_the_file_and_the_dispatch_register(signed_env, licence):
    env = signed_env
    verb, other = ("อนุญาต", "อนุมัติ") if licence else ("อนุมัติ", "อนุญาต")
    set_letters(env)
    set_service(env, licence=licence)
    results, state = results_of(env)
    try:
        path = results.letter(env.receipt, "approved", "", NOW)
    finally:
        state.close()
    assert path.name == f"{env.receipt.replace('/', '-')} {verb}.pdf"
    text = pdftotext(path.read_bytes())
    # (the service's own name says ขออนุญาต: the decision is what must agree)
    assert has(text, f"{verb}ตามที่ท่านขอ") and not has(text, f"{other}ตามที่ท่านขอ")
    env.cycle()
    msg, _, _ = sent_pdf(env)
    body = msg.get_body(("plain",)).get_content()
    assert f"ผลการพิจารณา: {verb}ตามคำขอ" in body and f"{other}ตามคำขอ" not in body
    [row] = db(env).execute("SELECT subject, recipient_name FROM dispatches WHERE receipt=?", (env.receipt,)).fetchall()
    assert has(text, f"เรื่อง {row['subject']}") and row["subject"].startswith("แจ้งผลการพิจารณาคำขออนุญาต")
    assert row["recipient_name"] == "คุณสมชาย ใจดี" and has(text, "เรียน คุณสมชาย ใจดี")


def test_the_requesters_title_reaches_the_letter_and_the_licence_register(signed_env):
    env = signed_env
    set_service(env, licence=True)
    r = env.cli("case", "set", env.receipt, "--title", "ร.ต.อ.", "--by", "สมศรี")
    assert r.returncode == 0, r.stderr
    assert "ร.ต.อ.สมชาย ใจดี" in r.stdout
    assert "ร.ต.อ.สมชาย ใจดี" in env.cli("case", "show", env.receipt).stdout
    results, state = results_of(env)
    try:
        path = results.letter(env.receipt, "approved", "", NOW, location="บ้านเลขที่ 12")
    finally:
        state.close()
    assert has(pdftotext(path.read_bytes()), "เรียน ร.ต.อ.สมชาย ใจดี")
    env.cycle()
    assert db(env).execute("SELECT holder FROM licences").fetchone()[0] == "ร.ต.อ.สมชาย ใจดี"
    assert db(env).execute("SELECT recipient_name FROM dispatches").fetchone()[0] == "ร.ต.อ.สมชาย ใจดี"
    r = env.cli("case", "set", env.receipt, "--title", "<นาย>")
    assert r.returncode != 0 and "คำนำหน้าชื่อไม่ถูกต้อง" in r.stdout + r.stderr


# ---------------------------------------------------------------------------- fees

def test_promptpay_bill_payment_matches_a_published_reference_payload():
    # Reference: pheerathach/promptpay, src/test/java/com/github/pheerathach/ThaiQRPromptPayTest.java,
    # testBillPaymentDynamicQRWithRef1AndRef2AndAmount_thenSuccess and ..._WithRef1AndAmount_thenSuccess
    # (biller 0000000000001, ref1 6300002, ref2 121214564541, 100.35 baht; CRC BD9D and 408E).
    assert promptpay.bill_payment("0000000000001", "6300002", amount="100.35", ref2="121214564541") == (
        "000201" "010212" "30640016A00000067701011201130000000000001" "02076300002" "0312121214564541"
        "5303764" "5406100.35" "5802TH" "6304BD9D")
    assert promptpay.bill_payment("0000000000001", "6300002", amount="100.35") == (
        "000201" "010212" "30480016A00000067701011201130000000000001" "02076300002"
        "5303764" "5406100.35" "5802TH" "6304408E")
    # CRC-16/CCITT-FALSE check value of "123456789"
    assert promptpay.crc16("123456789") == "29B1"


def test_promptpay_payload_for_a_receipt_parses_back_and_refuses_bad_values():
    payload = promptpay.bill_payment(BILLER, promptpay.receipt_reference("15/2569"), amount=500)
    tags = promptpay.parse(payload)
    assert tags["01"] == "12" and tags["53"] == "764" and tags["54"] == "500.00" and tags["58"] == "TH"
    assert tags["30"] == "0016A000000677010112" + "0115" + BILLER + "0206152569"
    with pytest.raises(promptpay.PromptPayError):
        promptpay.parse(payload[:-1] + ("0" if payload[-1] != "0" else "1"))
    for bad in (dict(biller_id="123", ref1="1"), dict(biller_id=BILLER, ref1="ก1"),
                dict(biller_id=BILLER, ref1="1", amount=0), dict(biller_id=BILLER, ref1="A" * 21)):
        with pytest.raises(promptpay.PromptPayError):
            promptpay.bill_payment(**bad)
    png = promptpay.qr_png(payload)
    assert png.startswith(b"\x89PNG")


def test_a_licence_fee_gets_its_qr_code_in_the_approval_letter_only(signed_env):
    env = signed_env
    set_service(env, fee={"amount": 1500, "biller_id": BILLER, "name": "ค่าธรรมเนียมใบอนุญาต"})
    rules = load_rules(env.cfg.rules_path)
    fee = fee_qr(rules.services[0], env.receipt)
    assert fee is not None and fee.attachment[1].startswith(b"\x89PNG") and fee.attachment[0].endswith(".png")
    assert promptpay.parse(fee.payload)["54"] == "1500.00"
    assert fee.context["ref1"] == env.receipt.replace("/", "")
    # the receipt e-mail's wording of a fee asked at intake (starter template, the lead passes fee=fee.context)
    text = Templates(env.root / "templates").env.get_template("_fee.txt.j2").render(fee=fee.context)
    assert "1,500.00 บาท" in text and fee.context["ref1"] in text and fee.attachment[0] in text
    results, state = results_of(env)
    try:
        approved = results.letter(env.receipt, "approved", "", NOW, preview=True).read_bytes()
        rejected = results.letter(env.receipt, "rejected", "แบบแปลนไม่ถูกต้อง", NOW, preview=True).read_bytes()
        set_service(env, fee={"amount": 1500, "biller_id": BILLER, "name": "ค่าธรรมเนียมใบอนุญาต", "when": "receipt"})
        results2, state2 = results_of(env)
        try:
            asked_before = results2.letter(env.receipt, "approved", "", NOW, preview=True).read_bytes()
        finally:
            state2.close()
    finally:
        state.close()
    text = pdftotext(approved)
    assert has(text, "ชำระค่าธรรมเนียมใบอนุญาต จำนวน 1,500.00 บาท") and has(text, "สิ่งที่ส่งมาด้วย")
    assert has(text, f"เลขอ้างอิง {fee.context['ref1']}")
    assert b"/Subtype /Image" in approved
    for data in (rejected, asked_before):        # nothing to pay: refused, or asked with the receipt already
        assert b"/Subtype /Image" not in data and "ชำระค่าธรรมเนียม" not in " ".join(pdftotext(data).split())


def test_a_licence_fee_is_named_but_not_asked_at_intake(env):
    # the issue: a request with documents missing was asked for the 1,500-baht licence fee
    set_service(env, fee={"amount": 1500, "biller_id": BILLER, "name": "ค่าธรรมเนียมใบอนุญาต"})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="payer@example.com"))
    [h] = env.cycle().handled
    [mail] = [email.message_from_bytes(m.data, policy=policy.default) for m in env.smtp.messages
              if m.rcpt_tos == ["payer@example.com"]]
    assert not [p for p in mail.iter_attachments() if p.get_content_type() == "image/png"]
    body = mail.get_body(("plain",)).get_content()
    assert "ยังไม่ครบ" in body                                      # the documents are still missing
    assert "ค่าธรรมเนียมใบอนุญาต 1,500.00 บาท ชำระเมื่อได้รับอนุญาตแล้วเท่านั้น" in body
    assert "เลขอ้างอิง" not in body and "สแกน" not in body
    status = db(env).execute("SELECT status FROM cases WHERE receipt=?", (h.receipt,)).fetchone()[0]
    assert status == "awaiting_documents"


# ---------------------------------------------------------------------------- receipt stamp

def test_receipt_stamp_on_page_one_keeps_the_original_bytes_in_front():
    original = make_pdf("Building plan", pages=2)
    stamped = stamp_bounded(original, agency="เทศบาลตำบลบ้านตัวอย่าง", receipt="15/2569", when=NOW)
    assert stamped.startswith(original) and len(stamped) > len(original)   # an incremental update
    page1 = pdftotext(stamped, "-f", "1", "-l", "1")
    for phrase in ("เลขรับ 15/2569", "วันที่ 27 พ.ย. 2569", "เวลา 10:42 น.", "เทศบาลตำบลบ้านตัวอย่าง"):
        assert phrase in page1, phrase
    assert "เลขรับ" not in pdftotext(stamped, "-f", "2", "-l", "2")
    # the stamp is in the top-right corner
    boxes = word_boxes(stamped)
    assert boxes["เลขรับ"][0] > 595 / 2 and boxes["เลขรับ"][1] < 842 / 5
    assert stamped_name("แบบแปลน.pdf") == "แบบแปลน (ตรารับ).pdf"


@pytest.mark.parametrize("name", ["self-referencing tree", "kids holding null", "huge count", "media box of text"])
def test_receipt_stamp_refuses_malformed_files_quickly(name):
    data = build(MALFORMED[name][0])
    with pytest.raises(BadPdf):
        stamp_pdf(data, agency="เทศบาล", receipt="1/2569", when=NOW)
    with pytest.raises(BadPdf) as err:
        stamp_bounded(data, agency="เทศบาล", receipt="1/2569", when=NOW, timeout=30)
    assert "damaged" in str(err.value) and "เสียหาย" in str(err.value)
    with pytest.raises(BadPdf, match="เกิน"):
        stamp_bounded(make_pdf(), agency="เทศบาล", receipt="1/2569", when=NOW, timeout=0.001)


def test_stamped_copies_for_the_forward_keep_other_files_and_unstampable_pdfs():
    good, broken = make_pdf("plan"), build(MALFORMED["self-referencing tree"][0])
    files = [("แบบแปลน.pdf", good), ("รูปถ่าย.jpg", b"\xff\xd8\xff photo"), ("เสีย.pdf", broken)]
    out, problems = stamped_copies(files, agency="เทศบาล", receipt="15/2569", when=NOW)
    names = [n for n, _ in out]
    assert names == ["แบบแปลน (ตรารับ).pdf", "รูปถ่าย.jpg", "เสีย.pdf"]
    assert out[0][1].startswith(good) and "เลขรับ 15/2569" in pdftotext(out[0][1])
    assert out[1][1] == files[1][1] and out[2][1] == broken
    assert [n for n, _ in problems] == ["เสีย.pdf"] and "วนกลับ" in problems[0][1]


def test_a_long_letter_never_leaves_the_closing_alone_on_its_page(signed_env):
    env = signed_env
    set_letters(env)
    results, state = results_of(env)
    try:
        for words in range(20, 140, 6):      # notes of growing length: the page break moves through the body
            note = " ".join(["ให้ติดป้ายใบอนุญาตไว้ในที่เปิดเผยเห็นได้ง่าย"] * (words // 6))
            path = results.letter(env.receipt, "approved", note, NOW, preview=True)
            data = path.read_bytes()
            pages = PdfFileReader(io.BytesIO(data)).root["/Pages"]["/Count"]
            last = pdftotext(data, "-f", str(pages), "-l", str(pages))
            before = last.split("ขอแสดงความนับถือ")[0]
            body_lines = [ln for ln in before.splitlines() if ln.strip() and not re.fullmatch(r"\s*- \S+ -\s*", ln)]
            assert pages == 1 or len(body_lines) >= 2, (words, before)
            assert check_page_breaks(data) == pages
    finally:
        state.close()


def test_an_application_fee_qr_is_attached_to_the_receipt_email_end_to_end(env):
    # a fee that is not a licence fee is asked at intake (fee.when unset: the receipt)
    set_service(env, fee={"amount": 1500, "biller_id": BILLER, "name": "ค่าธรรมเนียมคำขอ"})
    env.deliver(letter("ขออนุญาตก่อสร้างอาคาร", sender="payer@example.com"))
    [h] = env.cycle().handled
    [mail] = [email.message_from_bytes(m.data, policy=policy.default) for m in env.smtp.messages
              if m.rcpt_tos == ["payer@example.com"]]
    [png] = [p for p in mail.iter_attachments() if p.get_content_type() == "image/png"]
    assert png.get_filename().endswith(".png") and png.get_content().startswith(b"\x89PNG")
    body = mail.get_body(("plain",)).get_content()
    ref1 = h.receipt.replace("/", "")
    assert "1,500.00 บาท" in body and ref1 in body


def test_results_letter_preview_from_the_command_line(signed_env):
    env = signed_env
    r = env.cli("results", "letter", env.receipt, "--outcome", "approved", "--preview")
    assert r.returncode == 0, r.stderr
    assert "ยังไม่ลงนาม" in r.stdout and "preview" in r.stdout
    path = Path(r.stdout.strip().splitlines()[-1].strip())
    assert path.exists() and "ขอแสดงความนับถือ" in pdftotext(path.read_bytes())
    assert list(env.outbox.iterdir()) == [] and len(env.smtp.messages) == 1     # only the first receipt
