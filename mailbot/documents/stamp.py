"""Docstamp: the receipt stamp (ตรารับ) on a received PDF document — a stamped copy, never the original.

Owns: the stamp as the Sarabun regulation draws it (a box of 5 x 2.5 cm: the agency's name,
เลขรับ, วันที่, เวลา), opaque, upright as page 1 is shown (its /Rotate), at the top right of
page 1 where the page has nothing: found from the boxes of its text, images, drawings
(pdfminer.six, page 1's content only, under a budget of bytes, marks and seconds) and
annotations (form fields), at least 1 cm from every edge of the visible page (the crop box,
wherever its origin), as near the top-right corner as free space allows in the upper third. When
there is no such space, or page 1 cannot be read within the budget (a full top, a scan, a heavy
drawing), the page is made taller by a white band above what it shows and the stamp goes there:
never over the applicant's own marks. Added by pyHanko as an incremental update (the original
bytes stay byte for byte at the front of the copy; the caller keeps the original file as well);
and doing it under the same limits as signing: the page tree is walked with limits first
(``sign``), and the work runs in a helper process under a wall-clock limit (``bounded``). A file
that cannot be stamped raises BadPdf with a Thai + English reason; the caller forwards the
original then.
"""
from __future__ import annotations

import io
import math
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..thai import cut, thai_date_short, to_bangkok
from . import FONTS
from . import limits as bounded
from .sign import BadPdf, first_page, helper_died, open_pdf, text_width, too_slow

Box = tuple[float, float, float, float]             # x0, y0, x1, y1
Matrix = tuple[float, float, float, float, float, float]

FONT = FONTS / "Sarabun-Regular.ttf"
FONT_SIZE = 9
LEADING = 12
WIDTH, HEIGHT = 142.0, 71.0      # points: 5 x 2.5 cm, as the regulation shows it
PADDING = 6
MARGIN = 28.35                   # 1 cm from every edge: many printers print nothing nearer
CLEARANCE = 3.0                  # points between the stamp and the page's own marks
STEP = 3.0                       # points between the rows tried (along a row the place is exact)
BAND_GAP = 8.0                   # points between the page's old top edge and a stamp in the added band
# what reading page 1 for free space may take; over any of them the band is used
MAX_CONTENT = 1536 * 1024        # page 1's content streams and forms, decoded (bytes)
MAX_FONT_BYTES = 32 * 1024 * 1024  # the font files and maps the reader decodes for them (bytes)
MAX_MARKS = 200_000              # letters, paths and images
MAX_ANNOTS = 1000                # annotations (form fields, notes)
ANALYSIS_SECONDS = 5.0
DEFAULT_SECONDS = 20.0           # limits.stamp_seconds: one file's time budget
DEFAULT_MAX_PAGES = 2000         # limits.stamp_max_pages: more pages than this, the original is forwarded


def stamp_lines(agency: str, receipt: str, when: datetime) -> list[str]:
    """The agency's name (on two lines, broken between words, when one does not hold it, as
    "องค์การบริหารส่วนตำบล..." often does not; cut after two), เลขรับ, วันที่, เวลา."""
    from .letters import wrap

    local = to_bangkok(when)
    usable = (WIDTH - 2 * PADDING) * 0.97

    def measure(text: str) -> float:
        return text_width(text, FONT_SIZE)

    name = wrap(measure, " ".join(agency.split()), usable) or [""]
    if len(name) > 2:
        name = [name[0], " ".join(name[1:])]
    name = [cut(line, lambda t: measure(t) <= usable) for line in name]
    return [*name, f"เลขรับ {receipt}", f"วันที่ {thai_date_short(local)}", f"เวลา {local:%H:%M} น."]


