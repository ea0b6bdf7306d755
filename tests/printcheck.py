"""What a printed register must show, checked on real PDFs (ours, and LibreOffice's render of
our workbooks) with poppler: page count, page size, and on every page the whole header row on
one line, in order, above every data row. Used by tests/test_printing.py and
bench/print_registers.py; also fills a state database with realistic cases."""
from __future__ import annotations

import html
import os
import random
import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

RECEIVE_HEADERS = ["เลขทะเบียนรับ", "ที่", "ลงวันที่", "จาก", "ถึง", "เรื่อง", "การปฏิบัติ", "หมายเหตุ"]

SUBJECTS = [
    "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ {i} หมู่ที่ 3 ตำบลบ้านตัวอย่าง อำเภอเมือง",
    "ขอรับใบอนุญาตประกอบกิจการที่เป็นอันตรายต่อสุขภาพ (ร้านอาหารและจำหน่ายเครื่องดื่ม) ครั้งที่ {i}",
    "ขอความอนุเคราะห์ซ่อมแซมไฟฟ้าส่องสว่างสาธารณะบริเวณซอย {i} ถนนมิตรภาพ",
    "ร้องเรียนเหตุเดือดร้อนรำคาญจากกลิ่นและเสียงของโรงงานแปรรูปไม้ข้างบ้าน",
    "ขอคัดสำเนาทะเบียนบ้านและหนังสือรับรองการเกิด",
    "แจ้งขุดดินและถมดิน แปลงโฉนดเลขที่ {i} เนื้อที่ 2 ไร่",
    "ขอข้อมูลข่าวสารของราชการ: รายงานการประชุมสภาเทศบาล สมัยสามัญ สมัยที่ 4 ประจำปี 2569",
    "สมัครรับเบี้ยยังชีพผู้สูงอายุ",
]
SENDERS = ["สมชาย ใจดี", "นางสาวพรทิพย์ ศรีสวัสดิ์", "บริษัท ก่อสร้างไทยรุ่งเรือง จำกัด",
           "นายวีระพงษ์ เจริญสุขสมบูรณ์", "ห้างหุ้นส่วนจำกัด บ้านสวนพัฒนา", "Somchai Jaidee"]
ACTIONS = [
    "รับเรื่อง: ขออนุญาตก่อสร้าง ดัดแปลง รื้อถอน หรือต่อเติมอาคาร",
    "รับเรื่อง: ใบอนุญาตประกอบกิจการ สถานที่จำหน่ายหรือสะสมอาหาร; ส่งผลการพิจารณาแล้ว 28 พ.ย. 2569",
    "รอเจ้าหน้าที่คัดแยก (unclassified)",
    "รับเรื่อง: เรื่องร้องเรียน ร้องทุกข์; ส่งต่อกองช่าง 27 พ.ย. 2569; ยุติเรื่อง เอกสารไม่ครบ 15 ธ.ค. 2569",
    "รับเรื่อง: ขอข้อมูลข่าวสารของราชการ",
]
REMARKS = ["", "เอกสารยังไม่ครบ 27 พ.ย. 2569; แจ้งเตือนส่งเอกสาร 4 ธ.ค. 2569", "ไม่มีที่อยู่สำหรับตอบกลับ",
           "ได้รับเอกสารเพิ่ม รอเจ้าหน้าที่ตรวจ 30 พ.ย. 2569", "ซ้ำกับเรื่องเดิม"]
STATUSES = ["received", "awaiting_documents", "in_progress", "completed"]


def fill_cases(state, n: int, year_be: int = 2569, seed: int = 1) -> None:  # type: ignore[no-untyped-def]
    """``n`` registered cases with realistic Thai senders, subjects and long actions; every
    remark ends with a marker ``[rN]`` (N = the receipt's number) to find the row's last column."""
    from mailbot.store import iso

    rnd = random.Random(seed)
    start = datetime(year_be - 543, 11, 2, 2, 0, tzinfo=timezone.utc)
    with state.tx():
        for i in range(n):
            at = start + timedelta(minutes=37 * i)
            state.new_case(
                year_be, message_row=i, received_at=iso(at),
                doc_date=iso(at - timedelta(days=1)) if i % 3 == 0 else None,
                sender_name=rnd.choice(SENDERS), sender_addr=f"citizen{i + 1}@example.co.th",
                reply_to=f"citizen{i + 1}@example.co.th", subject=rnd.choice(SUBJECTS).format(i=i + 1),
                service_code="BLD", service_name="ขออนุญาตก่อสร้าง", status=rnd.choice(STATUSES),
                action=rnd.choice(ACTIONS), remark=f"{rnd.choice(REMARKS)} [r{i + 1}]".strip(),
                message_id=f"<{i}.20261102@mail.example.co.th>", attachments=rnd.randint(0, 4),
                archive=f"archive/{year_be}/11/{i:05d}-0123456789abcdef.eml", sha256=f"{i:064x}",
                reply_status="ส่งแล้ว / sent")


# ------------------------------------------------------------------------------- tools

def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


