"""Sign: a PDF made trustworthy with the agency certificate (PAdES), in memory.

Owns: checking a PDF before anything else reads it (a page-tree walk with depth, visit and
page-count limits, page boxes checked, every parser failure turned into BadPdf with a Thai +
English reason); signing under a wall-clock limit in a helper process (``bounded``), so a file
that makes the PDF library loop is set aside instead of holding the cycle; the visible stamp
(agency name, "ลงนามด้วยลายมือชื่ออิเล็กทรอนิกส์", signer, certificate name, Thai date-time) in
the bundled Sarabun font, embedded, with a leading of 1.9x the size so Thai marks do not
collide, transparent with a thin border, long names cut between whole Thai characters; on a
letter it fills the empty signature field the letter carries (``letters`` puts it in the
signature space), elsewhere it sits in the bottom-right corner of the last page; the PAdES
level actually reached (B-T when a timestamp server answered, else B-B — never claimed
higher than what is in the file); and a later document timestamp for files signed while the
TSA was away.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.stamp import TextStampStyle

from ..thai import arabic_to_thai_digits, cut, thai_datetime
from . import FONTS
from . import limits as bounded

FONT = FONTS / "Sarabun-Regular.ttf"
FONT_SIZE = 9
LEADING = round(FONT_SIZE * 1.9)
SIGNED_TEXT = "ลงนามด้วยลายมือชื่ออิเล็กทรอนิกส์"
FIELD_NAME = "mailbot-signature"
STAMP_WIDTH = 250           # points, on a page without a signature field
STAMP_PADDING = 10          # pyHanko's text box margin, each side
# limits of the page-tree walk: real documents stay far below them
MAX_DEPTH = 32
MAX_NODES = 100_000
MAX_PAGES = 20_000
MAX_SIDE = 14_400           # points (200 inches): the largest page PDF allows
DEFAULT_TIMEOUT = 120.0     # seconds for one file (signing.timeout_seconds)


class BadPdf(Exception):
    """Not a PDF, encrypted, or damaged; the message says which (Thai / English)."""


@dataclass(frozen=True)
class Signed:
    data: bytes
    level: str          # "B-B" or "B-T"
    pages: int


@dataclass(frozen=True)
class PageTree:
    pages: int
    first_box: tuple[float, float, float, float]
    last_box: tuple[float, float, float, float]


def _damaged(exc: BaseException | None = None, what_th: str = "อ่านไม่ได้", what_en: str = "unreadable") -> BadPdf:
    detail = f", {type(exc).__name__}" if exc is not None else ""
    return BadPdf(f"ไฟล์ PDF เสียหาย {what_th} / damaged PDF ({what_en}{detail})")


def open_pdf(data: bytes) -> PdfFileReader:
    """A reader over the bytes, or BadPdf (not a PDF, damaged, encrypted)."""
    if not data.lstrip()[:5] == b"%PDF-":
        raise BadPdf("ไม่ใช่ไฟล์ PDF / not a PDF file")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a damaged file
        raise _damaged(exc) from None
    if reader.encrypted:
        raise BadPdf("ไฟล์ PDF ถูกเข้ารหัส (ตั้งรหัสผ่าน) ลงนามไม่ได้ / the PDF is encrypted")
    return reader


def _box(node: generic.DictionaryObject, inherited: object) -> object:
    try:
        return node.get("/MediaBox", inherited) if hasattr(node, "get") else inherited
    except Exception:  # noqa: BLE001
        return None


def _check_box(value: object) -> tuple[float, float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise BadPdf("ไฟล์ PDF เสียหาย ขนาดหน้ากระดาษ (MediaBox) ไม่ถูกต้อง / damaged PDF (bad MediaBox)")
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
    except (TypeError, ValueError, ArithmeticError):
        raise BadPdf("ไฟล์ PDF เสียหาย ขนาดหน้ากระดาษ (MediaBox) ไม่ใช่ตัวเลข / damaged PDF (MediaBox "
                     "is not numbers)") from None
    x0, x1 = min(x0, x1), max(x0, x1)
    y0, y1 = min(y0, y1), max(y0, y1)
    finite = all(math.isfinite(v) for v in (x0, y0, x1, y1))
    if not finite or not (3 <= x1 - x0 <= MAX_SIDE and 3 <= y1 - y0 <= MAX_SIDE):
        raise BadPdf("ไฟล์ PDF เสียหาย ขนาดหน้ากระดาษ (MediaBox) เป็นไปไม่ได้ / damaged PDF (impossible page size)")
    return x0, y0, x1, y1


def _count(node: generic.DictionaryObject) -> int:
    try:
        value = node.get("/Count")
    except Exception:  # noqa: BLE001
        value = None
    if not isinstance(value, int) or isinstance(value, bool) or not (0 <= value <= MAX_PAGES):
        raise BadPdf(f"ไฟล์ PDF เสียหาย จำนวนหน้า (/Count) ไม่ถูกต้อง หรือเกิน {MAX_PAGES:,} หน้า / "
                     f"damaged PDF (bad or absurd page /Count: {str(value)[:20]})")
    return value


def _page_root(reader: PdfFileReader) -> tuple[generic.IndirectObject, generic.DictionaryObject]:
    """The page tree's root (its reference and its dictionary), or BadPdf."""
    try:
        root_ref = reader.root.raw_get("/Pages")
        root = root_ref.get_object() if isinstance(root_ref, generic.IndirectObject) else None
    except Exception:  # noqa: BLE001
        root = None
    if not isinstance(root, generic.DictionaryObject):
        raise _damaged(None, "ไม่มีสารบบหน้า (/Pages)", "no page tree")
    return root_ref, root