def stamp_pdf(data: bytes, *, agency: str, receipt: str, when: datetime, max_pages: int = DEFAULT_MAX_PAGES) -> bytes:
    """The stamped copy (in this process: use ``stamp_bounded`` for files from outside). Only the
    path to page 1 and page 1's own content are read (``sign.first_page``, ``content_boxes``), and
    only the stamp is written after the original bytes (an incremental update): the cost does not
    grow with the file's pages."""
    from pyhanko.pdf_utils import content, layout
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.stamp import TextStamp, TextStampStyle

    first_page(open_pdf(data), max_pages)          # the page tree's checks and the page budget
    marks = content_boxes(data)
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        page_ref, _resources = writer.find_page_for_modification(0)
        page = page_ref.get_object()
        view = PageView.of(page)
        width, height = min(WIDTH, view.width - 8), HEIGHT
        annots = annotation_boxes(page)
        spot = None
        if marks is not None and annots is not None:
            shown = [_map_box(view.from_user, b) for b in marks + annots]
            spot = free_spot(shown, view.width, view.height, width, height)
        band = None
        if spot is None:                 # no free space: a band above the page, the page unmoved
            view, band = _add_band(writer, page, view, height)
            spot = (max(4.0, view.width - MARGIN - width), view.height - MARGIN - height)
        lines = stamp_lines(agency, receipt, when)
        white = content.RawContent(b"1 1 1 rg 0 0 %s %s re f" % (_num(width), _num(height)),
                                   box=layout.BoxConstraints(width=width, height=height))
        style = TextStampStyle(
            stamp_text="\n".join(line.replace("%", "%%") for line in lines),
            text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(str(FONT), font_size=FONT_SIZE),
                                        font_size=FONT_SIZE, leading=LEADING, text_color=(0, 0, 0),
                                        box_layout_rule=layout.SimpleBoxLayoutRule(
                                            x_align=layout.AxisAlignment.ALIGN_MIN,
                                            y_align=layout.AxisAlignment.ALIGN_MIN,
                                            margins=layout.Margins(0, 0, 0, 0))),
            border_width=1,
            background=white,
            background_opacity=1.0,        # opaque: it only ever sits on blank paper or the added band
            inner_content_layout=layout.SimpleBoxLayoutRule(
                x_align=layout.AxisAlignment.ALIGN_MIN, y_align=layout.AxisAlignment.ALIGN_MID,
                margins=layout.Margins(left=PADDING + 2, right=PADDING, top=1, bottom=4),  # room for descenders
                inner_content_scaling=layout.InnerScaling.NO_SCALING),
            background_layout=layout.SimpleBoxLayoutRule(x_align=layout.AxisAlignment.ALIGN_MIN,
                                                         y_align=layout.AxisAlignment.ALIGN_MIN,
                                                         margins=layout.Margins(0, 0, 0, 0)),
        )
        stamp = TextStamp(writer, style, box=layout.BoxConstraints(width=width, height=height))
        _paint(writer, stamp.register(), view, spot, band)
        out = io.BytesIO()
        writer.write(out)
    except BadPdf:
        raise
    except Exception as exc:  # noqa: BLE001 - the library choking on the file: a damaged file
        raise BadPdf(f"ไฟล์ PDF เสียหาย ประทับตรารับไม่ได้ / damaged PDF, cannot stamp it ({type(exc).__name__})") from None
    return out.getvalue()


# ---------------------------------------------------------------------------- the page as shown

class PageView:
    """Page 1 as a viewer shows it: ``box`` the visible part of its user space (the crop box
    within the media box), ``rotate`` its /Rotate. Places are measured in the shown frame: origin
    at the bottom-left corner of the page as seen, x to the right, y up, in points."""

    def __init__(self, media: Box, box: Box, cropped: bool, rotate: int) -> None:
        self.media, self.box, self.cropped, self.rotate = media, box, cropped, rotate
        self.from_user = _device_matrix(box, rotate)
        self.to_user = _invert(self.from_user)
        x0, y0, x1, y1 = box
        self.width, self.height = (y1 - y0, x1 - x0) if rotate in (90, 270) else (x1 - x0, y1 - y0)

    @classmethod
    def of(cls, page: Any) -> PageView:
        media = _inherited_box(page, "/MediaBox")
        if media is None:
            raise BadPdf("ไฟล์ PDF เสียหาย หน้าแรกไม่มีขนาดหน้า (/MediaBox) / damaged PDF (page 1 has no /MediaBox)")
        crop = _inherited_box(page, "/CropBox")
        box = media
        if crop is not None:             # a viewer shows the crop box clipped to the media box
            inner = (max(crop[0], media[0]), max(crop[1], media[1]), min(crop[2], media[2]), min(crop[3], media[3]))
            if inner[2] > inner[0] and inner[3] > inner[1]:
                box = inner
        try:
            rotate = int(_inherited(page, "/Rotate") or 0) % 360
        except (TypeError, ValueError):
            rotate = 0
        return cls(media, box, crop is not None, rotate if rotate % 90 == 0 else 0)


def _device_matrix(box: Box, rotate: int) -> Matrix:
    """User space to the shown frame of a page whose visible box is ``box`` (pdfminer's
    ``process_page`` puts the same matrix, with the media box, before the page's content)."""
    x0, y0, x1, y1 = box
    if rotate == 90:
        return (0, -1, 1, 0, -y0, x1)
    if rotate == 180:
        return (-1, 0, 0, -1, x1, y1)
    if rotate == 270:
        return (0, 1, -1, 0, y1, -x0)
    return (1, 0, 0, 1, -x0, -y0)


