"""Docstamp: the receipt stamp (ตรารับ) on a received PDF document — a stamped copy, never the original.

Owns: the stamp as the Sarabun regulation draws it (a box about 5 x 2.5 cm: the agency's name,
เลขรับ, วันที่, เวลา), opaque, at the top right of page 1 where the page has nothing — found from
the boxes of its text, images and drawings (pdfminer.six, page 1 only), at least 1 cm from every
edge, as near the top-right corner as free space allows in the upper third — or, when there is
no such space (a full top, a scan, a page too heavy to read quickly), in a band added above the
page: never over the applicant's own text. Added by pyHanko as an incremental update (the
original bytes stay byte for byte at the front of the copy; the caller keeps the original file
as well); and doing it
under the same limits as signing: the page tree is walked with limits first (``sign``), and the
work runs in a helper process under a wall-clock limit (``bounded``). A file that cannot be
stamped raises BadPdf with a Thai + English reason; the caller forwards the original then.
"""
from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

from ..thai import cut, thai_date_short, to_bangkok
from . import FONTS
from . import limits as bounded
from .sign import BadPdf, first_page, helper_died, open_pdf, text_width, too_slow

FONT = FONTS / "Sarabun-Regular.ttf"
FONT_SIZE = 9
LEADING = 12
WIDTH, HEIGHT = 142.0, 71.0      # points: 5 x 2.5 cm, as the regulation shows it
PADDING = 6
MARGIN = 28.35                   # 1 cm from every edge: many printers print nothing nearer
CLEARANCE = 3.0                  # points between the stamp and the page's own marks
STEP = 6.0                       # points between the places tried
BAND_GAP = 8.0                   # points between the page's old top edge and a stamp in the added band
MAX_CONTENT = 4 * 1024 * 1024    # page 1's content streams (encoded bytes) read for free space at most
DEFAULT_SECONDS = 20.0           # limits.stamp_seconds: one file's time budget
DEFAULT_MAX_PAGES = 2000         # limits.stamp_max_pages: more pages than this, the original is forwarded


def stamp_lines(agency: str, receipt: str, when: datetime) -> list[str]:
    local = to_bangkok(when)
    usable = WIDTH - 2 * PADDING
    name = cut(agency, lambda t: text_width(t, FONT_SIZE) <= usable * 0.97)
    return [name, f"เลขรับ {receipt}", f"วันที่ {thai_date_short(local)}", f"เวลา {local:%H:%M} น."]


def stamp_pdf(data: bytes, *, agency: str, receipt: str, when: datetime, max_pages: int = DEFAULT_MAX_PAGES) -> bytes:
    """The stamped copy (in this process: use ``stamp_bounded`` for files from outside). Only the
    path to page 1 is read (``sign.first_page``), and only the stamp is written after the
    original bytes (an incremental update): the cost does not grow with the file's pages."""
    from pyhanko.pdf_utils import content, layout
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.stamp import TextStamp, TextStampStyle

    _pages, box = first_page(open_pdf(data), max_pages)
    x0, y0, x1, y1 = box
    width = min(WIDTH, x1 - x0 - 2 * 4)
    height = HEIGHT
    spot = free_spot(data, box, width, height)
    lines = stamp_lines(agency, receipt, when)
    white = content.RawContent(b"1 1 1 rg 0 0 %g %g re f" % (width, height),
                               box=layout.BoxConstraints(width=width, height=height))
    style = TextStampStyle(
        stamp_text="\n".join(line.replace("%", "%%") for line in lines),
        text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(str(FONT), font_size=FONT_SIZE),
                                    font_size=FONT_SIZE, leading=LEADING, box_layout_rule=None),
        border_width=1,
        background=white,
        background_opacity=1.0,        # opaque: it only ever sits on blank paper or the added band
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MIN, y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(left=PADDING + 2, right=PADDING, top=1, bottom=1),
            inner_content_scaling=layout.InnerScaling.NO_SCALING),
        background_layout=layout.SimpleBoxLayoutRule(x_align=layout.AxisAlignment.ALIGN_MIN,
                                                     y_align=layout.AxisAlignment.ALIGN_MIN,
                                                     margins=layout.Margins(0, 0, 0, 0)),
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        if spot is None:                 # no free space: a band above the page, the page unmoved
            spot = _add_band(writer, box, width, height)
        stamp = TextStamp(writer, style, box=layout.BoxConstraints(width=width, height=height))
        # pyHanko annotates x and y as ints but writes them as PDF reals: the stamp stays where measured
        stamp.apply(0, spot[0], spot[1])  # type: ignore[arg-type]
        out = io.BytesIO()
        writer.write(out)
    except BadPdf:
        raise
    except Exception as exc:  # noqa: BLE001 - the library choking on the file: a damaged file
        raise BadPdf(f"ไฟล์ PDF เสียหาย ประทับตรารับไม่ได้ / damaged PDF, cannot stamp it ({type(exc).__name__})") from None
    return out.getvalue()


