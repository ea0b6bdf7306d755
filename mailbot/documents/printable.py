"""Printable: registers and logs as paper, in a PDF and in a workbook's print set-up.

Owns: a table's printed form — A4 landscape, the register's name, the agency and the period as
the title, the header row repeated on every page, page numbers ("หน้า 3/12"), wrapped cells and
rows never split across pages — rendered with fpdf2 and the bundled Sarabun; Thai line
breaking by word (newmm dictionary segmenter, widths measured with the shaped font; no
zero-width spaces are put into the text, so text copied or searched in the PDF is the
register's own); and the same set-up for an openpyxl worksheet (landscape A4, fit to the page
width, print titles, print area on the printed columns, header and footer, grid lines).

Pure apart from fpdf2: a :class:`Table` in, PDF bytes out; callers write the files.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import TYPE_CHECKING


from ..thai import graphemes
from . import FONTS

if TYPE_CHECKING:
    from .thaipdf import Pdf

FONT = "Sarabun"
WORKBOOK_FONT = "TH Sarabun New"    # the government's font; the bundled Sarabun stands in


@dataclass(frozen=True)
class Column:
    """One column of a register: its header, its width in the workbook (Excel character units),
    whether long text wraps there, and how it prints."""

    header: str
    width: float
    wrap: bool = False
    printed: bool = True            # in the workbook's print area and in the PDF
    weight: float | None = None     # relative width in the PDF (default: ``width``)
    align: str = "L"                # L, C or R in the PDF
    pdf_header: str | None = None   # a shorter header for the PDF (default: ``header``)

    @property
    def pdf_weight(self) -> float:
        return self.weight if self.weight is not None else self.width


@dataclass
class Table:
    """What is printed: ``title`` (the register's name), ``agency`` and ``period`` head every page."""

    title: str
    agency: str
    period: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[object]]
    note: str = ""                  # small print under the title, e.g. when the data was taken
    font_size: float = 9.5          # the smallest; up to max_font_size when the pages are the workbook's
    max_font_size: float = 12.0
    fit: bool = True                # move width to the columns whose text makes rows tall
    starts: Sequence[int] | None = None     # body rows that begin a page (the workbook's page breaks)
    extra: list[Callable[[Pdf], None]] = field(default_factory=list)    # pages drawn after the table


# ---------------------------------------------------------------------------------------------
# Thai line breaking (pure)

_THAI = re.compile(r"[\u0e00-\u0e7f]")
_SPACE = re.compile(r"(\s+)")
_LEADING_VOWELS = "\u0e40\u0e41\u0e42\u0e43\u0e44"
_OPENING = set("([{<\"'“‘«")
_CLOSING = set(")]}>\"'”’»,.:;!?%ๆฯ")
_BREAK_AFTER = set("@./-_:;,")

# what is read as one unit and never broken across lines (its spaces joined while wrapping):
# dates ("1 พ.ย. 2569", "27 พฤศจิกายน 2569", "พ.ย. 2569"), times ("10:30 น."), a number with
# its label ("เลขรับ 1/2569", "ที่ 12"), a document's ที่ ("ทดลอง 0000.1/1", "ชม 0023.1/ว 45")
_D = r"[0-9๐-๙]"
_MONTHS = (r"ม\.ค\.|ก\.พ\.|มี\.ค\.|เม\.ย\.|พ\.ค\.|มิ\.ย\.|ก\.ค\.|ส\.ค\.|ก\.ย\.|ต\.ค\.|พ\.ย\.|ธ\.ค\.|"
           "มกราคม|กุมภาพันธ์|มีนาคม|เมษายน|พฤษภาคม|มิถุนายน|กรกฎาคม|สิงหาคม|กันยายน|ตุลาคม|พฤศจิกายน|ธันวาคม")
_GLUE = re.compile(
    rf"(?:{_D}{{1,2}}\s+)?(?:{_MONTHS})\s*{_D}{{2,4}}"                     # a date
    rf"|{_D}{{1,2}}[:.]{_D}{{2}}\s*น\."                                      # a time
    rf"|(?:เลขทะเบียนรับ|เลขทะเบียนส่ง|เลขรับ|เลขส่ง|เลขที่|ใบอนุญาต|ที่|หมู่ที่|หมู่|ครั้งที่)\s+{_D}+(?:[/.]{_D}+)*"
    rf"(?!{_D}|\s*(?:{_MONTHS}))"                                            # a number with its label
    rf"|[\u0e01-\u0e2e]{{1,8}}\.?\s*{_D}{{4}}(?:\.{_D}+)*/(?:ว\s*)?{_D}+")     # a document's ที่