def _invert(m: Matrix) -> Matrix:
    a, b, c, d, e, f = m
    det = a * d - b * c
    return (d / det, -b / det, -c / det, a / det, (c * f - d * e) / det, (b * e - a * f) / det)


def _map_box(m: Matrix, bbox: Box) -> Box:
    a, b, c, d, e, f = m
    bx0, by0, bx1, by1 = bbox
    xs, ys = [], []
    for u, v in ((bx0, by0), (bx0, by1), (bx1, by0), (bx1, by1)):
        xs.append(a * u + c * v + e)
        ys.append(b * u + d * v + f)
    return min(xs), min(ys), max(xs), max(ys)


def _inherited(page: Any, key: str) -> Any:
    node, seen = page, 0
    while node is not None and seen < 64:
        if key in node:
            return node[key]
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
        seen += 1
    return None


def _inherited_box(page: Any, key: str) -> Box | None:
    value = _inherited(page, key)
    if value is None:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x0 == x1 or y0 == y1:
        return None
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


# ---------------------------------------------------------------------------- what page 1 has on it

class _TooBig(Exception):
    """Page 1 is more than the free-space reading may take on."""


class _Budget:
    """What reading page 1 may still take: decoded bytes of content and of fonts, marks, time."""

    def __init__(self, content: int) -> None:
        self.left = {"content": content, "fonts": MAX_FONT_BYTES}
        self.marks = MAX_MARKS
        self.deadline = time.monotonic() + ANALYSIS_SECONDS
        self.seen: set[int] = set()
        self.ticks = 0

    def charge(self, stream: Any, kind: str) -> None:
        key = stream.objid if getattr(stream, "objid", None) is not None else id(stream)
        if key in self.seen:
            return
        self.seen.add(key)
        self.left[kind] -= _decoded_size(stream, max(self.left[kind], 0))
        if self.left[kind] < 0:
            raise _TooBig(kind)

    def mark(self) -> None:
        self.marks -= 1
        if self.marks < 0:
            raise _TooBig("marks")
        self.tick()

    def tick(self) -> None:
        self.ticks += 1
        if not self.ticks % 512 and time.monotonic() > self.deadline:
            raise _TooBig("time")


def _decoded_size(stream: Any, limit: int) -> int:
    """How many bytes a pdfminer stream decodes to, learnt without making more than ``limit`` + 1
    of them (a few KB of Flate can unpack to gigabytes); over ``limit`` means too big."""
    from pdfminer.ascii85 import ascii85decode, asciihexdecode
    from pdfminer.pdftypes import LITERALS_ASCII85_DECODE, LITERALS_ASCIIHEX_DECODE, LITERALS_FLATE_DECODE

    if stream.data is not None:
        return len(stream.data)
    data = stream.rawdata or b""
    if len(data) > 2 * limit + 2:
        return limit + 1
    filters = [f for f, _params in stream.get_filters()]
    for i, f in enumerate(filters):
        if f in LITERALS_ASCIIHEX_DECODE:
            data = asciihexdecode(data)
        elif f in LITERALS_ASCII85_DECODE:
            data = ascii85decode(data)
        elif f in LITERALS_FLATE_DECODE and i == len(filters) - 1:
            try:
                data = zlib.decompressobj().decompress(data, limit + 1)
            except zlib.error:
                return limit + 1         # damaged: the reader would guess at it; no guessing here
        else:                            # LZW, run length, images' filters: at most this much
            return len(data) * 3000
    return len(data)


