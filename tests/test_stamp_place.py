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


def reframe(data: bytes, *, rotate: int = 0, origin: tuple[float, float] = (0, 0), crop: float = 0,
            hidden: bool = False) -> bytes:
    """The same page as it is shown, made the way other producers make pages: its user space
    turned by /Rotate (the content drawn turned back, so that it shows as before), its box moved
    to ``origin``, and with ``crop`` > 0 a media box that much larger on every side than the
    crop box (``hidden``: a red bar drawn above the crop box, which no viewer shows)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    node = page
    while "/MediaBox" not in node:                                # fpdf2 puts it on the page tree
        node = node["/Parent"]
    w, h = (float(v) for v in list(node["/MediaBox"])[2:])
    ux, uy = (h, w) if rotate in (90, 270) else (w, h)           # the user-space box's size
    x0, y0 = origin
    x1, y1 = x0 + ux, y0 + uy
    cm = {0: (1, 0, 0, 1, x0, y0), 90: (0, 1, -1, 0, x1, y0), 180: (-1, 0, 0, -1, x1, y1),
          270: (0, -1, 1, 0, x0, y1)}[rotate]                     # shown frame -> user space
    media = (x0 - crop, y0 - crop, x1 + crop, y1 + crop)
    page["/MediaBox"] = generic.ArrayObject(generic.FloatObject(v) for v in media)
    if crop:
        page["/CropBox"] = generic.ArrayObject(generic.FloatObject(v) for v in (x0, y0, x1, y1))
    if rotate:
        page["/Rotate"] = generic.NumberObject(rotate)
    writer.update_container(page)
    before = b"q " + " ".join(f"{v:g}" for v in cm).encode() + b" cm"
    after = (b"0.9 0 0 rg 0 %g %g %g re f Q" % (h + 4, w, crop - 8)) if hidden else b"Q"
    writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(stream_data=before)), prepend=True)
    writer.add_stream_to_page(0, writer.add_object(generic.StreamObject(stream_data=after)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def free_text_note(pdf: FPDF) -> None:
    """A letter with a note (a FreeText annotation, drawn by the viewer, not in the page's content)
    in the top-right corner."""
    letter_on_the_left(pdf)
    pdf.set_font_size(10)
    pdf.free_text_annotation("Note: more documents sent on 20/11/2569", x=pdf.w - 200, y=30, w=170, h=60)


# name: (drawing, fpdf2 page options, reframe options, a band expected)
SAMPLES = {
    "full top right": (full_top_right, {}, {}, False),
    "letter on the left": (letter_on_the_left, {}, {}, False),
    "full top": (full_top, {}, {}, True),
    "scan": (scan, {}, {}, True),
    "landscape with a logo": (landscape_corner_logo, {"orientation": "L"}, {}, False),
    "rotated 90, origin off zero": (full_top_right, {"orientation": "L"}, {"rotate": 90, "origin": (-200, 300)}, False),
    "cropped, origin off zero": (letter_on_the_left, {}, {"origin": (150, -120), "crop": 40}, False),
    "cropped full top, marks hidden above": (full_top, {}, {"origin": (35, 50), "crop": 40, "hidden": True}, True),
    "rotated 270 scan": (scan, {"orientation": "L"}, {"rotate": 270}, True),
    "rotated 180 form": (full_top_right, {}, {"rotate": 180, "origin": (10, 20)}, False),
    "a note in the corner": (free_text_note, {}, {}, False),
}


def sample(name: str) -> bytes:
    draw, page, frame, _band = SAMPLES[name]
    data = _pdf(draw, **page)
    return reframe(data, **frame) if frame else data


def bbox_words(data: bytes) -> tuple[tuple[float, float], list[tuple[str, float, float, float, float]]]:
    """(page width, height, before /Rotate) and the words of page 1 as pdftotext -bbox reads them
    (the page as shown: its crop box, turned by /Rotate; top-left origin)."""
    if shutil.which("pdftotext") is None:
        assert not IN_CI, "CI must install poppler-utils"
        pytest.skip("pdftotext not installed here")
    out = subprocess.run(["pdftotext", "-cropbox", "-bbox", "-f", "1", "-l", "1", "-", "-"], input=data,
                         capture_output=True, check=True).stdout.decode()
    page = re.search(r'<page width="([\d.]+)" height="([\d.]+)"', out)
    assert page
    words = [(html.unescape(m.group(5)), float(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4)))
             for m in re.finditer(r'<word xMin="([-\d.]+)" yMin="([-\d.]+)" xMax="([-\d.]+)" yMax="([-\d.]+)">'
                                  r'([^<]*)</word>', out)]
    return (float(page.group(1)), float(page.group(2))), words


def render(data: bytes):  # type: ignore[no-untyped-def]
    """Page 1 as shown (crop box, /Rotate), at 72 dpi: one pixel a point. Greyscale PIL image."""
    from PIL import Image

    if shutil.which("pdftoppm") is None:
        assert not IN_CI, "CI must install poppler-utils"
        pytest.skip("pdftoppm not installed here")
    out = subprocess.run(["pdftoppm", "-cropbox", "-r", "72", "-gray", "-f", "1", "-l", "1", "-"], input=data,
                         capture_output=True, check=True).stdout
    return Image.open(io.BytesIO(out)).convert("L")


def stamp_box(original: bytes, stamped: bytes, band: int) -> tuple[int, int, int, int]:
    """The stamp's box as it shows (pixels = points, top-left origin, right and bottom exclusive),
    read from the renders: the pixels that differ from the original page (moved down by the band),
    and whatever is not white in the band. Everything else must be as it was."""
    from PIL import Image, ImageChops

    before, after = render(original), render(stamped)
    assert after.width == before.width and abs(after.height - before.height - band) <= 1
    placed = Image.new("L", after.size, 255)
    placed.paste(before, (0, band))
    changed = ImageChops.difference(after, placed).point(lambda v: 255 if v > 48 else 0)
    box = changed.getbbox()
    assert box is not None
    return box


def stamp_lines_read(stamped: bytes, box: tuple[int, int, int, int]) -> list[str]:
    """The lines pdftotext reads (its own grouping of words into lines) inside ``box``."""
    out = subprocess.run(["pdftotext", "-cropbox", "-bbox-layout", "-f", "1", "-l", "1", "-", "-"], input=stamped,
                         capture_output=True, check=True).stdout.decode()
    bx0, by0, bx1, by1 = box
    lines = []
    for line in re.finditer(r'<line xMin="([-\d.]+)" yMin="([-\d.]+)" xMax="([-\d.]+)" yMax="([-\d.]+)">(.*?)</line>',
                            out, re.DOTALL):
        x0, y0, x1, y1 = (float(line.group(i)) for i in range(1, 5))
        if bx0 <= x0 and x1 <= bx1 and by0 <= y0 and y1 <= by1:
            lines.append(" ".join(html.unescape(w) for w in re.findall(r">([^<]*)</word>", line.group(5))))
    return lines


@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_stamp_never_covers_the_page_and_keeps_off_the_edges(name):
    original = sample(name)
    stamped = stamp_pdf(original, agency=AGENCY, receipt="15/2569", when=NOW)
    assert stamped.startswith(original)                       # an incremental update: the original in front
    shown_before, shown = render(original), render(stamped)  # the page as shown (pdftotext -bbox gives its
    w, h = shown.size                                         # size before /Rotate)
    band = shown.height - shown_before.height
    assert w == shown_before.width and band >= 0
    assert (band > 0) == SAMPLES[name][3], (name, band)      # a band only where the top is full
    _, before = bbox_words(original)
    _, after = bbox_words(stamped)
    # the page's own words are where they were (moved down by the band, if one was added); the
    # other words are the stamp's
    own, stamp = [], []
    for word in after:
        same = [b for b in before if b[0] == word[0] and abs(b[1] - word[1]) < 0.5 and abs(b[2] + band - word[2]) < 0.5]
        (own if same else stamp).append(word)
    assert len(own) == len(before)
    assert " ".join(s[0] for s in stamp) == (AGENCY + " เลขรับ 15/2569 วันที่ 27 พ.ย. 2569 เวลา 10:42 น."), stamp

    # the box as it shows: upright, 5 x 2.5 cm, 1 cm or more from every edge, in the right two-thirds
    bx0, by0, bx1, by1 = box = stamp_box(original, stamped, band)
    assert abs((bx1 - bx0) - WIDTH) <= 2 and abs((by1 - by0) - HEIGHT) <= 2, box
    assert bx0 >= MARGIN - 1 and w - bx1 >= MARGIN - 1 and by0 >= MARGIN - 1 and h - by1 >= MARGIN - 1, box
    assert bx0 >= w / 3
    # its words inside it, read by pdftotext as the stamp's four lines, and seen: dark on white
    assert all(bx0 <= s[1] and s[3] <= bx1 and by0 <= s[2] and s[4] <= by1 for s in stamp), stamp
    assert stamp_lines_read(stamped, box) == [AGENCY, "เลขรับ 15/2569", "วันที่ 27 พ.ย. 2569", "เวลา 10:42 น."]
    inside = shown.crop((bx0 + 3, by0 + 3, bx1 - 3, by1 - 3))
    assert sum(1 for v in inside.tobytes() if v < 128) > 150, "the stamp's text is not seen"
    # over none of the page's own words (pdftotext's boxes of the original), 2 points clear
    for word, x0, y0, x1, y1 in before:
        y0, y1 = y0 + band, y1 + band
        assert not (x0 < bx1 + 2 and x1 > bx0 - 2 and y0 < by1 + 2 and y1 > by0 - 2), (word, (x0, y0, x1, y1))
    # nor over anything else the page shows: blank paper under it (and 2 points around it) in the original
    if by1 + 2 > band:
        area = shown_before.crop((bx0 - 2, by0 - 2 - band, bx1 + 2, by1 + 2 - band))
        assert area.getextrema()[0] >= 250, name
    if band:                                                  # the stamp in the band, above the old top edge
        assert by1 <= band


def test_a_note_in_the_corner_is_left_clear():
    """An annotation (here a FreeText note; form fields likewise) is drawn by the viewer over the
    page: the stamp keeps clear of its rectangle too."""
    original = sample("a note in the corner")
    stamped = stamp_pdf(original, agency=AGENCY, receipt="15/2569", when=NOW)
    bx0, by0, bx1, by1 = stamp_box(original, stamped, 0)
    w = 595.28
    nx0, ny0, nx1, ny1 = w - 200, 30, w - 30, 90             # where free_text_note put it (top-left origin)
    assert not (nx0 < bx1 and nx1 > bx0 and ny0 < by1 and ny1 > by0), ((bx0, by0, bx1, by1), (nx0, ny0, nx1, ny1))


def test_a_long_name_takes_two_lines_inside_the_box():
    """"องค์การบริหารส่วนตำบล..." does not fit one line of the stamp: it is broken between words
    onto two, and the five lines stay inside the 5 x 2.5 cm box."""
    agency = "องค์การบริหารส่วนตำบลบ้านตัวอย่าง"
    original = sample("full top right")
    stamped = stamp_pdf(original, agency=agency, receipt="12345/2569", when=NOW)
    box = stamp_box(original, stamped, 0)
    assert abs((box[2] - box[0]) - WIDTH) <= 2 and abs((box[3] - box[1]) - HEIGHT) <= 2, box
    lines = stamp_lines_read(stamped, box)
    assert len(lines) == 5 and "".join(lines[:2]) == agency and lines[2:] == [
        "เลขรับ 12345/2569", "วันที่ 27 พ.ย. 2569", "เวลา 10:42 น."], lines
    _, before = bbox_words(original)
    _, after = bbox_words(stamped)
    added = [w for w in after if w not in before]
    assert added and all(box[0] <= w[1] and w[3] <= box[2] and box[1] <= w[2] and w[4] <= box[3] for w in added), added


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


def test_a_page_too_heavy_to_read_gets_the_band_without_unpacking_it():
    """Page 1 with a content stream of 40 KB in the file that unpacks to 40 MB: the free-space
    reading learns that without unpacking it (its budget is MAX_CONTENT decoded bytes), and the
    stamp goes in the band, at once."""
    import time

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    from mailbot.documents.stamp import content_boxes

    writer = IncrementalPdfFileWriter(io.BytesIO(_pdf(letter_on_the_left)), strict=False)
    heavy = generic.StreamObject(stream_data=b" " * 40_000_000)
    heavy.compress()
    writer.add_stream_to_page(0, writer.add_object(heavy))
    out = io.BytesIO()
    writer.write(out)
    original = out.getvalue()
    assert len(original) < 100_000
    started = time.monotonic()
    assert content_boxes(original) is None
    stamped = stamp_pdf(original, agency=AGENCY, receipt="15/2569", when=NOW)
    assert time.monotonic() - started < 5
    assert stamped.startswith(original)
    assert render(stamped).height - render(original).height > HEIGHT


def test_a_shading_is_not_guessed_at():
    """A gradient painted with ``sh`` fills whatever the clipping path leaves, which the reading
    does not follow: no place on the page is known to be free, and the stamp goes in the band."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    from mailbot.documents.stamp import content_boxes

    writer = IncrementalPdfFileWriter(io.BytesIO(_pdf(letter_on_the_left)), strict=False)
    name = generic.NameObject
    shading = generic.DictionaryObject({
        name("/ShadingType"): generic.NumberObject(2), name("/ColorSpace"): name("/DeviceRGB"),
        name("/Coords"): generic.ArrayObject([generic.NumberObject(v) for v in (400, 0, 580, 0)]),
        name("/Function"): generic.DictionaryObject({
            name("/FunctionType"): generic.NumberObject(2), name("/N"): generic.NumberObject(1),
            name("/Domain"): generic.ArrayObject([generic.NumberObject(0), generic.NumberObject(1)]),
            name("/C0"): generic.ArrayObject([generic.FloatObject(v) for v in (0.2, 0.4, 0.8)]),
            name("/C1"): generic.ArrayObject([generic.FloatObject(v) for v in (1, 1, 1)])})})
    banner = generic.StreamObject(stream_data=b"q 400 760 180 60 re W n /Sh1 sh Q")     # a banner at the top right
    writer.add_stream_to_page(0, writer.add_object(banner), generic.DictionaryObject(
        {name("/Shading"): generic.DictionaryObject({name("/Sh1"): shading})}))
    out = io.BytesIO()
    writer.write(out)
    original = out.getvalue()
    assert content_boxes(original) is None
    stamped = stamp_pdf(original, agency=AGENCY, receipt="15/2569", when=NOW)
    box = stamp_box(original, stamped, render(stamped).height - render(original).height)
    assert box[3] <= render(stamped).height - render(original).height     # in the band


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