_EMAIL = re.compile(r"\S+@\S+")         # with what is written against it: "<a@b.th>,"
_JOIN = "\ue000"            # stands for a space inside a unit while wrapping; never printed
_UNIT = re.compile("\ue001([^\ue002]*)\ue002")    # a unit marked in a chunk while wrapping; never printed
_MARKS = re.compile("[\ue000-\ue002]")                 # _JOIN and _UNIT's marks in a text itself


def unbreakable(text: str) -> list[str]:
    """The units of ``text`` kept on one line (dates, times, labelled numbers, ที่, addresses)."""
    return [m.group(0) for m in _GLUE.finditer(text)] + _EMAIL.findall(text)


def _words(text: str) -> set[str]:
    """The pieces ``wrap`` never breaks between (Thai words by the dictionary, runs of Latin)."""
    return {p.replace(_JOIN, " ") for chunk in _SPACE.split(_glued(text)) if chunk and not chunk.isspace()
            for p in _pieces(chunk)}


def _glued(text: str) -> str:
    """``text`` with each unit marked and its spaces joined: it is one chunk, one piece."""
    return _GLUE.sub(lambda m: "\ue001" + re.sub(r"\s+", _JOIN, m.group(0)) + "\ue002", text)


def clusters(text: str) -> list[str]:
    """Units a word too long for its line may be cut between: graphemes (a Thai consonant keeps
    its marks and sara am), and a leading vowel (เ แ โ ใ ไ) stays with the consonant after it."""
    out: list[str] = []
    for g in graphemes(text):
        if out and out[-1][-1] in _LEADING_VOWELS:
            out[-1] += g
        else:
            out.append(g)
    return out


@lru_cache(maxsize=1)
def _segmenter() -> Callable[[str], list[str]]:
    """newmm's word segmenter (``words``), loaded on first use: a poll that writes only
    workbooks never needs its dictionary."""
    from .words import words

    return words


@lru_cache(maxsize=65536)
def _pieces(chunk: str) -> tuple[str, ...]:
    """Unbreakable pieces of a run without spaces: Thai words, Latin/number runs whole,
    punctuation glued to the word it belongs to; a unit (``_glued``) is one piece, the words
    around it pieces of their own ("บ้าน" "เลขที่ 12")."""
    if not _THAI.search(chunk):
        return (_UNIT.sub(r"\1", chunk),)
    tokens: list[str] = []
    parts = _UNIT.split(chunk)          # text, unit, text, unit, ..., text
    found = (tok for k, part in enumerate(parts) if part
             for tok in ([part] if k % 2 else _segmenter()(part)))
    for tok in found:
        if not tok:
            continue
        if tokens and not _THAI.search(tok) and not _THAI.search(tokens[-1]) and tokens[-1][-1] not in _CLOSING:
            tokens[-1] += tok                      # "person" + "12" + "@" ... stay one run
        elif tokens and tok[0] in _CLOSING:
            tokens[-1] += tok                      # no line starts with ")" or "ๆ"
        elif tokens and tokens[-1][-1] in _OPENING:
            tokens[-1] += tok                      # no line ends with "("
        else:
            tokens.append(tok)
    return tuple(tokens)