def missing_tools() -> str | None:
    """Why printing cannot be checked here (None: it can)."""
    if soffice() is None:
        return "LibreOffice (soffice) not installed"
    if shutil.which("pdftotext") is None or shutil.which("pdfinfo") is None:
        return "poppler-utils (pdftotext, pdfinfo) not installed"
    return None


# TH Sarabun New's vertical metrics, in thousandths of its em: Laksaman's (fonts-tlwg), which is
# TH Sarabun New scaled up by 150.42 %, at 1/1.5042 (ascent, descent, line gap)
TH_HHEA = (844, 457, 20)
TH_TYPO = (850, 250, 40)


def stand_in_fonts(folder: Path) -> Path:
    """A fontconfig file for LibreOffice in which "TH Sarabun New" (the workbooks' font, not free
    to ship here) is the bundled Sarabun drawn at TH Sarabun New's proportions: its units per em
    raised by 1/``printable.TH_SIZE`` (the same advance widths as TH Sarabun New's, within 2 %
    for Thai), its ascent, descent and line gap TH Sarabun New's (``TH_HHEA``, ``TH_TYPO``), so
    that LibreOffice sets, wraps and spaces its lines as it does with the real font."""
    from fontTools.ttLib import TTFont

    from mailbot.documents import FONTS
    from mailbot.documents.printable import TH_SIZE

    fonts = folder / "fonts"
    fonts.mkdir(parents=True, exist_ok=True)
    for style in ("Regular", "Bold"):
        target = fonts / f"THSarabunNew-standin-{style}.ttf"
        if target.exists():
            continue
        font = TTFont(str(FONTS / f"Sarabun-{style}.ttf"))
        upm = round(font["head"].unitsPerEm / TH_SIZE)
        font["head"].unitsPerEm = upm
        (ascent, descent, gap), (t_ascent, t_descent, t_gap) = ([round(x * upm / 1000) for x in m]
                                                              for m in (TH_HHEA, TH_TYPO))
        font["hhea"].ascent, font["hhea"].descent, font["hhea"].lineGap = ascent, -descent, gap
        os2 = font["OS/2"]
        os2.usWinAscent, os2.usWinDescent = ascent, descent
        os2.sTypoAscender, os2.sTypoDescender, os2.sTypoLineGap = t_ascent, -t_descent, t_gap
        names = font["name"]
        for record in list(names.names):
            if record.nameID in (16, 17, 21, 22):
                names.removeNames(nameID=record.nameID)
        names.setName("TH Sarabun New", 1, 3, 1, 0x409)
        names.setName("Regular" if style == "Regular" else "Bold", 2, 3, 1, 0x409)
        names.setName(f"TH Sarabun New {style}", 4, 3, 1, 0x409)
        names.setName(f"THSarabunNew-standin-{style}", 6, 3, 1, 0x409)
        font.save(str(target))
    conf = folder / "fonts.conf"
    conf.write_text(f"""<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <dir>{fonts}</dir>
  <dir>{FONTS}</dir>
  <cachedir>{folder / "cache"}</cachedir>
</fontconfig>
""", encoding="utf-8")
    return conf


def to_pdf(books: list[Path], out: Path) -> list[Path]:
    """Workbooks to PDF with LibreOffice headless, in one run; the PDFs in ``out``. The
    workbooks' TH Sarabun New is rendered by its stand-in (``stand_in_fonts``)."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    conf = stand_in_fonts(out / "fontconfig")
    subprocess.run([soffice(), "--headless", f"-env:UserInstallation=file://{out}/profile", "--convert-to", "pdf",
                    "--outdir", str(out), *map(str, books)], check=True, capture_output=True, timeout=600,
                   env={**os.environ, "FONTCONFIG_FILE": str(conf)})
    pdfs = [out / (b.stem + ".pdf") for b in books]
    for pdf in pdfs:
        assert pdf.is_file(), f"LibreOffice wrote no {pdf.name}"
    return pdfs


def info(pdf: Path) -> dict[str, str]:
    text = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def page_count(pdf: Path) -> int:
    return int(info(pdf)["Pages"])


def landscape_a4(pdf: Path) -> bool:
    w, h = (float(x) for x in re.findall(r"[\d.]+", info(pdf)["Page size"])[:2])
    return abs(w - 842) < 3 and abs(h - 595) < 3


@dataclass
class Word:
    x: float
    y: float
    text: str


_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="[\d.]+" yMax="[\d.]+">(.*?)</word>')
_PAGE = re.compile(r"<page .*?</page>", re.S)


def words_by_page(pdf: Path) -> list[list[Word]]:
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], check=True, capture_output=True,
                         text=True).stdout
    return [[Word(float(x), float(y), html.unescape(t)) for x, y, t in _WORD.findall(page)]
            for page in _PAGE.findall(out)]


def bare(text: str) -> str:
    """Text without spaces and Thai marks: poppler cuts Thai words at some marks and, where a
    mark's origin lies past the next letter's, puts it behind that letter ("ทีร่ บั" for
    "ที่รับ") when it sorts words by position; the letters' order is what is compared."""
    return "".join(ch for ch in text if not ch.isspace() and unicodedata.category(ch) != "Mn")