def content_boxes(data: bytes, limit: int | None = None) -> list[tuple[float, float, float, float]] | None:
    """The boxes (x0, y0, x1, y1, in page 1's user space) of everything page 1 draws: each
    letter, image, line and shape (white-filled shapes without an outline, such as a page's
    background, are blank paper). None when the page cannot be read or its content is larger
    than ``limit``: then no place on it is known to be free."""
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LTContainer, LTCurve, LTPage
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser

    limit = MAX_CONTENT if limit is None else limit
    try:
        doc = PDFDocument(PDFParser(io.BytesIO(data)))
        page = next(iter(PDFPage.create_pages(doc)), None)
        if page is None:
            return None
        contents = page.contents if isinstance(page.contents, list) else [page.contents]
        if sum(len(getattr(c, "rawdata", None) or b"") for c in contents if c is not None) > limit:
            return None
        device = PDFPageAggregator(PDFResourceManager(caching=True), laparams=None)
        PDFPageInterpreter(device.rsrcmgr, device).process_page(page)
        layout_page = device.get_result()
    except Exception:  # noqa: BLE001 - whatever pdfminer cannot read: no place is known to be free
        return None
    inverse = _invert(_device_matrix(page))
    out: list[tuple[float, float, float, float]] = []

    def visit(item) -> None:
        if isinstance(item, LTContainer) and not isinstance(item, LTPage):
            for child in item:
                visit(child)
            if list(item):
                return
        elif isinstance(item, LTPage):
            for child in item:
                visit(child)
            return
        if isinstance(item, LTCurve) and item.fill and not item.stroke and _white(item.non_stroking_color):
            return
        out.append(_map_box(inverse, item.bbox))

    visit(layout_page)
    return out


def _white(color: object) -> bool:
    values = color if isinstance(color, (list, tuple)) else (color,)
    try:
        nums = [float(v) for v in values] 
    except (TypeError, ValueError):
        return False
    return bool(nums) and (all(v >= 0.99 for v in nums) if len(nums) in (1, 3) else all(v <= 0.01 for v in nums))


def _device_matrix(page) -> tuple[float, float, float, float, float, float]:
    """The matrix pdfminer puts before page 1's content (its ``process_page``): user space to its
    layout coordinates, with the media box's corner at 0, 0 and the page's /Rotate applied."""
    x0, y0, x1, y1 = page.mediabox
    rotate = (page.rotate or 0) % 360
    if rotate == 90:
        return (0, -1, 1, 0, -y0, x1)
    if rotate == 180:
        return (-1, 0, 0, -1, x1, y1)
    if rotate == 270:
        return (0, 1, -1, 0, y1, -x0)
    return (1, 0, 0, 1, -x0, -y0)