def _split_long(piece: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """A piece wider than the line: cut between clusters, preferably after @ . / - _ . A line's
    width is its clusters' added up (each measured once; a cut falls where the line is full)."""
    parts: list[str] = []
    line: list[tuple[str, float]] = []
    used = 0.0
    last_break = -1
    for cl in clusters(piece):
        w = measure(cl)
        if line and used + w > width:
            cut = last_break if last_break > 0 else len(line)
            parts.append("".join(c for c, _ in line[:cut]))
            line = line[cut:]
            used = sum(x for _, x in line)
            last_break = -1
        line.append((cl, w))
        used += w
        if cl[-1] in _BREAK_AFTER or cl[-1] == _JOIN:     # a unit too wide: cut at its own space
            last_break = len(line)
    if line:
        parts.append("".join(c for c, _ in line))
    return parts


def wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Lines of ``text`` no wider than ``width`` (``measure`` gives a string's width), broken
    between words and never inside a date, a time, a number with its label, a ที่ or an address
    (``unbreakable``) unless one alone is wider than the line; explicit newlines are kept. An
    empty text is one empty line."""
    if _JOIN in text or "\ue001" in text or "\ue002" in text:
        text = text.replace(_JOIN, " ").replace("\ue001", "").replace("\ue002", "")
    lines = _wrap(text, width, lambda t: measure(t.replace(_JOIN, " ")) if _JOIN in t else measure(t))
    return [line.replace(_JOIN, " ").strip(" ") if _JOIN in line else line for line in lines]


def _wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    lines: list[str] = []
    for para in str(text).split("\n"):
        line, line_w = "", 0.0
        for chunk in _SPACE.split(_glued(para)):
            if not chunk:
                continue
            if chunk.isspace():
                if line:
                    line, line_w = line + " ", line_w + measure(" ")
                continue
            for piece in _pieces(chunk):
                w = measure(piece)
                if line_w + w <= width or not line.strip():
                    if not line.strip() and w > width:       # too wide even alone: cut it
                        parts = _split_long(piece, width, measure)
                        lines.extend(parts[:-1])
                        line, line_w = parts[-1], measure(parts[-1])
                    else:
                        line, line_w = line + piece, line_w + w
                else:
                    lines.append(line.rstrip())
                    if w > width:
                        parts = _split_long(piece, width, measure)
                        lines.extend(parts[:-1])
                        line, line_w = parts[-1], measure(parts[-1])
                    else:
                        line, line_w = piece, w
        lines.append(line.rstrip())
    return lines


# ---------------------------------------------------------------------------------------------
# PDF

MM_PER_PT = 25.4 / 72
MARGIN_X, MARGIN_Y = 10.0, 8.0   # mm
PAD_X, PAD_Y = 1.2, 0.7          # mm inside a cell
LINE = 1.3                       # line height in em: Sarabun's marks reach 1.07 em up, 0.23 em down
TITLE_H, FOOTER_H = 9.0, 6.0     # mm


def _units(rows: Sequence[Sequence[str]], n: int) -> list[set[str]]:
    """Each column's pieces never broken: its words, dates, numbers, ที่ and addresses."""
    return [{u for r in rows for u in unbreakable(r[c])} | {p for r in rows for p in _words(r[c])} for c in range(n)]


def _widths(pdf: Pdf, columns: Sequence[Column], total: float, size: float,
            rows: Sequence[Sequence[str]] = (), units: Sequence[set[str]] | None = None) -> tuple[list[float], bool]:
    """Column widths in mm: each at least as wide as its header's longest line (headers never
    wrap), the rest shared by weight; then, given the rows, moved between columns while that
    saves lines (see _fit). And whether every column holds its widest unit (``_units``)."""
    pdf.set_font(FONT, "B", size)
    floor = [max(pdf.measure(line) for line in (c.pdf_header or c.header).split("\n")) + 2 * PAD_X + 0.5
             for c in columns]
    whole = True
    if rows:        # and as wide as its widest word, date, number, ที่ or address: none is ever broken
        pdf.set_font(FONT, "", size)
        cap = total * UNIT_SHARE
        for c, found in enumerate(units if units is not None else _units(rows, len(columns))):
            if found:
                need = max(pdf.measure(u) for u in found) + 2 * PAD_X + 0.5
                whole = whole and need <= cap
                floor[c] = max(floor[c], min(cap, need))
        if sum(floor) > total:     # more than the page holds: the units give way, the headers do not
            floor = [f * total / sum(floor) for f in floor]
            whole = False
    widths = _share(floor, [c.pdf_weight for c in columns], total)
    if rows:
        widths = _fit(widths, floor, rows, pdf.measure)
    return widths, whole


UNIT_SHARE = 0.3    # a column grows to at most this share of the page for one unbreakable unit


FIT_SAMPLE, FIT_STEP, FIT_ROUNDS, FIT_STRETCH = 120, 2.0, 40, 2.2


def _fit(widths: list[float], floor: list[float], rows: Sequence[Sequence[str]],
         measure: Callable[[str], float], room: Callable[[float], float] = lambda w: w - 2 * PAD_X,
         step: float = FIT_STEP, cap: Sequence[float] | None = None) -> list[float]:
    """Give width to the columns that make rows tall, from those with room to spare: moves of
    ``step`` (mm; 3 and 6 times that where one does not save a line) between two columns, the
    one that saves most lines over a sample of rows first, until none saves any. A column keeps
    its floor and grows to at most ``cap`` (FIT_STRETCH times its share by weight), so the table
    keeps the shape its columns were given. ``room``: the text's room in a column so wide."""
    sample = list(rows[:: max(1, len(rows) // FIT_SAMPLE)])[:FIT_SAMPLE]
    n = len(widths)
    cap = list(cap) if cap is not None else [w * FIT_STRETCH for w in widths]
    cache: dict[tuple[int, float], list[int]] = {}

    def lines(c: int, w: float) -> list[int]:
        key = (c, round(w, 2))
        if key not in cache:
            cache[key] = [len(wrap(r[c], room(w), measure)) for r in sample]
        return cache[key]

    def cost(ws: list[float]) -> tuple[int, int]:
        """The rows' lines, then all the cells' (so that of two columns that both make rows
        tall, one can be given width before the other)."""
        cols = [lines(c, ws[c]) for c in range(n)]
        return sum(max(col[r] for col in cols) for r in range(len(sample))), sum(map(sum, cols))

    widths = widths[:]
    best = cost(widths)
    for _ in range(FIT_ROUNDS):
        move = None
        for size in (step, 3 * step, 6 * step):   # a line saved may need more than one step
            for i in range(n):
                if widths[i] - size < floor[i]:
                    continue
                for j in range(n):
                    if i == j or widths[j] + size > cap[j]:
                        continue
                    trial = widths[:]
                    trial[i] -= size
                    trial[j] += size
                    c = cost(trial)
                    if c < best:
                        best, move = c, trial
            if move is not None:
                break
        if move is None:
            break
        widths = move
    return widths


def _share(floor: list[float], weights: list[float], total: float) -> list[float]:
    widths = floor[:]
    free = list(range(len(floor)))
    while free:                      # share what is left by weight; a column below its floor keeps it
        room = total - sum(widths[i] for i in range(len(floor)) if i not in free)
        share = sum(weights[i] for i in free)
        fixed = [i for i in free if room * weights[i] / share < floor[i]]
        if not fixed:
            for i in free:
                widths[i] = room * weights[i] / share
            break
        free = [i for i in free if i not in fixed]
    return widths


@dataclass
class _Row:
    lines: list[list[str]]
    height: float


def _layout_row(pdf: Pdf, cells: Sequence[object], widths: list[float], line_h: float) -> _Row:
    lines = [wrap("" if v is None else str(v), w - 2 * PAD_X, pdf.measure) for v, w in zip(cells, widths)]
    return _Row(lines, max(len(x) for x in lines) * line_h + 2 * PAD_Y)


def _split(row: _Row, max_lines: int, line_h: float) -> list[_Row]:
    """A row taller than a whole page (rare: pages of notes) is cut into page-high parts."""
    n = max(len(x) for x in row.lines)
    out = []
    for start in range(0, n, max_lines):
        part = [x[start:start + max_lines] for x in row.lines]
        out.append(_Row(part, max(1, max(len(x) for x in part)) * line_h + 2 * PAD_Y))
    return out


def render(table: Table) -> bytes:
    """The table as a PDF: every page has the title, the header row and "หน้า n/N"."""
    return render_pages(table)[0]


@dataclass
class _Plan:
    """A table laid out at one size: column widths, the header row, every body row, the room;
    ``whole``: every column holds its widest unit (no date, number or address is cut)."""

    size: float
    line_h: float
    widths: list[float]
    header: _Row
    body_h: float
    rows: list[_Row]
    whole: bool


def _plan(pdf: Pdf, table: Table, columns: Sequence[Column], cells: list[list[str]], size: float,
          units: Sequence[set[str]] | None = None) -> _Plan:
    line_h = size * MM_PER_PT * LINE
    widths, whole = _widths(pdf, columns, pdf.w - 2 * MARGIN_X, size, cells if table.fit else (), units)
    pdf.set_font(FONT, "B", size)
    header = _layout_row(pdf, [c.pdf_header or c.header for c in columns], widths, line_h)
    body_h = pdf.h - MARGIN_Y - FOOTER_H - (MARGIN_Y + TITLE_H + header.height)
    pdf.set_font(FONT, "", size)
    return _Plan(size, line_h, widths, header, body_h, [_layout_row(pdf, v, widths, line_h) for v in cells], whole)


def _holds(plan: _Plan, starts: Sequence[int]) -> bool:
    """Whether every page the workbook begins at ``starts`` holds its rows at this size."""
    bounds = [0, *sorted(s for s in starts if 0 < s < len(plan.rows)), len(plan.rows)]
    return all(sum(r.height for r in plan.rows[a:b]) <= plan.body_h for a, b in zip(bounds, bounds[1:]))


def _sized(pdf: Pdf, table: Table, columns: Sequence[Column], cells: list[list[str]]) -> _Plan:
    """The table at its size; or, when it breaks where its workbook does (``table.starts``), at
    the largest size up to ``table.max_font_size`` (quarter points) at which every one of those
    pages holds its rows, with no unit cut that the smallest size keeps whole: the workbook's pages, in TH Sarabun New's tall lines, hold fewer rows
    than the PDF's at its smallest size, and the room is given to the text."""
    units = _units(cells, len(columns)) if table.fit and cells else None
    plan = _plan(pdf, table, columns, cells, table.font_size, units)
    if table.starts is None or not cells or not _holds(plan, table.starts):
        return plan
    sizes = [table.font_size + 0.25 * k for k in range(1, int((table.max_font_size - table.font_size) / 0.25) + 1)]
    lo, hi = 0, len(sizes)           # sizes[:lo] hold (as far as tried), sizes[hi:] do not
    while lo < hi:
        mid = (lo + hi) // 2
        trial = _plan(pdf, table, columns, cells, sizes[mid], units)
        if _holds(trial, table.starts) and (trial.whole or not plan.whole):
            plan, lo = trial, mid + 1
        else:
            hi = mid
    return plan


def render_pages(table: Table) -> tuple[bytes, list[int]]:
    """``render``, and the body rows that begin pages 2, 3, ... (``table.starts`` and any the PDF
    needed besides: the workbook takes the same)."""
    from .thaipdf import Pdf

    pdf = Pdf(FONT, MARGIN_X, MARGIN_Y)
    pdf.set_title(f"{table.title} {table.agency} {table.period}".strip())
    pdf.set_author(table.agency)
    pdf.set_creator("mailbot")
    columns = [c for c in table.columns if c.printed]
    index = [i for i, c in enumerate(table.columns) if c.printed]
    cells = [["" if i >= len(r) or r[i] is None else str(r[i]) for i in index] for r in table.rows]
    plan = _sized(pdf, table, columns, cells)
    size, line_h, widths, header, body_h = plan.size, plan.line_h, plan.widths, plan.header, plan.body_h
    table_top = MARGIN_Y + TITLE_H
    body_top = table_top + header.height
    max_lines = max(1, int((body_h - 2 * PAD_Y) // line_h))

    pages: list[list[_Row]] = [[]]
    used = 0.0
    starts = set(table.starts or ())
    began: list[int] = []                      # the body rows that begin pages 2, 3, ...
    for i, row in enumerate(plan.rows):
        if i in starts and pages[-1]:          # where the workbook's page ends, the PDF's does too
            pages.append([])
            used = 0.0
        for k, part in enumerate(_split(row, max_lines, line_h) if row.height > body_h else [row]):
            if pages[-1] and used + part.height > body_h:
                pages.append([])
                used = 0.0
            if not pages[-1] and len(pages) > 1 and k == 0:
                began.append(i)
            pages[-1].append(part)
            used += part.height
    total = len(pages) + len(table.extra)

    for number, rows in enumerate(pages, start=1):
        pdf.add_page()
        _page_frame(pdf, table, number, total)
        pdf.set_font(FONT, "B", size)
        _draw_row(pdf, header, widths, columns, table_top, line_h, fill=(221, 235, 247), header=True)
        y = body_top
        pdf.set_font(FONT, "", size)
        for k, row in enumerate(rows):
            _draw_row(pdf, row, widths, columns, y, line_h, fill=(245, 245, 245) if k % 2 else None)
            y += row.height
    for number, draw in enumerate(table.extra, start=len(pages) + 1):
        pdf.add_page()
        _page_frame(pdf, table, number, total)
        pdf.set_xy(MARGIN_X, table_top)
        draw(pdf)
    return bytes(pdf.output()), began


def _page_frame(pdf: Pdf, table: Table, number: int, total: int) -> None:
    """Title on top (register, agency, period), page number and the note at the foot."""
    pdf.set_xy(MARGIN_X, MARGIN_Y)
    pdf.set_font(FONT, "B", 14)
    title = " ".join(x for x in (table.title, table.agency, table.period) if x)
    pdf.text_line(pdf.w - 2 * MARGIN_X, TITLE_H - 2, title, align="C")
    pdf.set_font(FONT, "", 9)
    pdf.set_xy(MARGIN_X, pdf.h - MARGIN_Y - FOOTER_H + 1)
    half = (pdf.w - 2 * MARGIN_X) / 2
    pdf.text_line(half, FOOTER_H - 1, " ".join(x for x in (table.title, table.period, table.note) if x), align="L")
    pdf.set_xy(MARGIN_X + half, pdf.get_y())
    pdf.text_line(half, FOOTER_H - 1, f"หน้า {number}/{total}", align="R")


def _draw_row(pdf: Pdf, row: _Row, widths: list[float], columns: Sequence[Column], y: float, line_h: float,
              fill: tuple[int, int, int] | None = None, header: bool = False) -> None:
    x = MARGIN_X
    pdf.set_draw_color(120, 120, 120)
    pdf.set_line_width(0.2)
    for lines, w, col in zip(row.lines, widths, columns):
        if fill:
            pdf.set_fill_color(*fill)
        pdf.rect(x, y, w, row.height, style="DF" if fill else "D")
        align = "C" if header else col.align
        for k, text in enumerate(lines):
            if text:
                pdf.set_xy(x + PAD_X, y + PAD_Y + k * line_h)
                pdf.text_line(w - 2 * PAD_X, line_h, text, align=align)
        x += w


# ---------------------------------------------------------------------------------------------
# Workbook print set-up (openpyxl; also the write-only worksheets of the streamed register)

# The workbook's font is TH Sarabun New, the government's font, at 16 pt (WORKBOOK_FONT: the
# computer's own, or what the application puts in its place). Its proportions are TLWG's
# Laksaman's (fonts-tlwg-laksaman): TH Sarabun New with its glyphs scaled up by 150.42 % (the
# fonts-tlwg changelog, 2014-05-01), whose advance widths are the bundled Sarabun's: Thai letters
# 1.7 % narrower on the whole, digits 1 % narrower, small Latin letters 4.4 % wider, the space a
# third wider. So TH Sarabun New sets as wide as Sarabun at TH_SIZE (1/1.5042) of its size; text is
# measured here with Sarabun's advance widths at TH_SCALE, 2 % above that, the space and small
# Latin letters widened as Laksaman's are (_TH_WIDER). Its digit is 0.3617 em: the column width
# unit, which Excel takes in whole pixels with 5 of padding (8 px at 16 pt) and LibreOffice as it
# is (7.72 px); a print fitted to the page width is scaled by each application from its own
# widths. Its line is 1.30 em (its Windows ascent and descent: Excel's 21 pt a line at 16 pt);
# LibreOffice spaces lines at 1.10 em (its typographic metrics), so a row tall enough for Excel
# is tall enough for LibreOffice. LibreOffice does not fit a row's height to wrapped text when it
# opens an xlsx (Excel does), so every row carries a height worked out here, the text wrapped as
# the PDF wraps it (never inside a date or a number) at the narrower of the two widths.
WORKBOOK_SIZE = 16
TH_SIZE = 1 / 1.5042                     # TH Sarabun New's size against Sarabun's, for the same widths
TH_SCALE = TH_SIZE * 1.02                # ... as measured here (see above), with _TH_WIDER
TH_DIGIT_EM = 0.3617                     # TH Sarabun New's digit
EM_PX = WORKBOOK_SIZE * 96 / 72          # its em at 16 pt, in pixels
PX_PER_CHAR = round(TH_DIGIT_EM * EM_PX)         # Excel's column width unit: 8 px (5 more a column)
LO_PX_PER_CHAR = TH_DIGIT_EM * EM_PX             # LibreOffice's: 7.72 px
CELL_PAD_PX = 6.0                        # a cell's inner margins, left and right together
LINE_PT = 21.0                           # a line of TH Sarabun New 16 in Excel (1.30 em)
PAGE_W_PT, PAGE_H_PT = 841.89, 595.28    # A4 landscape
MARGIN_IN = {"left": 0.4, "right": 0.4, "top": 0.85, "bottom": 0.6, "header": 0.25, "footer": 0.25}
MIN_EFFECTIVE_PT = 12.0                  # the size the text must print at, at least
EFFECTIVE_PT = 12.5                      # ... and the least a table widened for its dates and addresses prints at


@lru_cache(maxsize=1)
def _advances() -> tuple[dict[int, float], float]:
    """Sarabun's advance widths in em, by code point, and its average Thai letter (for the rest)."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(FONTS / "Sarabun-Regular.ttf"), lazy=True)
    upm = font["head"].unitsPerEm
    hmtx = font["hmtx"]
    widths = {cp: hmtx[name][0] / upm for cp, name in font.getBestCmap().items()}
    font.close()
    return widths, 0.62


def _th_wider(ch: str) -> float:
    """How much wider than Sarabun's TH Sarabun New draws ``ch``, beyond TH_SIZE (Laksaman's)."""
    return 1.34 if ch == " " else 1.05 if "a" <= ch <= "z" else 1.0


@lru_cache(maxsize=8192)
def _char_px(ch: str) -> float:
    """A character's width in TH Sarabun New 16, in pixels (Sarabun's at TH_SCALE)."""
    if unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0.0
    widths, fallback = _advances()
    return widths.get(ord(ch), fallback) * _th_wider(ch) * TH_SCALE * EM_PX


def _text_px(text: str) -> float:
    return sum(map(_char_px, text))


def _cell_px(width: float) -> float:
    """The room for text in a cell of ``width`` units, in pixels: LibreOffice's, the narrower."""
    return width * LO_PX_PER_CHAR - CELL_PAD_PX


def column_pt(width: float) -> float:
    """A column of ``width`` units, in points, as Excel makes it (the wider: whole pixels and 5 of
    padding)."""
    return (width * PX_PER_CHAR + 5) * 72 / 96


def _printed_pt(columns: Sequence[Column], column: Callable[[float], float]) -> float:
    return sum(column(c.width) for c in columns if c.printed)


def _usable_w_pt() -> float:
    return PAGE_W_PT - (MARGIN_IN["left"] + MARGIN_IN["right"]) * 72


def print_scale(columns: Sequence[Column]) -> float:
    """The scale a fit-to-width print applies to the printed columns on A4 landscape (≤ 1), the
    smaller of the two applications' (Excel's, in whole percent): the size the text prints at."""
    return min(1.0, int(100 * _usable_w_pt() / _printed_pt(columns, column_pt)) / 100)


def print_scale_max(columns: Sequence[Column]) -> float:
    """The larger of the two applications' fit-to-width scales (LibreOffice's, its columns the
    narrower): what a page holds, in the sheet's points, is worked out at this one."""
    return min(1.0, _usable_w_pt() / _printed_pt(columns, lambda w: w * LO_PX_PER_CHAR * 72 / 96))


def max_printed_units(count: int) -> float:
    """The widest ``count`` printed columns may be, in units, for the text to print at
    EFFECTIVE_PT or more in Excel (the smaller scale) on A4 landscape."""
    return (_usable_w_pt() * WORKBOOK_SIZE / EFFECTIVE_PT * 96 / 72 - 5 * count) / PX_PER_CHAR


def effective_pt(columns: Sequence[Column]) -> float:
    """The size the workbook's text prints at: its size at the (smaller) fit-to-width scale."""
    return WORKBOOK_SIZE * print_scale(columns)


def cell_lines(value: object, width: float) -> int:
    """How many lines a wrapped cell of ``width`` (Excel units) takes."""
    if value is None or value == "":
        return 1
    text, room = str(value), _cell_px(width)
    if "\n" not in text and not _MARKS.search(text) and _text_px(" ".join(text.split())) <= room:
        return 1       # it fits whole: wrap's lines add up to no more than this (most cells: no segmenting)
    return len(wrap(text, room, _text_px))


def row_height(values: Sequence[object], columns: Sequence[Column]) -> float | None:
    """The height (points) a row needs for its wrapped cells; None when one line is enough."""
    lines = max((cell_lines(v, c.width) for v, c in zip(values, columns) if c.wrap), default=1)
    return round(lines * LINE_PT + 3, 2) if lines > 1 else None


def header_height(columns: Sequence[Column]) -> float | None:
    """The header row's height: headers wrap (bold is a little wider: counted as such)."""
    lines = max(len(wrap(c.header, _cell_px(c.width), lambda t: _text_px(t) * 1.08)) for c in columns)
    return round(lines * LINE_PT + 3, 2) if lines > 1 else None


def fitted_columns(columns: Sequence[Column], rows: Sequence[Sequence[object]]) -> list[Column]:
    """The workbook's columns, each at least as wide as the widest date, number, ที่, address or
    word in it (so Excel and LibreOffice never wrap inside one): the table grows for them as far
    as it still prints at EFFECTIVE_PT (``max_printed_units``), and what more they take is taken
    back from the wrapped columns with room to spare (none narrower than its header, where the
    header fitted); then width moves between the wrapped columns while that saves lines
    (``_fit``, in units). The PDF's proportions are kept as they were (``weight``)."""
    printed = [i for i, c in enumerate(columns) if c.printed]
    budget = sum(columns[i].width for i in printed)
    most = max(budget, max_printed_units(len(printed)))       # the units may widen the table to this
    texts = [[str(r[i]) if i < len(r) and r[i] not in (None, "") else "" for i in range(len(columns))] for r in rows]
    need: list[float] = []
    for i, c in enumerate(columns):
        units = {u for r in texts if r[i] for u in unbreakable(r[i]) + sorted(_words(r[i]))}
        widest = max(((_text_px(u) + CELL_PAD_PX + 1) / LO_PX_PER_CHAR for u in units), default=0.0)
        need.append(min(widest, budget * UNIT_SHARE) if c.printed else 0.0)
    widths = [max(c.width, n) for c, n in zip(columns, need)]
    excess = sum(widths[i] for i in printed) - most
    heading = [(_text_px(c.header) * 1.08 + CELL_PAD_PX + 1) / LO_PX_PER_CHAR for c in columns]   # on one line
    floor = [max(need[i], min(heading[i], c.width), 4.0) if c.wrap and c.printed else widths[i]
             for i, c in enumerate(columns)]
    slack = [max(0.0, widths[i] - floor[i]) for i in range(len(columns))]
    if excess > 0 and sum(slack) > 0:
        share = min(1.0, excess / sum(slack))
        widths = [w - s * share for w, s in zip(widths, slack)]
    if texts and printed:
        wrapped = [columns[i].wrap for i in printed]
        cells = [[r[i] if w else "" for i, w in zip(printed, wrapped)] for r in texts]
        start = [widths[i] for i in printed]
        moved = _fit(start, [min(floor[i], widths[i]) for i in printed], cells, _text_px, room=_cell_px, step=0.5,
                     cap=[w * FIT_STRETCH if wrap else w for w, wrap in zip(start, wrapped)])
        for i, w in zip(printed, moved):
            widths[i] = w
    return [replace(c, width=round(w, 1), weight=c.pdf_weight) for c, w in zip(columns, widths)]


def page_starts(heights: Sequence[float | None], columns: Sequence[Column], header: float | None = None) -> list[int]:
    """The rows (0-based, of the body) that begin each printed page after the first: the page
    breaks the workbook is given, and the PDF of the same rows follows (``render(starts=...)``),
    so both print the same rows on the same pages. A page holds what fits in A4 landscape's
    height at the larger of the applications' fit-to-width scales, below the repeated header row."""
    return page_fill(heights, columns, header)[0]


def page_fill(heights: Sequence[float | None], columns: Sequence[Column], header: float | None = None,
              starts: Sequence[int] = (), used: float = 0.0, first: int = 0) -> tuple[list[int], float]:
    """``page_starts`` carried on: the rows from ``first`` on, after pages that began at
    ``starts`` and a last page ``used`` so far; returns the starts and the last page's use (so a
    register that only grew needs only its new rows' heights)."""
    scale = print_scale_max(columns)
    usable = (PAGE_H_PT - (MARGIN_IN["top"] + MARGIN_IN["bottom"]) * 72) / scale
    room = usable - (header or LINE_PT + 3) - 2          # a hair for rounding in the applications
    out = list(starts)
    for i, h in enumerate(heights, start=first):
        h = h or LINE_PT + 3
        if used and used + h > room:
            out.append(i)
            used = 0.0
        used += h
    return out, used


def row_breaks_xml(starts: Sequence[int], first_row: int = 2) -> str:
    """SpreadsheetML manual page breaks before the sheet rows of ``starts`` (body rows from
    ``first_row``): a break is written after the row that ends a page."""
    if not starts:
        return ""
    brks = "".join(f'<brk id="{first_row + s - 1}" max="16383" man="1"/>' for s in starts)
    return f'<rowBreaks count="{len(starts)}" manualBreakCount="{len(starts)}">{brks}</rowBreaks>'


def _hf(text: str) -> str:
    """Literal text inside an Excel header/footer: '&' is a code there."""
    return text.replace("&", "&&")


def sheet_setup(ws, columns: Sequence[Column], *, title: str, agency: str, period: str,
                header_rows: int = 1, fit_height: bool = False, last_row: int | None = None) -> None:
    """Landscape A4, the printed columns fit the page width (pages run down as long as needed),
    the header rows repeat on every page, the title and "หน้า &P/&N" in the page header/footer,
    grid lines printed. The printed columns must come first: the print area is columns A..last,
    rows 1..``last_row``, or every row when that is not known (a register that grows by
    appending: Excel and LibreOffice print such an area only as far as the data goes)."""
    from openpyxl.utils import get_column_letter
    from openpyxl.workbook.defined_name import DefinedName
    from openpyxl.worksheet.page import PageMargins

    printed = [c.printed for c in columns]
    count = printed.index(False) if False in printed else len(printed)
    if any(printed[count:]):
        raise ValueError("printed columns must come first")
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = 9                     # A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 1 if fit_height else 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_margins = PageMargins(**MARGIN_IN)
    ws.print_options.gridLines = True
    ws.print_options.horizontalCentered = True
    if header_rows:
        ws.print_title_rows = f"1:{header_rows}"
    last = get_column_letter(count)
    quoted = "'" + ws.title.replace("'", "''") + "'"
    area = f"{quoted}!$A$1:${last}${last_row or 1048576}"
    ws.defined_names["_xlnm.Print_Area"] = DefinedName("_xlnm.Print_Area", attr_text=area)
    # one line: openpyxl writes a line break in a header as "_x000a_", which LibreOffice prints as such
    ws.oddHeader.center.text = _hf(f"{title} {agency}".strip()) + f' &"{WORKBOOK_FONT},Regular"' + _hf(period)
    ws.oddHeader.center.font = f"{WORKBOOK_FONT},Bold"
    ws.oddHeader.center.size = WORKBOOK_SIZE
    ws.oddFooter.left.text = _hf(f"{title} {period}".strip())
    ws.oddFooter.left.font = WORKBOOK_FONT
    ws.oddFooter.left.size = 14
    ws.oddFooter.right.text = "หน้า &P/&N"
    ws.oddFooter.right.font = WORKBOOK_FONT
    ws.oddFooter.right.size = 14