def _kid(kids: generic.ArrayObject, i: int, seen: set) -> tuple[generic.DictionaryObject, object]:
    """The i-th entry of /Kids (read once: a node seen before is a loop) and its /Type, or BadPdf."""
    ref = kids.raw_get(i)
    if not isinstance(ref, generic.IndirectObject):
        raise BadPdf("ไฟล์ PDF เสียหาย รายการหน้า (/Kids) มีค่าว่างหรือค่าที่ไม่ใช่หน้า / "
                     "damaged PDF (/Kids holds null or a direct object)")
    if ref.reference in seen:
        raise BadPdf("ไฟล์ PDF เสียหาย สารบบหน้าวนกลับมาที่เดิม / damaged PDF (the page tree refers to itself)")
    seen.add(ref.reference)
    try:
        kid = ref.get_object()
        kind = kid.get("/Type") if isinstance(kid, generic.DictionaryObject) else None
    except Exception as exc:  # noqa: BLE001
        raise _damaged(exc, "อ่านหน้าไม่ได้", "unreadable page") from None
    return kid, kind


def walk_pages(reader: PdfFileReader) -> PageTree:
    """Walk the whole page tree with depth, visit and page limits; BadPdf when it is not sound.

    Catches what makes PDF libraries loop or crash: a tree that refers to itself, /Kids that is
    not an array or holds null or non-pages, missing or absurd /Count, bad or missing page boxes.
    """
    root_ref, root = _page_root(reader)
    total = _count(root)
    seen = {root_ref.reference}
    visits = 0
    boxes: list[tuple[float, float, float, float]] = []
    # (node, is a page, depth, inherited MediaBox): an explicit stack, depth-first in document
    # order, so neither recursion nor a loop in the file can run away
    stack: list[tuple[generic.DictionaryObject, bool, int, object]] = [(root, False, 0, _box(root, None))]
    while stack:
        node, leaf, depth, inherited = stack.pop()
        visits += 1
        if visits > MAX_NODES:
            raise BadPdf(f"ไฟล์ PDF มีโครงสร้างหน้าเกิน {MAX_NODES:,} ส่วน / the page tree is too large")
        if leaf:
            if len(boxes) >= total:
                raise BadPdf(f"ไฟล์ PDF เสียหาย จำนวนหน้า (/Count {total}) ไม่ตรงกับหน้าที่มีจริง / damaged PDF "
                             f"(/Count {total} does not match the pages found)")
            box = _check_box(_box(node, inherited))
            try:
                crop = node.get("/CropBox")
            except Exception:  # noqa: BLE001
                crop = None
            boxes.append(_check_box(crop) if crop is not None else box)
            continue
        if depth > MAX_DEPTH:
            raise BadPdf(f"ไฟล์ PDF เสียหาย สารบบหน้าซ้อนลึกเกิน {MAX_DEPTH} ชั้น / damaged PDF (page tree "
                         f"nested deeper than {MAX_DEPTH})")
        try:
            kids = node.get("/Kids")
        except Exception as exc:  # noqa: BLE001
            raise _damaged(exc, "อ่านรายการหน้า (/Kids) ไม่ได้", "unreadable /Kids") from None
        if not isinstance(kids, generic.ArrayObject):
            raise BadPdf("ไฟล์ PDF เสียหาย รายการหน้า (/Kids) ไม่ใช่รายการ / damaged PDF (/Kids is not an array)")
        if depth:
            _count(node)
        if len(kids) > MAX_NODES:
            raise BadPdf(f"ไฟล์ PDF มีโครงสร้างหน้าเกิน {MAX_NODES:,} ส่วน / the page tree is too large")
        children = []
        for i in range(len(kids)):
            kid, kind = _kid(kids, i, seen)
            if kind not in ("/Page", "/Pages"):
                raise BadPdf("ไฟล์ PDF เสียหาย รายการหน้า (/Kids) มีสิ่งที่ไม่ใช่หน้า / damaged PDF (/Kids "
                             "holds something that is not a page)")
            children.append((kid, kind == "/Page", depth + 1, _box(kid, inherited)))
        stack.extend(reversed(children))
    if len(boxes) != total:
        raise BadPdf(f"ไฟล์ PDF เสียหาย จำนวนหน้า (/Count {total}) ไม่ตรงกับหน้าที่มีจริง / damaged PDF "
                     f"(/Count {total} does not match the pages found)")
    if not boxes:
        raise BadPdf("ไฟล์ PDF ไม่มีหน้า / the PDF has no pages")
    return PageTree(len(boxes), boxes[0], boxes[-1])