def content_boxes(data: bytes, limit: int | None = None) -> list[Box] | None:
    """The boxes (x0, y0, x1, y1, in page 1's user space) of everything page 1's content draws:
    each letter, image, line and shape (white-filled shapes without an outline, such as a page's
    background, are blank paper). None when the page cannot be read, paints a shading (``sh``:
    its extent is the clipping path, not followed here), or reading it would take more than
    ``limit`` decoded bytes of content (MAX_CONTENT), or more fonts, marks or time than the
    budget: then no place on it is known to be free."""
    from pdfminer.converter import PDFPageAggregator
    from pdfminer.layout import LTChar, LTContainer, LTCurve, LTItem, LTPage
    from pdfminer.pdfdocument import PDFDocument
    from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
    from pdfminer.pdfpage import PDFPage
    from pdfminer.pdfparser import PDFParser
    from pdfminer.pdftypes import dict_value, list_value, stream_value
    from pdfminer.utils import MATRIX_IDENTITY

    budget = _Budget(MAX_CONTENT if limit is None else limit)

    class Aggregator(PDFPageAggregator):
        def render_char(self, *args: Any, **kwargs: Any) -> float:
            budget.mark()
            return super().render_char(*args, **kwargs)

        def paint_path(self, *args: Any, **kwargs: Any) -> None:
            budget.mark()
            super().paint_path(*args, **kwargs)

        def render_image(self, *args: Any, **kwargs: Any) -> None:
            budget.mark()
            super().render_image(*args, **kwargs)

    class Interpreter(PDFPageInterpreter):     # forms get their own (``dup``): the same budget
        def render_contents(self, resources: Any, streams: Any, ctm: Any = MATRIX_IDENTITY) -> None:
            for s in list_value(streams):
                budget.charge(stream_value(s), "content")
            super().render_contents(resources, streams, ctm=ctm)

        def init_resources(self, resources: Any) -> None:
            fonts = dict_value(resources).get("Font") if resources else None
            for spec in (dict_value(fonts).values() if fonts else ()):
                for strm in _font_streams(spec):
                    budget.charge(strm, "fonts")
            super().init_resources(resources)

        def push(self, obj: Any) -> None:
            budget.tick()
            super().push(obj)

        def do_sh(self, name: Any) -> None:    # a shading fills the clipping path, which is not followed:
            raise _TooBig("shading")           # where it paints is not known

    try:
        doc = PDFDocument(PDFParser(io.BytesIO(data)))
        page = next(iter(PDFPage.create_pages(doc)), None)
        if page is None:
            return None
        device = Aggregator(PDFResourceManager(caching=True), laparams=None)
        Interpreter(device.rsrcmgr, device).process_page(page)
        layout_page = device.get_result()
        x0, y0, x1, y1 = (float(v) for v in page.mediabox)
        to_user = _invert(_device_matrix((x0, y0, x1, y1), page.rotate))
    except Exception:  # noqa: BLE001 - too big, or whatever pdfminer cannot read: no place is known to be free
        return None
    out: list[Box] = []

    def visit(item: LTItem) -> None:
        if isinstance(item, LTContainer):
            children = list(item)
            for child in children:
                visit(child)
            if children or isinstance(item, LTPage):
                return
        if not hasattr(item, "bbox"):
            return
        across = up = 0.0
        if isinstance(item, LTCurve):
            if item.fill and not item.stroke and _white(item.non_stroking_color):
                return
            across = up = item.linewidth / 2 if item.stroke else 0.0
        elif isinstance(item, LTChar):   # its box is one em tall from the font's descent: Thai vowels
            up = 0.35 * item.size        # and tone marks reach about a third of an em above and below it
            across = 0.15 * item.size if item.upright else up
        x0, y0, x1, y1 = item.bbox
        out.append(_map_box(to_user, (x0 - across, y0 - up, x1 + across, y1 + up)))

    visit(layout_page)
    return out


def _font_streams(spec: Any, depth: int = 0) -> Iterator[Any]:
    """The streams pdfminer decodes to read a font: its maps and its embedded font file."""
    from pdfminer.pdftypes import PDFStream, resolve1

    spec = resolve1(spec)
    if not isinstance(spec, dict):
        return
    found = [spec.get("ToUnicode"), spec.get("Encoding")]
    descriptor = resolve1(spec.get("FontDescriptor"))
    if isinstance(descriptor, dict):
        found += [descriptor.get(k) for k in ("FontFile", "FontFile2", "FontFile3")]
    for value in found:
        value = resolve1(value)
        if isinstance(value, PDFStream):
            yield value
    descendants = resolve1(spec.get("DescendantFonts"))
    if depth == 0 and isinstance(descendants, list):
        for kid in descendants[:4]:
            yield from _font_streams(kid, 1)


def _white(color: object) -> bool:
    values = color if isinstance(color, (list, tuple)) else (color,)
    try:
        nums = [float(v) for v in values]
    except (TypeError, ValueError):
        return False
    return bool(nums) and (all(v >= 0.99 for v in nums) if len(nums) in (1, 3) else all(v <= 0.01 for v in nums))


def annotation_boxes(page: Any) -> list[Box] | None:
    """The boxes (user space) of page 1's annotations a viewer may show over the page (form
    fields, notes, links); None when they cannot be read or there are too many."""
    try:
        annots = page.get("/Annots")
        if annots is None:
            return []
        annots = annots.get_object() if hasattr(annots, "get_object") else annots
        if len(annots) > MAX_ANNOTS:
            return None
        out: list[Box] = []
        for ref in annots:
            annot = ref.get_object() if hasattr(ref, "get_object") else ref
            flags = int(annot.get("/F", 0) or 0)
            if flags & (2 | 32) or annot.get("/Subtype") == "/Popup":    # hidden, no view; popups open on demand
                continue
            rect = annot.get("/Rect")
            if rect is None:
                continue
            x0, y0, x1, y1 = (float(v) for v in rect)
            out.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        return out
    except Exception:  # noqa: BLE001 - annotations that cannot be read: no place is known to be free
        return None