def _invert(m: tuple[float, float, float, float, float, float]) -> tuple[float, float, float, float, float, float]:
    a, b, c, d, e, f = m
    det = a * d - b * c
    return (d / det, -b / det, -c / det, a / det, (c * f - d * e) / det, (b * e - a * f) / det)


def _map_box(m: tuple[float, float, float, float, float, float],
             bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    a, b, c, d, e, f = m
    bx0, by0, bx1, by1 = bbox
    xs, ys = [], []
    for u, v in ((bx0, by0), (bx0, by1), (bx1, by0), (bx1, by1)):
        xs.append(a * u + c * v + e)
        ys.append(b * u + d * v + f)
    return min(xs), min(ys), max(xs), max(ys)


def free_spot(data: bytes, box: tuple[float, float, float, float], width: float, height: float
              ) -> tuple[float, float] | None:
    """Where the stamp's lower-left corner goes on page 1 (``box``: its crop box): the free place
    nearest the top-right corner, at least MARGIN from every edge, within the upper third and the
    right two-thirds of the page, CLEARANCE away from every mark; None when there is none."""
    x0, y0, x1, y1 = box
    boxes = content_boxes(data)
    if boxes is None:
        return None
    # only what lies in the region searched matters
    left_limit = x0 + (x1 - x0) / 3
    low_limit = y1 - (y1 - y0) / 3
    near = [b for b in boxes if b[2] >= left_limit - CLEARANCE and b[3] >= low_limit - CLEARANCE
            and b[0] <= x1 and b[1] <= y1]
    top, right = y1 - MARGIN - height, x1 - MARGIN - width
    if top < low_limit or right < left_limit:
        return None                      # a page too small for the stamp and its margins
    best: tuple[float, float, float] | None = None
    y = top
    while y >= low_limit:
        x = right
        while x >= left_limit:
            cost = (top - y) + (right - x)
            if best is not None and cost >= best[0]:
                break
            if not any(b[0] < x + width + CLEARANCE and b[2] > x - CLEARANCE and b[1] < y + height + CLEARANCE
                       and b[3] > y - CLEARANCE for b in near):
                best = (cost, x, y)
                break
            x -= STEP
        if best is not None and (top - y) >= best[0]:
            break
        y -= STEP
    return (best[1], best[2]) if best is not None else None


def _add_band(writer, box: tuple[float, float, float, float], width: float, height: float
              ) -> tuple[float, float]:
    """Page 1 made taller at the top by a band for the stamp (its media box, and its crop box when
    it has one); the page's own content is not moved. Returns the stamp's place in the band."""
    from pyhanko.pdf_utils import generic

    x0, y0, x1, y1 = box
    band = BAND_GAP + height + MARGIN
    page_ref, _resources = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    media = _inherited_box(page, "/MediaBox") or [x0, y0, x1, y1]
    page["/MediaBox"] = generic.ArrayObject(generic.FloatObject(v) for v in
                                            (media[0], media[1], media[2], max(media[3], y1) + band))
    if "/CropBox" in page or _inherited_box(page, "/CropBox") is not None:
        page["/CropBox"] = generic.ArrayObject(generic.FloatObject(v) for v in (x0, y0, x1, y1 + band))
    writer.update_container(page)
    return x1 - MARGIN - width, y1 + BAND_GAP


def _inherited_box(page, key: str) -> list[float] | None:
    node, seen = page, 0
    while node is not None and seen < 64:
        if key in node:
            try:
                return [float(v) for v in node[key]]
            except (TypeError, ValueError):
                return None
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
        seen += 1
    return None


def stamp_bounded(data: bytes, *, agency: str, receipt: str, when: datetime, timeout: float = DEFAULT_SECONDS,
                  helper: bounded.Helper | None = None, max_pages: int = DEFAULT_MAX_PAGES) -> bytes:
    """``stamp_pdf`` in a helper process under ``timeout`` seconds; BadPdf when it fails or runs over.
    Pass a ``helper`` to stamp several files with one process."""
    own = helper is None
    h = helper or bounded.Helper()
    try:
        return h.run(stamp_pdf, data, timeout=timeout, agency=agency, receipt=receipt, when=when,
                     max_pages=max_pages)
    except bounded.TimedOut:
        raise too_slow(timeout) from None
    except bounded.HelperDied:
        raise helper_died() from None
    finally:
        if own:
            h.close()


def stamped_copies(files: list[tuple[str, bytes]], *, agency: str, receipt: str, when: datetime,
                   timeout: float = DEFAULT_SECONDS, max_pages: int = DEFAULT_MAX_PAGES
                   ) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """For the forward to a unit: each PDF replaced by its stamped copy (named ``... (ตรารับ).pdf``),
    other files as they are. A PDF that cannot be stamped goes as it came. Returns (files,
    problems as (name, reason)). One helper process serves all the files."""
    out: list[tuple[str, bytes]] = []
    problems: list[tuple[str, str]] = []
    helper: bounded.Helper | None = None
    try:
        for name, data in files:
            if not (name.lower().endswith(".pdf") or data.lstrip()[:5] == b"%PDF-"):
                out.append((name, data))
                continue
            helper = helper or bounded.Helper()
            try:
                out.append((stamped_name(name), stamp_bounded(data, agency=agency, receipt=receipt, when=when,
                                                              timeout=timeout, helper=helper, max_pages=max_pages)))
            except BadPdf as exc:
                out.append((name, data))
                problems.append((name, str(exc)))
    finally:
        if helper is not None:
            helper.close()
    return out, problems


class StampCache:
    """Stamped copies kept under ``data/stamped/`` by the PDF's content and the receipt number, so
    that the slow part (pyHanko, in a helper process) runs before and apart from the register's
    transaction and the work lock, and never twice for one file: a copy that could not be made
    is remembered too (its reason in a ``.txt``), and the original is forwarded with that note."""

    def __init__(self, data_dir: Path) -> None:
        self.folder = data_dir / "stamped"

    def _path(self, data: bytes, receipt: str) -> Path:
        import hashlib

        return self.folder / f"{hashlib.sha256(data).hexdigest()}-{receipt.replace('/', '-')}.pdf"

    def get(self, data: bytes, receipt: str) -> tuple[bytes | None, str | None] | None:
        """(the stamped copy, None), (None, why it could not be made), or None: not tried yet."""
        path = self._path(data, receipt)
        try:
            return path.read_bytes(), None
        except FileNotFoundError:
            pass
        try:
            return None, path.with_suffix(".txt").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def fill(self, pdfs: list[tuple[str, bytes]], *, agency: str, receipt: str, when: datetime,
             timeout: float = DEFAULT_SECONDS, max_pages: int = DEFAULT_MAX_PAGES) -> int:
        """Stamp every PDF not tried yet (one helper process for all); returns how many were tried."""
        from ..files import write_atomic

        todo = [(name, data) for name, data in pdfs if self.get(data, receipt) is None]
        if not todo:
            return 0
        helper = bounded.Helper()
        try:
            for _name, data in todo:
                path = self._path(data, receipt)
                try:
                    write_atomic(path, stamp_bounded(data, agency=agency, receipt=receipt, when=when,
                                                     timeout=timeout, helper=helper, max_pages=max_pages))
                except BadPdf as exc:
                    write_atomic(path.with_suffix(".txt"), str(exc).encode("utf-8"))
        finally:
            helper.close()
        return len(todo)


def stamped_name(name: str) -> str:
    """The stamped copy's file name: 'แบบแปลน.pdf' -> 'แบบแปลน (ตรารับ).pdf'."""
    p = Path(name)
    return f"{p.stem} (ตรารับ){p.suffix or '.pdf'}"


__all__ = ["stamp_bounded", "stamp_lines", "stamp_pdf", "stamped_copies", "stamped_name"]