def lines(words: list[Word], tolerance: float = 2.0) -> list[tuple[float, str]]:
    """Words grouped into lines by their top; each line's text left to right, bare."""
    rows: list[tuple[float, list[Word]]] = []
    for w in sorted(words, key=lambda w: w.y):
        if rows and abs(rows[-1][0] - w.y) <= tolerance:
            rows[-1][1].append(w)
        else:
            rows.append((w.y, [w]))
    return [(y, bare("".join(w.text for w in sorted(ws, key=lambda w: w.x)))) for y, ws in rows]


def header_row_y(words: list[Word], headers: list[str]) -> float | None:
    """The top of the line that holds every header in order, or None."""
    pattern = re.compile(".*?".join(re.escape(bare(h)) for h in headers))
    for y, text in lines(words):
        if pattern.search(text):
            return y
    return None


def check_pages(pdf: Path, headers: list[str], first_column: re.Pattern[str] | None = None,
                last_column: re.Pattern[str] | None = None) -> list[str]:
    """Problems found: a page without the whole header row on one line, a data row above the
    header, or (given patterns for a row's first and last cells, e.g. the receipt number and a
    remark marker) a row whose first and last cells are not on the same page."""
    problems = []
    for n, words in enumerate(words_by_page(pdf), start=1):
        y = header_row_y(words, headers)
        if y is None:
            problems.append(f"page {n}: no header row {' '.join(headers)}")
            continue
        if first_column is not None and last_column is not None:
            text = " ".join(w.text for w in words)
            firsts = {int(m.group(1)) for m in first_column.finditer(text)}
            lasts = {int(m.group(1)) for m in last_column.finditer(text)}
            if firsts != lasts:
                problems.append(f"page {n}: rows split side to side: {sorted(firsts ^ lasts)[:5]}")
            above = [w.text for w in words if w.y < y - 2 and first_column.fullmatch(w.text)]
            if above:
                problems.append(f"page {n}: data above the header row: {above[:3]}")
    return problems


def is_ci() -> bool:
    return os.environ.get("CI") == "true"


# ---------------------------------------------------------------------------- units split across lines

_BOX = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="[\d.]+">(.*?)</word>')
_MONTH = (r"(?:ม\.ค\.|ก\.พ\.|มี\.ค\.|เม\.ย\.|พ\.ค\.|มิ\.ย\.|ก\.ค\.|ส\.ค\.|ก\.ย\.|ต\.ค\.|พ\.ย\.|ธ\.ค\.|"
          r"มกราคม|กุมภาพันธ์|มีนาคม|เมษายน|พฤษภาคม|มิถุนายน|กรกฎาคม|สิงหาคม|กันยายน|ตุลาคม|พฤศจิกายน|ธันวาคม)")
_DANGLING = [
    ("a date without its year", re.compile(rf"{_MONTH}$")),
    ("a year without its date", re.compile(r"^25\d\d(?![\d/])")),          # a Buddhist-Era year
    ("a ที่ without its number", re.compile(r"(?:^|\s)ทดลอง$")),
    ("a number without its label", re.compile(r"^\d+/\d{4}\)$")),
    ("a ที่'s number without its letters", re.compile(r"^\d{4}(?:\.\d+)+/\d+$")),
    ("a label without its number", re.compile(r"\((?:เลขรับ|เลข)$|เลขรับ$|^ใบอนุญาต$")),   # a licence number's label alone on its line
    ("a time without น.", re.compile(r"\d{1,2}:\d{2}$")),
]
_WHOLE_ADDRESS = re.compile(r"^<?[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.(?:com|th|org|net)>?[,;)]?$")


def split_units(pdf: Path) -> list[str]:
    """Every date, ที่, labelled receipt number or e-mail address that a PDF breaks across lines,
    read with ``pdftotext -bbox``: each cell's line is the run of words on one baseline with
    gaps narrower than a cell's padding; a run that ends in a month without its year, starts
    with a bare year, ends in a label without its number (or starts with a number without its
    label), or holds a piece of an address is a split."""
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    found: list[str] = []
    for number, page in enumerate(_PAGE.findall(out), start=1):
        lines: dict[float, list[tuple[float, float, str]]] = {}
        for x0, y0, x1, text in _BOX.findall(page):
            lines.setdefault(round(float(y0)), []).append((float(x0), float(x1), html.unescape(text)))
        for y, words in sorted(lines.items()):
            words.sort()
            runs: list[list[tuple[float, float, str]]] = []
            for w in words:
                if runs and w[0] - runs[-1][-1][1] < 5.0:
                    runs[-1].append(w)
                else:
                    runs.append([w])
            for run in runs:
                text = " ".join(w[2] for w in run)
                for why, pattern in _DANGLING:
                    if pattern.search(text):
                        found.append(f"page {number} y={y}: {why}: {text!r}")
                for w in run:
                    if "@" in w[2] and not _WHOLE_ADDRESS.match(w[2]):
                        found.append(f"page {number} y={y}: an address cut: {w[2]!r}")
    return found
