"""Where the receipt stamp (ตรารับ) goes: never over the applicant's own text or images, at least
1 cm from every edge, at the top right when it is free, in a band added above the page when it
is not (issue 26). Each sample is a real PDF made with fpdf2; the stamp and the page's words are
read back from the stamped copy with ``pdftotext -bbox`` (poppler), not from our own code."""
from __future__ import annotations

import html
import io
import re
import shutil
import subprocess
from datetime import datetime, timezone

import pytest
from fpdf import FPDF

from mailbot.documents import FONTS
from mailbot.documents.stamp import HEIGHT, MARGIN, WIDTH, stamp_pdf

IN_CI = __import__("os").environ.get("CI") == "true"
NOW = datetime(2026, 11, 27, 3, 42, tzinfo=timezone.utc)
AGENCY = "หน่วยทดสอบตรารับ"
CM = 28.35


def _pdf(draw, *, orientation: str = "P", fmt: str | tuple = "A4") -> bytes:  # type: ignore[no-untyped-def]
    pdf = FPDF(orientation=orientation, unit="pt", format=fmt)
    pdf.add_font("Sarabun", "", str(FONTS / "Sarabun-Regular.ttf"))
    pdf.set_font("Sarabun", size=14)
    pdf.set_text_shaping(True)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    draw(pdf)
    return bytes(pdf.output())


def full_top_right(pdf: FPDF) -> None:
    """A form whose top right is full: the form's code, the applicant's address and phone (the
    stamp goes below them, still in the upper third)."""
    lines = ["(แบบ ข.1)", "เลขที่ 12 หมู่ 3 ตำบลบ้านตัวอย่าง", "อำเภอเมือง จังหวัดเชียงใหม่ 50000",
             "โทร 081-234-5678 อีเมล somchai@example.com", "วันที่ 20 พฤศจิกายน 2569 เวลา 03:00 น."]
    for i, text in enumerate(lines):
        pdf.set_xy(pdf.w - 40 - pdf.get_string_width(text), 36 + i * 20)
        pdf.cell(text=text)
    pdf.set_xy(60, 330)
    pdf.multi_cell(w=pdf.w - 120, text="ข้าพเจ้าขออนุญาตก่อสร้างอาคาร " * 12)


def letter_on_the_left(pdf: FPDF) -> None:
    for i in range(20):
        pdf.set_xy(60, 60 + i * 22)
        pdf.cell(text=f"บรรทัดที่ {i + 1} ของคำร้อง ข้อความชิดซ้าย")


def full_top(pdf: FPDF) -> None:
    """Text across the whole upper third, edge to edge."""
    y = 20.0
    while y < pdf.h / 2.5:
        pdf.set_xy(20, y)
        pdf.cell(text="ข้อความเต็มบรรทัด " * 8)
        y += 18


def scan(pdf: FPDF) -> None:
    """A scanned page: one image over the whole page."""
    from PIL import Image

    img = Image.new("RGB", (200, 283), (235, 235, 225))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    buf.seek(0)
    pdf.image(buf, x=0, y=0, w=pdf.w, h=pdf.h)


def landscape_corner_logo(pdf: FPDF) -> None:
    """A landscape page with a filled box (a logo) in the very corner and a heading beside it."""
    pdf.set_fill_color(20, 60, 160)
    pdf.rect(pdf.w - 130, 20, 110, 60, style="F")
    pdf.set_xy(pdf.w - 400, 40)
    pdf.cell(text="ประกาศเทศบาลตำบลบ้านตัวอย่าง")


SAMPLES = {
    "full top right": (full_top_right, {}),
    "letter on the left": (letter_on_the_left, {}),
    "full top": (full_top, {}),
    "scan": (scan, {}),
    "landscape with a logo": (landscape_corner_logo, {"orientation": "L"}),
}


def bbox_words(data: bytes) -> tuple[tuple[float, float], list[tuple[str, float, float, float, float]]]:
    """(page width, height) and the words of page 1 as pdftotext -bbox reads them (top-left origin)."""
    if shutil.which("pdftotext") is None:
        assert not IN_CI, "CI must install poppler-utils"
        pytest.skip("pdftotext not installed here")
    out = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", "-", "-"], input=data, capture_output=True,
                         check=True).stdout.decode()
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', out)
    assert page
    words = [(html.unescape(m.group(5)), float(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4)))
             for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
                                  out)]
    return (float(page.group(1)), float(page.group(2))), words


