"""Letters: the official result letter (หนังสือภายนอก) as PDF (fpdf2 + HarfBuzz shaping + Sarabun).

Owns: the page layout of the Sarabun regulation's external letter — the emblem (3 cm, top
centre), ที่ (the dispatch number) on the left and the agency's name and address on the right,
the date from the centre, เรื่อง, เรียน, อ้างถึง, สิ่งที่ส่งมาด้วย, the body with indented paragraphs,
ขอแสดงความนับถือ, the signature space (an empty signature field the signer fills, see
``sign``), the signer's name in brackets and position, and the responsible unit, phone, fax and
e-mail at the foot, with a fee's Thai QR code above them at the right (its caption beside it).
Sarabun 16 pt, margins left 3 cm, right 2 cm. Pages break between whole short paragraphs (a
longer one leaves two lines on each page), the closing never stands alone, every page but the
last ends with its continuation word ("/คำ...") and the next carries its number ("- 2 -");
every digit the letter shows is in one style (``LetterParts.digits``: thai or arabic).

Thai line breaking: Thai writes no spaces between words, so lines are built here from the
newmm word segmentation, measured with the shaped font; dates, times, amounts and numbers are
never split. No zero-width characters go into the text, and each line carries its text as
/ActualText, so copy, search and ``pdftotext`` give the words as written ("ชำระ", not "ชำ ระ").
The wording comes from ``templates/result_letter.txt.j2``, which the agency may edit.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from fpdf import FPDF

from ..thai import THAI_MONTHS, THAI_MONTHS_SHORT, arabic_to_thai_digits, graphemes, thai_digits_to_arabic
from . import FONTS
from .words import words as word_tokenize

FONT = "Sarabun"
SIZE = 16                    # points: the cabinet's standard for official documents
LINE = 7.4                   # mm between baselines at 16 pt (Thai marks above and below need room)
LEFT, RIGHT, TOP, BOTTOM = 30.0, 20.0, 15.0, 15.0   # mm
FOOT_BOTTOM = 10.0           # mm: the contact lines at the foot may come this close to the edge
PAGE_W, PAGE_H = 210.0, 297.0
EMBLEM_H = 30.0              # mm
INDENT = 25.0                # mm: first line of a body paragraph
CENTRE = PAGE_W / 2          # the date and the closing start here
SIGNATURE_SPACE = 28.0       # mm between the closing and the signer's name
QR_SIZE = 30.0               # mm
QR_GAP = 1.0                 # mm between the QR code and the contact lines below it
CAPTION_W = 100.0            # mm: the QR code's caption, right-aligned beside it
CAPTION_GAP = 3.0            # mm between the caption and the QR code
PAGE_NO_GAP = 2.0            # mm below the page number of a continuation page
KEEP_WHOLE = 3               # a paragraph of up to this many lines is never split across pages
MIN_LINES = 2                # a split paragraph leaves this many lines on each page at least
EPS = 0.01                   # mm

_MONTHS = "|".join(re.escape(m) for m in (*THAI_MONTHS, *THAI_MONTHS_SHORT))
# never broken across lines: dates, times, amounts, counted days, numbers with slashes and dots
_KEEP = re.compile(
    rf"\d{{1,2}} (?:{_MONTHS}) (?:พ\.ศ\. )?\d{{4}}"          # 27 พฤศจิกายน 2569
    r"|เวลา \d{1,2}[:.]\d{2}(?: น\.)?"                       # เวลา 10:42 น.
    r"|\d[\d,]*(?:\.\d+)? (?:บาท|วัน(?:ทำการ)?|ปี|เดือน)"     # 500.00 บาท, 15 วัน
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+"                    # e-mail addresses
    r"|(?<![\u0e00-\u0e7f])[\u0e01-\u0e2e]{1,3} \d[\d.]*/\d+"     # มท 0808.2/15 (a code, not a word's end)
    r"|\d[\d.]*/\d+"                                        # 15/2569
)
_THAI = re.compile(r"[\u0e00-\u0e7f]")
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"


def tokens(text: str) -> list[str]:
    """Pieces a line may break between: words (newmm), spaces, and the units in ``_KEEP``."""
    out: list[str] = []
    pos = 0
    for m in _KEEP.finditer(text):
        out.extend(_words(text[pos:m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.extend(_words(text[pos:]))
    return [t for t in out if t]


def _words(text: str) -> list[str]:
    if not text:
        return []
    if not _THAI.search(text):
        return [t for t in re.split(r"(\s+)", text) if t]
    out: list[str] = []
    for word in word_tokenize(text):
        # the segmenter may glue a space to a word: keep spaces as their own pieces
        out.extend(t for t in re.split(r"(\s+)", word) if t)
    return out


def wrap(measure, text: str, width: float) -> list[str]:
    """Lines of at most ``width`` (as ``measure`` counts), broken between words only; a single
    word longer than a line is cut between whole characters."""
    lines: list[str] = []
    for raw in text.split("\n"):
        line = ""
        for tok in tokens(raw.strip()):
            if tok.isspace():
                if line:
                    line += " "
                continue
            candidate = line + tok
            if measure(candidate) <= width or not line.strip():
                line = candidate
            else:
                lines.append(line.rstrip())
                line = tok
            while measure(line) > width and len(graphemes(line)) > 1:   # one word wider than a line
                parts = graphemes(line)
                keep = len(parts) - 1
                while keep > 1 and measure("".join(parts[:keep])) > width:
                    keep -= 1
                lines.append("".join(parts[:keep]))
                line = "".join(parts[keep:])
        lines.append(line.rstrip())
    return lines


@dataclass
class LetterParts:
    """Everything the letter shows, already worded (the template did that)."""

    agency: str
    address: list[str]
    dispatch_no: str                       # "มท 0808.2/15"; printed after "ที่"
    date: str                              # "27 พฤศจิกายน 2569"
    subject: str
    to: str
    reference: str = ""                    # อ้างถึง
    enclosures: list[str] = field(default_factory=list)   # สิ่งที่ส่งมาด้วย
    paragraphs: list[str] = field(default_factory=list)
    closing: str = "ขอแสดงความนับถือ"
    signer_name: str = ""
    signer_position: list[str] = field(default_factory=list)
    unit: str = ""
    phone: str = ""
    fax: str = ""
    email: str = ""
    emblem: bytes | None = None            # image bytes (PNG/JPG)
    qr_png: bytes | None = None
    qr_caption: list[str] = field(default_factory=list)
    title: str = ""
    digits: str = "arabic"                 # thai | arabic: every digit the letter shows, page numbers too


@dataclass(frozen=True)
class Letter:
    pdf: bytes
    pages: int
    signature_box: tuple[float, float, float, float]   # PDF points on the last page (x0, y0, x1, y1)


class _Doc(FPDF):
    digits = "arabic"

    def header(self) -> None:          # continuation pages carry their number: "- 2 -" (or "- ๒ -")
        if self.page_no() > 1:
            self.set_font(FONT, "", SIZE)
            self.set_y(TOP)
            _line(self, LEFT, PAGE_W - LEFT - RIGHT, in_digits(f"- {self.page_no()} -", self.digits), "C")
            self.ln(PAGE_NO_GAP)


def _new_pdf(digits: str = "arabic") -> _Doc:
    pdf = _Doc(format="A4", unit="mm")
    pdf.digits = digits
    pdf.set_margins(LEFT, TOP, RIGHT)
    pdf.set_auto_page_break(True, margin=BOTTOM)
    pdf.add_font(FONT, "", str(FONTS / "Sarabun-Regular.ttf"))
    pdf.add_font(FONT, "B", str(FONTS / "Sarabun-Bold.ttf"))
    pdf.set_text_shaping(True)
    pdf.set_font(FONT, "", SIZE)
    return pdf


_NOT_DIGITS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+|https?://\S+")   # e-mail and web addresses


def in_digits(text: str, style: str) -> str:
    """The text with every digit in one style: "thai" (๑๒๓) or "arabic" (123). E-mail and web
    addresses keep theirs (they are typed as written)."""
    convert = arabic_to_thai_digits if style == "thai" else thai_digits_to_arabic
    out, pos = [], 0
    for m in _NOT_DIGITS.finditer(text):
        out += [convert(text[pos:m.start()]), m.group(0)]
        pos = m.end()
    return "".join(out) + convert(text[pos:])


def _styled(parts: LetterParts) -> LetterParts:
    """The parts with one digit style throughout (``parts.digits``)."""
    def conv(value: Any) -> Any:             # strings and lists of strings
        if isinstance(value, str):
            return in_digits(value, parts.digits)
        if isinstance(value, list):
            return [conv(v) for v in value]
        return value

    keep = {"digits", "emblem", "qr_png", "title"}
    return replace(parts, **{f.name: conv(getattr(parts, f.name)) for f in fields(parts) if f.name not in keep})


def _actual_text(text: str) -> str:
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


def _line(pdf: FPDF, x: float, width: float, text: str, align: str = "L") -> None:
    """One line of text at ``x``; its /ActualText is the text as written, so extraction and
    search see whole words whatever glyphs the shaper chose (sara am, stacked marks)."""
    if pdf.will_page_break(LINE):
        pdf.add_page()
    pdf.set_x(x)
    if text:
        pdf._out(f"/Span <</ActualText {_actual_text(text)}>> BDC")   # noqa: SLF001 - marked content
        pdf.cell(width, LINE, text, align=align, new_x="LMARGIN", new_y="NEXT")
        pdf._out("EMC")   # noqa: SLF001
    else:
        pdf.ln(LINE)


def _labelled(pdf: FPDF, label: str, text: str) -> None:
    """'เรื่อง  ...' with continuation lines under the text, not under the label."""
    text_x = LEFT + pdf.get_string_width(label + "  ")
    y = pdf.get_y()
    pdf.set_xy(LEFT, y)
    pdf._out(f"/Span <</ActualText {_actual_text(label + ' ')}>> BDC")   # noqa: SLF001
    pdf.cell(text_x - LEFT, LINE, label)
    pdf._out("EMC")   # noqa: SLF001
    pdf.set_xy(text_x, y)
    width = PAGE_W - RIGHT - text_x
    for ln in wrap(pdf.get_string_width, text, width):
        _line(pdf, text_x, width, ln)


def render(parts: LetterParts, *, signature_field: bool = True) -> Letter:
    """The letter as PDF bytes; with ``signature_field`` an empty signature field is placed in
    the signature space, for ``sign`` to fill.

    Pages break as Thai typing practice has it: a paragraph of up to three lines is never split,
    a longer one leaves at least two lines on each page; the closing and the signature never stand
    alone on the last page (at least two lines of the body go with them); every page but the last
    ends with its continuation word ("/ทั้งนี้...", คำต่อหน้า), and the pages after the first carry
    their number at the top ("- 2 -"). Every digit follows ``parts.digits``."""
    return _render(_styled(parts), signature_field)


@dataclass(frozen=True)
class _BodyLine:
    x: float
    width: float
    text: str
    after: float             # space after the line (the end of a paragraph)
    index: int               # the line's place in its paragraph
    count: int               # the paragraph's lines


def legal_break(lines: list[_BodyLine], j: int) -> bool:
    """A page may start at line ``j``: a paragraph's first line, or inside a paragraph longer than
    ``KEEP_WHOLE`` lines with at least ``MIN_LINES`` of it on each page."""
    if j <= 0 or j >= len(lines):
        return False
    line = lines[j]
    return line.index == 0 or (line.count > KEEP_WHOLE and MIN_LINES <= line.index <= line.count - MIN_LINES)


def paginate(lines: list[_BodyLine], *, first_top: float, top: float, bottom: float, last_bottom: float,
             tail: float) -> list[int]:
    """Where the body's pages start (indices into ``lines``): as many lines on a page as fit above
    ``bottom`` (the continuation word's line is below it), breaking only where ``legal_break`` allows;
    then, when the closing block (``tail`` high) does not fit after the body above ``last_bottom``, or
    the last page would hold fewer than two of the body's lines, the body's last lines (two at
    least, short paragraphs whole) go over to the last page with it."""
    forced: set[int] = set()
    for _ in range(3):
        breaks, y = _flow(lines, first_top, top, bottom, forced)
        n = len(lines)
        if y + tail <= last_bottom + EPS and (not breaks or n - breaks[-1] >= min(MIN_LINES, n)):
            return breaks
        ends = [b for b in range(1, n) if legal_break(lines, b) and n - b >= MIN_LINES] or \
            [b for b in range(1, n) if legal_break(lines, b)]
        b = max(ends, default=None)
        if b is None or b in breaks or b in forced:
            break
        forced.add(b)
    breaks, _ = _flow(lines, first_top, top, bottom, forced)
    return breaks


def _flow(lines: list[_BodyLine], first_top: float, top: float, bottom: float,
          forced: set[int]) -> tuple[list[int], float]:
    """Lines placed page by page from ``first_top``; a page starts at ``top`` where a line does not
    fit above ``bottom`` (at the last legal break before it) or at a ``forced`` break. Returns the
    breaks and where the body ends on its last page."""
    breaks: list[int] = []
    y, start, j = first_top, 0, 0
    while j < len(lines):
        if j in forced and j > start:
            breaks.append(j)
            y, start = top, j
        elif y + LINE > bottom + EPS and j > start:
            b = next((b for b in range(j, start, -1) if legal_break(lines, b)), j)
            breaks.append(b)
            y, start, j = top, b, b
            continue
        y += LINE + lines[j].after
        j += 1
    return breaks, y


def continuation_word(text: str) -> str:
    """The continuation word (คำต่อหน้า) for a page whose next page starts with ``text``: "/คำ..."."""
    words = [t for t in tokens(text) if not t.isspace()]
    return f"/{words[0]}..." if words else ""


def _render(parts: LetterParts, signature_field: bool) -> Letter:
    pdf = _new_pdf(parts.digits)
    pdf.set_title(parts.title or parts.subject)
    pdf.set_author(parts.agency)
    pdf.set_lang("th")
    pdf.add_page()
    usable = PAGE_W - LEFT - RIGHT
    # emblem: 3 cm high, top centre
    if parts.emblem:
        try:
            pdf.image(io.BytesIO(parts.emblem), x=PAGE_W / 2 - EMBLEM_H / 2, y=TOP, h=EMBLEM_H, keep_aspect_ratio=True,
                      w=EMBLEM_H)
        except Exception as exc:  # noqa: BLE001 - a broken image must not stop the letter
            from ..errors import MailbotError

            raise MailbotError("อ่านไฟล์ตราสัญลักษณ์ (letters.emblem) ไม่ได้ ใช้ไฟล์ PNG หรือ JPG",
                               f"cannot read the emblem image (letters.emblem): {type(exc).__name__}") from None
    pdf.set_y(TOP + EMBLEM_H + 2)
    # ที่ (left) and the agency's name and address (right), on the same first line
    top = pdf.get_y()
    address = [parts.agency, *parts.address]
    widest = max(pdf.get_string_width(a) for a in address)
    no_text = f"ที่ {parts.dispatch_no}".rstrip()
    # the block ends at the right margin, starts right of the centre when it can, never over ที่
    addr_x = max(LEFT + pdf.get_string_width(no_text) + 8, min(CENTRE + 15, PAGE_W - RIGHT - widest))
    addr_w = PAGE_W - RIGHT - addr_x
    pdf.set_xy(LEFT, top)
    _line(pdf, LEFT, addr_x - LEFT - 2, no_text)
    pdf.set_y(top)
    for a in address:
        for ln in wrap(pdf.get_string_width, a, addr_w):
            _line(pdf, addr_x, addr_w, ln)
    pdf.ln(LINE * 0.5)
    _line(pdf, CENTRE, PAGE_W - RIGHT - CENTRE, parts.date)
    pdf.ln(LINE * 0.3)
    _labelled(pdf, "เรื่อง", parts.subject)
    pdf.ln(LINE * 0.3)
    _labelled(pdf, "เรียน", parts.to)
    if parts.reference:
        pdf.ln(LINE * 0.3)
        _labelled(pdf, "อ้างถึง", parts.reference)
    if parts.enclosures:
        pdf.ln(LINE * 0.3)
        items = parts.enclosures if len(parts.enclosures) == 1 else [
            f"{i}. {e}" for i, e in enumerate(parts.enclosures, 1)]
        items = [in_digits(i, parts.digits) for i in items]
        label = "สิ่งที่ส่งมาด้วย"
        _labelled(pdf, label, items[0])
        for item in items[1:]:
            text_x = LEFT + pdf.get_string_width(label + "  ")
            for ln in wrap(pdf.get_string_width, item, PAGE_W - RIGHT - text_x):
                _line(pdf, text_x, PAGE_W - RIGHT - text_x, ln)
    pdf.ln(LINE * 0.4)
    # the body, line by line: the first line of each paragraph indented
    body: list[_BodyLine] = []
    for paragraph in parts.paragraphs:
        text = " ".join(paragraph.split())
        lines = wrap(pdf.get_string_width, text, usable - INDENT)
        first, rest = lines[0], text[len(lines[0]):].strip() if text.startswith(lines[0]) else " ".join(lines[1:])
        placed = [(LEFT + INDENT, usable - INDENT, first)]
        if rest:
            placed += [(LEFT, usable, ln) for ln in wrap(pdf.get_string_width, rest, usable)]
        body += [_BodyLine(x, w, t, LINE * 0.25 if i == len(placed) - 1 else 0.0, i, len(placed))
                 for i, (x, w, t) in enumerate(placed)]
    # the closing block (closing, signature space, name, position) and the foot, kept on the last page
    centre = CENTRE + pdf.get_string_width(parts.closing) / 2
    half = min(centre - LEFT, PAGE_W - RIGHT - centre)
    signer = [ln for text in ([f"({parts.signer_name})"] if parts.signer_name else []) + list(parts.signer_position)
              for ln in wrap(pdf.get_string_width, text, 2 * half)]
    closing_h = LINE * 0.3 + LINE + SIGNATURE_SPACE + LINE * len(signer)
    foot = [t for t in (parts.unit, f"โทร. {parts.phone}" if parts.phone else "",
                        f"โทรสาร {parts.fax}" if parts.fax else "",
                        f"ไปรษณีย์อิเล็กทรอนิกส์ {parts.email}" if parts.email else "") if t]
    caption = [ln for text in parts.qr_caption for ln in wrap(pdf.get_string_width, text, CAPTION_W)]
    qr_h = (max(QR_SIZE, LINE * len(caption)) + QR_GAP) if parts.qr_png else 0.0
    foot_h = LINE * len(foot) + qr_h
    foot_bottom = PAGE_H - FOOT_BOTTOM - 0.5     # a hair above the page-break line
    if foot or parts.qr_png:
        tail, last_bottom = closing_h + LINE * 0.4 + foot_h, foot_bottom
    else:
        tail, last_bottom = closing_h, PAGE_H - BOTTOM
    page_top = TOP + LINE + PAGE_NO_GAP          # below the page number
    breaks = set(paginate(body, first_top=pdf.get_y(), top=page_top, bottom=PAGE_H - BOTTOM - LINE,
                          last_bottom=last_bottom, tail=tail))
    for j, line in enumerate(body):
        if j in breaks:
            _continue(pdf, line.text)
        _line(pdf, line.x, line.width, line.text)
        pdf.ln(line.after)
    if pdf.get_y() + tail > last_bottom + EPS and body:    # only when nothing else would do
        _continue(pdf, parts.closing)
    # closing, signature space, name and position
    pdf.ln(LINE * 0.3)
    _line(pdf, CENTRE, PAGE_W - RIGHT - CENTRE, parts.closing)
    sig_top = pdf.get_y()
    pdf.set_y(sig_top + SIGNATURE_SPACE)
    for ln in signer:
        _line(pdf, centre - half, 2 * half, ln, "C")
    # the signature field: the space between the closing and the name, centred on the name
    box_w = min(2 * half, 78.0)
    box_mm = (centre - box_w / 2, sig_top + 1.0, centre + box_w / 2, sig_top + SIGNATURE_SPACE - 2.0)
    sig_page = pdf.page_no()
    # the foot: the fee's QR code at the right with its caption beside it, then the responsible unit
    # and how to reach it (left) on lines of their own below, so the two are never read as one line
    if foot or parts.qr_png:
        pdf.set_auto_page_break(True, margin=FOOT_BOTTOM)
        y = max(pdf.get_y() + LINE * 0.4, foot_bottom - foot_h)
        if parts.qr_png:
            block = qr_h - QR_GAP
            qr_x = PAGE_W - RIGHT - QR_SIZE
            pdf.image(io.BytesIO(parts.qr_png), x=qr_x, y=y + (block - QR_SIZE) / 2, w=QR_SIZE, h=QR_SIZE)
            pdf.set_y(y + (block - LINE * len(caption)) / 2)
            for ln in caption:
                _line(pdf, qr_x - CAPTION_GAP - CAPTION_W, CAPTION_W, ln, "R")
        pdf.set_y(y + qr_h)
        for text in foot:
            _line(pdf, LEFT, usable, text)
    data = bytes(pdf.output())
    pages = pdf.page_no()
    k = 72 / 25.4
    box = (box_mm[0] * k, (PAGE_H - box_mm[3]) * k, box_mm[2] * k, (PAGE_H - box_mm[1]) * k)
    if signature_field:
        data = _with_signature_field(data, box, sig_page - 1)
    return Letter(data, pages, box)


def _continue(pdf: FPDF, next_text: str) -> None:
    """The continuation word at the right, on the line below the page's last line, then the next page."""
    word = continuation_word(next_text)
    if word:
        pdf.set_y(min(pdf.get_y(), PAGE_H - BOTTOM - LINE))
        _line(pdf, LEFT, PAGE_W - LEFT - RIGHT, word, "R")
    pdf.add_page()


def _with_signature_field(data: bytes, box: tuple[float, float, float, float], page: int) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields

    from .sign import FIELD_NAME

    writer = IncrementalPdfFileWriter(io.BytesIO(data))
    # pyHanko annotates box as ints but writes each as a PDF real: the box stays in exact points
    spec = fields.SigFieldSpec(FIELD_NAME, on_page=page, box=box)  # type: ignore[arg-type]
    fields.append_signature_field(writer, spec)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def placeholder_emblem() -> bytes:
    """A plain stand-in for the emblem (the demo's; an agency sets ``letters.emblem`` to its own)."""
    from PIL import Image, ImageDraw

    size = 300
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse((20, 20, size - 20, size - 20), outline=(150, 150, 150), width=8)
    draw.ellipse((70, 70, size - 70, size - 70), outline=(190, 190, 190), width=4)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


__all__ = ["Letter", "LetterParts", "ZERO_WIDTH", "continuation_word", "in_digits", "paginate", "placeholder_emblem",
           "render", "tokens", "wrap"]