def first_page(reader: PdfFileReader, max_pages: int) -> tuple[int, tuple[float, float, float, float]]:
    """(the page count the root declares, page 1's box), reading only the path from the root to
    page 1: the receipt stamp needs nothing else, so a file of 20,000 pages costs what one does.
    The same checks on that path as ``walk_pages`` (depth, loops, /Kids, boxes); BadPdf when the
    root declares more than ``max_pages`` pages (the stamping budget)."""
    root_ref, root = _page_root(reader)
    total = _count(root)
    if total == 0:
        raise BadPdf("ไฟล์ PDF ไม่มีหน้า / the PDF has no pages")
    if total > max_pages:
        raise BadPdf(f"ไฟล์ PDF มี {total:,} หน้า เกินที่ประทับตรารับได้ ({max_pages:,} หน้า) / "
                     f"the PDF has {total:,} pages, more than the stamp's budget ({max_pages:,})")
    node, inherited, seen = root, _box(root, None), {root_ref.reference}
    for _depth in range(MAX_DEPTH + 1):
        try:
            kids = node.get("/Kids")
        except Exception as exc:  # noqa: BLE001
            raise _damaged(exc, "อ่านรายการหน้า (/Kids) ไม่ได้", "unreadable /Kids") from None
        if not isinstance(kids, generic.ArrayObject) or not len(kids):
            raise BadPdf("ไฟล์ PDF เสียหาย รายการหน้า (/Kids) ไม่ใช่รายการ / damaged PDF (/Kids is not an array)")
        kid, kind = _kid(kids, 0, seen)
        inherited = _box(kid, inherited)
        if kind == "/Page":
            try:
                crop = kid.get("/CropBox")
            except Exception:  # noqa: BLE001
                crop = None
            return total, (_check_box(crop) if crop is not None else _check_box(inherited))
        if kind != "/Pages":
            raise BadPdf("ไฟล์ PDF เสียหาย รายการหน้า (/Kids) มีสิ่งที่ไม่ใช่หน้า / damaged PDF (/Kids "
                         "holds something that is not a page)")
        node = kid
    raise BadPdf(f"ไฟล์ PDF เสียหาย สารบบหน้าซ้อนลึกเกิน {MAX_DEPTH} ชั้น / damaged PDF (page tree "
                 f"nested deeper than {MAX_DEPTH})")


def check_pdf(data: bytes) -> int:
    """The number of pages, or BadPdf (see ``walk_pages``)."""
    return walk_pages(open_pdf(data)).pages