@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_stamp_never_covers_the_page_and_keeps_off_the_edges(name):
    draw, kw = SAMPLES[name]
    original = _pdf(draw, **kw)
    stamped = stamp_pdf(original, agency=AGENCY, receipt="15/2569", when=NOW)
    assert stamped.startswith(original)                       # an incremental update: the original in front
    (w0, h0), before = bbox_words(original)
    (w, h), after = bbox_words(stamped)
    band = h - h0
    assert w == w0 and band >= 0
    # the page's own words are where they were (moved down by the band, if one was added); the
    # other words are the stamp's
    own, stamp = [], []
    for word in after:
        same = [b for b in before if b[0] == word[0] and abs(b[1] - word[1]) < 0.5 and abs(b[2] + band - word[2]) < 0.5]
        (own if same else stamp).append(word)
    assert len(own) == len(before)
    assert " ".join(s[0] for s in stamp) == (AGENCY + " เลขรับ 15/2569 วันที่ 27 พ.ย. 2569 เวลา 10:42 น."), stamp
    sx0, sy0 = min(s[1] for s in stamp), min(s[2] for s in stamp)
    sx1, sy1 = max(s[3] for s in stamp), max(s[4] for s in stamp)
    assert sx1 - sx0 < WIDTH and sy1 - sy0 < HEIGHT          # inside the 5 x 2.5 cm box
    # the whole box (its words lie inside it) keeps 1 cm from every edge
    assert sx0 > MARGIN - 1 and w - sx1 > MARGIN - 1 and sy0 > MARGIN - 1 and h - sy1 > MARGIN - 1
    assert sx0 > w / 2                                        # at the right
    for text, x0, y0, x1, y1 in own:
        overlaps = x0 < sx1 + 2 and x1 > sx0 - 2 and y0 < sy1 + 2 and y1 > sy0 - 2
        assert not overlaps, (text, (x0, y0, x1, y1), (sx0, sy0, sx1, sy1))
    expected_band = name in ("full top", "scan")
    assert (band > 0) == expected_band, (name, band)
    if band:                                                  # the stamp in the band, above the old top edge
        assert sy1 < band


def test_a_free_corner_is_used_as_it_is():
    """Nothing at the top right: the stamp sits 1 cm from the top and right edges, the page unchanged in size."""
    stamped = stamp_pdf(_pdf(letter_on_the_left), agency=AGENCY, receipt="15/2569", when=NOW)
    (w, h), words = bbox_words(stamped)
    stamp = [x for x in words if x[0].startswith("เลขรับ")]
    assert h == pytest.approx(841.89, abs=0.1) and stamp
    assert w - MARGIN - WIDTH < stamp[0][1] < w - MARGIN - WIDTH + 20 and stamp[0][2] < MARGIN + HEIGHT


def test_a_page_that_cannot_be_read_for_space_gets_the_band(monkeypatch):
    """When page 1's content is too big to read quickly (or unreadable), no place is known to be
    free: the band, never a guess."""
    from mailbot.documents import stamp

    monkeypatch.setattr(stamp, "MAX_CONTENT", 10)
    original = _pdf(letter_on_the_left)
    assert stamp.content_boxes(original, limit=10) is None
    (_, h0), _ = bbox_words(original)
    (_, h), _ = bbox_words(stamp.stamp_pdf(original, agency=AGENCY, receipt="15/2569", when=NOW))
    assert h > h0


def test_shapes_and_images_count_as_content_white_backgrounds_do_not():
    from mailbot.documents.stamp import content_boxes

    def background_and_logo(pdf: FPDF) -> None:
        pdf.set_fill_color(255, 255, 255)
        pdf.rect(0, 0, pdf.w, pdf.h, style="F")              # a white page background: blank paper
        pdf.set_fill_color(200, 0, 0)
        pdf.rect(400, 40, 100, 50, style="F")

    boxes = content_boxes(_pdf(background_and_logo))
    assert boxes is not None
    h = 841.89
    assert [tuple(round(v) for v in b) for b in boxes] == [(400, round(h - 90), 500, round(h - 40))]
    assert len(content_boxes(_pdf(scan)) or []) == 1
