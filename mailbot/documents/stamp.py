"""Docstamp: the receipt stamp (ตรารับ) on a received PDF document — a stamped copy, never the original.

Owns: the stamp as the Sarabun regulation draws it (a box about 5 x 2.5 cm: the agency's name,
เลขรับ, วันที่, เวลา) in the top-right corner of page 1, added by pyHanko as an incremental
update (the original bytes stay byte for byte at the front of the copy; the caller keeps the
original file as well), on a white ground so the stamp stays readable over a scan; and doing it
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
LEADING = 14
WIDTH, HEIGHT = 142.0, 80.0      # points: about 5 x 2.8 cm
PADDING = 6
MARGIN = 10.0                    # from the page's top and right edges
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

    _pages, (x0, y0, x1, y1) = first_page(open_pdf(data), max_pages)
    width = min(WIDTH, x1 - x0 - 2 * 4)
    height = min(HEIGHT, y1 - y0 - 2 * 4)
    margin_x = min(MARGIN, (x1 - x0 - width) / 2)
    margin_y = min(MARGIN, (y1 - y0 - height) / 2)
    lines = stamp_lines(agency, receipt, when)
    white = content.RawContent(b"1 1 1 rg 0 0 %g %g re f" % (width, height),
                               box=layout.BoxConstraints(width=width, height=height))
    style = TextStampStyle(
        stamp_text="\n".join(line.replace("%", "%%") for line in lines),
        text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(str(FONT), font_size=FONT_SIZE),
                                    font_size=FONT_SIZE, leading=LEADING, box_layout_rule=None),
        border_width=1,
        background=white,
        background_opacity=0.85,       # readable over a scan, the page still faintly shows
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MIN, y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(left=PADDING + 2, right=PADDING, top=2, bottom=2),
            inner_content_scaling=layout.InnerScaling.NO_SCALING),
        background_layout=layout.SimpleBoxLayoutRule(x_align=layout.AxisAlignment.ALIGN_MIN,
                                                     y_align=layout.AxisAlignment.ALIGN_MIN,
                                                     margins=layout.Margins(0, 0, 0, 0)),
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        stamp = TextStamp(writer, style, box=layout.BoxConstraints(width=width, height=height))
        # pyHanko annotates x and y as ints but writes them as PDF reals: the stamp stays where measured
        stamp.apply(0, x1 - width - margin_x, y1 - height - margin_y)  # type: ignore[arg-type]
        out = io.BytesIO()
        writer.write(out)
    except BadPdf:
        raise
    except Exception as exc:  # noqa: BLE001 - the library choking on the file: a damaged file
        raise BadPdf(f"ไฟล์ PDF เสียหาย ประทับตรารับไม่ได้ / damaged PDF, cannot stamp it ({type(exc).__name__})") from None
    return out.getvalue()


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