def load_signer(p12: bytes, password: str | None) -> signers.SimpleSigner:
    signer = signers.SimpleSigner.load_pkcs12_data(p12, other_certs=[],
                                                   passphrase=password.encode() if password else None)
    if signer is None:
        raise ValueError("cannot load signer")
    return signer


@lru_cache(maxsize=1)
def _advances() -> tuple[dict[int, int], int]:
    from fontTools.ttLib import TTFont

    font = TTFont(str(FONT), lazy=True)
    cmap = font.getBestCmap()
    hmtx = font["hmtx"]
    return {cp: hmtx[name][0] for cp, name in cmap.items()}, font["head"].unitsPerEm


def text_width(text: str, size: float = FONT_SIZE) -> float:
    """Width in points of a line in the stamp font (Thai marks take no width)."""
    adv, upem = _advances()
    return sum(adv.get(ord(ch), upem // 2) for ch in text) * size / upem


def _certificate_name(signer: signers.SimpleSigner) -> str:
    if signer.signing_cert is None:
        return ""
    try:
        name = signer.signing_cert.subject.native
        return str(name.get("common_name") or name.get("organization_name") or "")
    except Exception:  # noqa: BLE001
        return ""


def stamp_lines(*, agency: str, signer_name: str, certificate: str, when: str, width: float,
                letter: bool = False) -> list[str]:
    """The stamp's lines, each cut to ``width`` points between whole Thai characters.

    No line says the same thing twice: without a signer name no "ผู้ลงนาม" line (the agency
    is already the first line); the certificate name only when it differs from both. On a
    letter the agency and signer are printed on the page itself, so they are left out.
    """
    usable = width - 2 * STAMP_PADDING

    def fit(text: str) -> str:
        return cut(text, lambda t: text_width(t) <= usable * 0.97)

    lines = [] if letter else [agency]
    lines.append(SIGNED_TEXT)
    if signer_name and signer_name != agency and not letter:
        lines.append(f"ผู้ลงนาม: {signer_name}")
    if certificate and certificate not in (agency, signer_name):
        lines.append(f"ใบรับรอง: {certificate}")
    lines.append(f"เมื่อ {when}")
    return [fit(line) for line in lines]


def _empty_field(reader: PdfFileReader, name: str):
    """The rectangle of an unsigned signature field called ``name`` (a letter's signature space)."""
    try:
        for fq_name, value, ref in fields.enumerate_sig_fields(reader, filled_status=False):
            if fq_name == name:
                rect = [float(v) for v in ref.get_object()["/Rect"]]
                return rect
    except Exception:  # noqa: BLE001
        return None
    return None


def sign_pdf(data: bytes, signer: signers.SimpleSigner, *, agency: str, signer_name: str, when: datetime,
             tsa_url: str = "", field_name: str = FIELD_NAME, digits: str = "arabic") -> Signed:
    """Sign in memory; raises BadPdf for files that cannot be signed. In a letter's own signature
    space the stamp writes its date in the letter's digits (``digits``: thai or arabic).

    Runs in the calling process: use ``SigningHelper`` (or ``sign_bounded``) for files from
    outside, so a file that makes the PDF library loop cannot hold the caller.
    """
    reader = open_pdf(data)
    tree = walk_pages(reader)
    letter_rect = _empty_field(reader, field_name)   # a letter's own signature space, if it has one
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        if letter_rect is not None:
            width = abs(letter_rect[2] - letter_rect[0])
        else:
            x0, y0, x1, _y1 = tree.last_box
            width = min(STAMP_WIDTH, x1 - x0 - 24)
        said = thai_datetime(when)
        if letter_rect is not None and digits == "thai":      # the letter's own digit style
            said = arabic_to_thai_digits(said)
        lines = stamp_lines(agency=agency, signer_name=signer_name, certificate=_certificate_name(signer),
                            when=said, width=width, letter=letter_rect is not None)
        if letter_rect is None:
            height = len(lines) * LEADING + 2 * STAMP_PADDING + 8
            margin = min(36, (x1 - x0 - width) / 2)
            box = (x1 - width - margin, y0 + margin, x1 - margin, y0 + margin + height)
            fields.append_signature_field(writer, fields.SigFieldSpec(field_name, on_page=-1, box=box))
    except BadPdf:
        raise
    except Exception as exc:  # noqa: BLE001 - the library choking on the file: a damaged file
        raise _damaged(exc) from None
    style = TextStampStyle(
        stamp_text="\n".join(line.replace("%", "%%") for line in lines),
        text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(str(FONT), font_size=FONT_SIZE),
                                    font_size=FONT_SIZE, leading=LEADING, box_layout_rule=None),
        border_width=1,
        background=None,           # transparent: the page shows through
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(left=2, right=2, top=2, bottom=2),
            inner_content_scaling=layout.InnerScaling.SHRINK_TO_FIT),
    )
    timestamper = timestamps.HTTPTimeStamper(tsa_url, timeout=10) if tsa_url else None
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, md_algorithm="sha256", subfilter=SigSeedSubFilter.PADES,
        name=signer_name or agency, location=agency, reason=SIGNED_TEXT,
    )
    level = "B-T" if timestamper else "B-B"
    out = io.BytesIO()
    try:
        signers.PdfSigner(meta, signer=signer, timestamper=timestamper, stamp_style=style).sign_pdf(
            writer, output=out)
    except Exception as exc:
        if not timestamper:
            raise _damaged(exc, "ลงนามไม่ได้", "cannot be signed") from None
        # the timestamp server did not answer: sign at B-B now, timestamp later
        return sign_pdf(data, signer, agency=agency, signer_name=signer_name, when=when, tsa_url="",
                        field_name=field_name, digits=digits)
    return Signed(out.getvalue(), level, tree.pages)


