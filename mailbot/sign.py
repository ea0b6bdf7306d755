"""Sign: a PDF made trustworthy with the agency certificate (PAdES), in memory.

Owns: the visible stamp on the last page (agency name, "ลงนามด้วยลายมือชื่ออิเล็กทรอนิกส์",
signer, Thai date-time) in the bundled Sarabun font, embedded, with a leading of 1.9x the
size so Thai marks do not collide; the PAdES level actually reached (B-T when a timestamp
server answered, else B-B — never claimed higher than what is in the file); and a later
document timestamp for files signed while the TSA was away.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pyhanko.pdf_utils.font.opentype import GlyphAccumulatorFactory
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.stamp import TextStampStyle

from .thai import thai_datetime

FONT = Path(__file__).resolve().parent / "fonts" / "Sarabun-Regular.ttf"
FONT_SIZE = 9
LEADING = round(FONT_SIZE * 1.9)
SIGNED_TEXT = "ลงนามด้วยลายมือชื่ออิเล็กทรอนิกส์"


class BadPdf(Exception):
    """Not a PDF, encrypted, or damaged; the message says which (Thai / English)."""


@dataclass(frozen=True)
class Signed:
    data: bytes
    level: str          # "B-B" or "B-T"
    pages: int


def check_pdf(data: bytes) -> int:
    """The number of pages, or BadPdf."""
    if not data.lstrip()[:5] == b"%PDF-":
        raise BadPdf("ไม่ใช่ไฟล์ PDF / not a PDF file")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
    except Exception as exc:  # noqa: BLE001 - any parser failure means a damaged file
        raise BadPdf(f"ไฟล์ PDF เสียหาย อ่านไม่ได้ / damaged PDF ({type(exc).__name__})") from None
    if reader.encrypted:
        raise BadPdf("ไฟล์ PDF ถูกเข้ารหัส (ตั้งรหัสผ่าน) ลงนามไม่ได้ / the PDF is encrypted")
    try:
        pages = len(reader.root["/Pages"]["/Kids"]) and int(reader.root["/Pages"]["/Count"])
    except Exception:  # noqa: BLE001
        raise BadPdf("ไฟล์ PDF เสียหาย ไม่มีหน้า / damaged PDF (no pages)") from None
    if pages < 1:
        raise BadPdf("ไฟล์ PDF ไม่มีหน้า / the PDF has no pages")
    return pages


def load_signer(p12: bytes, password: str | None) -> signers.SimpleSigner:
    signer = signers.SimpleSigner.load_pkcs12_data(p12, other_certs=[],
                                                   passphrase=password.encode() if password else None)
    if signer is None:
        raise ValueError("cannot load signer")
    return signer


def _last_page_box(reader: PdfFileReader) -> tuple[float, float, float, float]:
    page = reader.root["/Pages"]
    while "/Kids" in page:
        page = page["/Kids"][-1]
    box = [float(v) for v in page.get("/CropBox", page.get("/MediaBox", [0, 0, 595, 842]))]
    return box[0], box[1], box[2], box[3]


def sign_pdf(data: bytes, signer: signers.SimpleSigner, *, agency: str, signer_name: str, when: datetime,
             tsa_url: str = "", field_name: str = "mailbot-signature") -> Signed:
    """Sign in memory; raises BadPdf for files that cannot be signed."""
    pages = check_pdf(data)
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    x0, y0, x1, _y1 = _last_page_box(writer.prev)
    width, height = 250, 92
    box = (x1 - width - 36, y0 + 36, x1 - 36, y0 + 36 + height)
    fields.append_signature_field(writer, fields.SigFieldSpec(field_name, on_page=-1, box=box))
    style = TextStampStyle(
        stamp_text="%(agency)s\n" + SIGNED_TEXT + "\nผู้ลงนาม: %(signer)s\nเมื่อ %(when)s",
        text_box_style=TextBoxStyle(font=GlyphAccumulatorFactory(str(FONT), font_size=FONT_SIZE),
                                    font_size=FONT_SIZE, leading=LEADING, box_layout_rule=None),
        border_width=1,
        background=None,
        inner_content_layout=None,
    )
    timestamper = timestamps.HTTPTimeStamper(tsa_url, timeout=10) if tsa_url else None
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, md_algorithm="sha256", subfilter=SigSeedSubFilter.PADES,
        name=signer_name, location=agency, reason=SIGNED_TEXT,
    )
    level = "B-T" if timestamper else "B-B"
    out = io.BytesIO()
    try:
        signers.PdfSigner(meta, signer=signer, timestamper=timestamper, stamp_style=style).sign_pdf(
            writer, output=out,
            appearance_text_params={"agency": agency, "signer": signer_name, "when": thai_datetime(when)})
    except Exception:
        if not timestamper:
            raise
        # the timestamp server did not answer: sign at B-B now, timestamp later
        return sign_pdf(data, signer, agency=agency, signer_name=signer_name, when=when, tsa_url="",
                        field_name=field_name)
    return Signed(out.getvalue(), level, pages)


def add_document_timestamp(data: bytes, tsa_url: str) -> bytes:
    """A PAdES document timestamp over an already signed file (incremental update)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    out = io.BytesIO()
    signers.PdfTimeStamper(timestamps.HTTPTimeStamper(tsa_url, timeout=10)).timestamp_pdf(
        writer, md_algorithm="sha256", output=out)
    return out.getvalue()


__all__ = ["BadPdf", "Signed", "add_document_timestamp", "check_pdf", "load_signer", "sign_pdf"]
