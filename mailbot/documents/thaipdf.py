"""Thaipdf: fpdf2 drawing Thai text that copies and searches as it was written.

Owns: ``Pdf`` (A4 landscape with the bundled Sarabun, HarfBuzz shaping, ``text_line`` with an
ActualText span, measured widths kept) and the font fix it installs (``_ThaiFont``: sara am's
clusters and the marks' positions). Apart from ``printable`` so that fpdf2 loads only when a
PDF is drawn: a poll that writes only workbooks never imports it.
"""
from __future__ import annotations

import unicodedata

from fpdf import FPDF
from fpdf.fonts import TTFFont

from . import FONTS


class _Glyph:
    __slots__ = ("codepoint", "cluster")

    def __init__(self, codepoint: int, cluster: int) -> None:
        self.codepoint, self.cluster = codepoint, cluster


class _Position:
    __slots__ = ("x_advance", "y_advance", "x_offset", "y_offset", "position")

    def __init__(self, p, nudge: int = 0) -> None:
        self.x_advance, self.y_advance = p.x_advance, p.y_advance
        self.x_offset, self.y_offset = p.x_offset - nudge, p.y_offset
        self.position = (self.x_advance, self.y_advance, self.x_offset, self.y_offset)   # as HarfBuzz's has it


MARK_NUDGE = 5   # font units (1/1000 em): invisible, and more than the 0.01 pt fpdf2 rounds positions to


class _ThaiFont(TTFFont):
    """fpdf2's font, drawing the same, with text that copies and searches as it was written.

    - HarfBuzz draws sara am (ำ) as nikhahit + sara aa, one cluster; fpdf2 gives the cluster's
      text to its first glyph (the zero-width nikhahit) and none to sara aa, so text extraction
      reads a gap: "ตำ บล", "ดำ เนินการ". Here each spacing glyph of such a cluster carries the
      spacing character it draws and the marks carry the rest.
    - A zero-width mark sits where the next letter starts; after fpdf2 rounds positions it may
      sit a hair after it, and extraction puts the mark behind the next letter ("การปฏิบตัิ").
      Marks are moved left by MARK_NUDGE font units.
    """

    __slots__ = ()

    def perform_harfbuzz_shaping(self, text, font_size_pt, text_shaping_params):
        infos, positions = super().perform_harfbuzz_shaping(text, font_size_pt, text_shaping_params)
        positions = [_Position(p, MARK_NUDGE if p.x_advance == 0 and k else 0) for k, p in enumerate(positions)]
        clusters = [int(g.cluster) for g in infos]
        if len(set(clusters)) == len(clusters) or clusters != sorted(clusters):
            return infos, positions          # nothing to do, or not simple left-to-right
        starts = sorted(set(clusters)) + [len(text)]
        new = clusters[:]
        i = 0
        while i < len(infos):
            j = i
            while j + 1 < len(infos) and clusters[j + 1] == clusters[i]:
                j += 1
            if j > i:
                c = clusters[i]
                end = starts[starts.index(c) + 1]
                chars = [k for k in range(c, end) if unicodedata.category(text[k]) not in ("Mn", "Me")]
                spacing = [k for k in range(i, j + 1) if positions[k].x_advance > 0]
                if chars and len(chars) == len(spacing):
                    for k, ch in zip(spacing, chars):
                        new[k] = ch
                    rest = c if c not in chars else -1       # the marks before the first spacing character
                    for k in range(i, j + 1):
                        if k not in spacing:
                            new[k], rest = rest, -1
            i = j + 1
        if new == clusters:
            return infos, positions
        return [_Glyph(g.codepoint, c) for g, c in zip(infos, new)], positions


class Pdf(FPDF):
    """A4 landscape with Sarabun; text drawn by ``text_line`` carries its own words for copying
    and searching (an ActualText span): a viewer that orders letters by where they are drawn
    otherwise reads Sarabun's shifted marks out of order ("ต้ัง" for "ตั้ง", "ฝั่ ง")."""

    def __init__(self, font: str, margin_x: float, margin_y: float) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.add_font(font, "", str(FONTS / "Sarabun-Regular.ttf"))
        self.add_font(font, "B", str(FONTS / "Sarabun-Bold.ttf"))
        for loaded in self.fonts.values():
            if type(loaded) is TTFFont and hasattr(TTFFont, "perform_harfbuzz_shaping"):
                loaded.__class__ = _ThaiFont
        self.set_text_shaping(True)
        self.set_auto_page_break(False)
        self.alias_nb_pages("")              # we know the page count before we draw ("" or None: off)
        self.set_margins(margin_x, margin_y, margin_x)
        self._widths: dict[tuple[str, str], float] = {}

    def text_line(self, w: float, h: float, text: str, align: str = "L") -> None:
        """One line of text in a cell of ``w`` x ``h`` at the current position."""
        self._out(f"/Span <</ActualText <FEFF{text.encode('utf-16-be').hex().upper()}>>> BDC")
        self.cell(w, h, text, align=align)
        self._out("EMC")

    def measure(self, text: str) -> float:
        """``text``'s width (mm) in the current font: shaped widths grow with the size, so they
        are kept per point and a table laid out at several sizes shapes each word once."""
        key = (self.font_style, text)
        w = self._widths.get(key)
        if w is None:
            w = self._widths[key] = self.get_string_width(text) / self.font_size_pt
        return w * self.font_size_pt