# ---------------------------------------------------------------------------- bounded signing

def _helper_setup(p12: bytes, password: str | None) -> signers.SimpleSigner:
    return load_signer(p12, password)


def _sign_job(data: bytes, **kwargs) -> Signed:
    return sign_pdf(data, bounded.state(), **kwargs)


def _check_job(data: bytes) -> int:
    return check_pdf(data)


def too_slow(seconds: float) -> BadPdf:
    return BadPdf(f"ไฟล์ PDF ใช้เวลาประมวลผลเกิน {seconds:g} วินาที (ไฟล์อาจเสียหายหรือซับซ้อนผิดปกติ) / "
                  f"the PDF took longer than {seconds:g} s to process (damaged or abnormally complex)")


def helper_died() -> BadPdf:
    return BadPdf("โปรแกรมอ่านไฟล์ PDF หยุดทำงานกับไฟล์นี้ (ไฟล์อาจเสียหาย) / the PDF reader crashed on this "
                  "file (probably damaged)")


class SigningHelper:
    """Signs in a helper process, one file at a time, each under a wall-clock limit.

    The signing key is loaded once per helper. A file that runs past the limit gets BadPdf
    (the helper is killed and the next file starts a fresh one).
    """

    def __init__(self, p12: bytes, password: str | None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self.helper = bounded.Helper(_helper_setup, (p12, password))

    def __enter__(self) -> "SigningHelper":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sign(self, data: bytes, *, agency: str, signer_name: str, when: datetime, tsa_url: str = "",
             field_name: str = FIELD_NAME, digits: str = "arabic") -> Signed:
        # the timestamp server may take its own 10 s (and a second try at B-B follows)
        limit = self.timeout + (25 if tsa_url else 0)
        try:
            return self.helper.run(_sign_job, data, timeout=limit, agency=agency, signer_name=signer_name,
                                   when=when, tsa_url=tsa_url, field_name=field_name, digits=digits)
        except bounded.TimedOut:
            raise too_slow(limit) from None
        except bounded.HelperDied:
            raise helper_died() from None

    def check(self, data: bytes) -> int:
        try:
            return self.helper.run(_check_job, data, timeout=self.timeout)
        except bounded.TimedOut:
            raise too_slow(self.timeout) from None
        except bounded.HelperDied:
            raise helper_died() from None

    def close(self) -> None:
        self.helper.close()


def add_document_timestamp(data: bytes, tsa_url: str) -> bytes:
    """A PAdES document timestamp over an already signed file (incremental update)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    out = io.BytesIO()
    signers.PdfTimeStamper(timestamps.HTTPTimeStamper(tsa_url, timeout=10)).timestamp_pdf(
        writer, md_algorithm="sha256", output=out)
    return out.getvalue()


__all__ = ["BadPdf", "PageTree", "Signed", "SigningHelper", "add_document_timestamp", "check_pdf", "load_signer",
           "open_pdf", "sign_pdf", "stamp_lines", "walk_pages"]