# ---------------------------------------------------------------------------- where the stamp goes

def free_spot(boxes: list[Box], page_width: float, page_height: float, width: float, height: float
              ) -> tuple[float, float] | None:
    """Where the stamp's lower-left corner goes (the shown frame; ``boxes``: the page's marks in
    it): the free place nearest the top-right corner, at least MARGIN from every edge, within
    the upper third and the right two-thirds of the page, CLEARANCE away from every mark; None
    when there is none."""
    left_limit, low_limit = page_width / 3, page_height * 2 / 3
    top, right = page_height - MARGIN - height, page_width - MARGIN - width
    if top < low_limit or right < left_limit:
        return None                      # a page too small for the stamp and its margins
    near = [b for b in boxes if b[2] > left_limit - CLEARANCE and b[3] > low_limit - CLEARANCE
            and b[0] < page_width and b[1] < page_height]
    best: tuple[float, float, float] | None = None
    rows = int((top - low_limit) / STEP + 1e-9)
    for i in range(rows + 1):
        y = top - i * STEP
        if best is not None and top - y >= best[0]:
            break
        # along the row: the places each mark rules out, merged, walked from the right
        ruled_out = sorted((b[0] - CLEARANCE - width, b[2] + CLEARANCE) for b in near
                           if b[1] < y + height + CLEARANCE and b[3] > y - CLEARANCE)
        merged: list[list[float]] = []
        for lo, hi in ruled_out:
            if merged and lo < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        x = right
        for lo, hi in reversed(merged):
            if hi <= x:
                break
            x = min(x, lo)
        if x >= left_limit:
            cost = (top - y) + (right - x)
            if best is None or cost < best[0]:
                best = (cost, x, y)
    return (best[1], best[2]) if best is not None else None


def _add_band(writer: Any, page: Any, view: PageView, height: float) -> tuple[PageView, Box]:
    """Page 1 made taller, as shown, by a band above its top edge for the stamp (its media box,
    and its crop box when it has one); the page's own content is not moved. Returns the new
    view and the band (in the new view's frame)."""
    from pyhanko.pdf_utils import generic

    band = float(math.ceil(BAND_GAP + height + MARGIN))   # whole points: the page's marks keep their pixel grid
    x0, y0, x1, y1 = view.box
    grown = {0: (x0, y0, x1, y1 + band), 90: (x0 - band, y0, x1, y1),
             180: (x0, y0 - band, x1, y1), 270: (x0, y0, x1 + band, y1)}[view.rotate]
    m = view.media
    media = (min(m[0], grown[0]), min(m[1], grown[1]), max(m[2], grown[2]), max(m[3], grown[3]))
    page["/MediaBox"] = generic.ArrayObject(generic.FloatObject(v) for v in media)
    if view.cropped:
        page["/CropBox"] = generic.ArrayObject(generic.FloatObject(v) for v in grown)
    writer.update_container(page)
    new = PageView(media, grown, view.cropped, view.rotate)
    return new, (0.0, view.height, new.width, new.height)


def _paint(writer: Any, stamp_ref: Any, view: PageView, spot: tuple[float, float], band: Box | None) -> None:
    """The stamp (a form XObject) drawn upright at ``spot`` of the shown frame, after the page's own
    content and outside its graphics state; an added band painted white first, so that nothing
    the page drew beyond its old edges shows in it."""
    from pyhanko.pdf_utils import generic

    name = "/Stamp" + uuid.uuid4().hex
    ops = [b"q " + b" ".join(_num(v) for v in view.to_user) + b" cm"]
    if band is not None:
        ops.append(b"q 1 1 1 rg %s %s %s %s re f Q" % tuple(_num(v) for v in (band[0], band[1], band[2] - band[0],
                                                                                band[3] - band[1])))
    ops.append(b"1 0 0 1 %s %s cm %s Do Q" % (_num(spot[0]), _num(spot[1]), name.encode("ascii")))
    resources = generic.DictionaryObject({generic.pdf_name("/XObject"): generic.DictionaryObject(
        {generic.pdf_name(name): stamp_ref})})
    writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(stream_data=b"q")), prepend=True)
    writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(stream_data=b"Q")))
    writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(stream_data=b" ".join(ops))), resources)


def _num(v: float) -> bytes:
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return (text if text not in ("-0", "") else "0").encode("ascii")


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
