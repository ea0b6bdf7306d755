"""Letters: a one-page Thai result notice as PDF (fpdf2 + HarfBuzz shaping + Sarabun).

Owns: the page layout (agency header, official date, receipt number, service, requester,
outcome, note) and Thai line breaking: Thai writes no spaces between words, so the text is
cut into words (newmm dictionary segmenter) joined by zero-width spaces, where fpdf2 may break.
The wording comes from ``templates/result_letter.txt.j2``, which the agency may edit.
"""
from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from fpdf import FPDF
from newmm_tokenizer.tokenizer import word_tokenize

from .thai import thai_date
from .workflow import RESULT_OUTCOMES

FONTS = Path(__file__).resolve().parent / "fonts"
OUTCOMES = RESULT_OUTCOMES
ZWSP = "\u200b"
_THAI = re.compile(r"[\u0e00-\u0e7f]")


def breakable(text: str) -> str:
    """Thai text with zero-width spaces between words, so lines break at word boundaries."""
    out = []
    for line in text.split("\n"):
        out.append(ZWSP.join(word_tokenize(line)) if _THAI.search(line) else line)
    return "\n".join(out)


def render(*, agency: str, address: str, receipt: str, service: str, requester: str, outcome: str,
           note: str, when: datetime, body: str) -> bytes:
    """The notice as PDF bytes; ``body`` is the rendered text template (paragraphs)."""
    pdf = FPDF(format="A4")
    pdf.set_margins(25, 20, 20)
    pdf.add_font("Sarabun", "", str(FONTS / "Sarabun-Regular.ttf"))
    pdf.add_font("Sarabun", "B", str(FONTS / "Sarabun-Bold.ttf"))
    pdf.set_text_shaping(True)
    pdf.set_title(f"ผลการพิจารณา {receipt}")
    pdf.set_author(agency)
    pdf.add_page()
    pdf.set_font("Sarabun", "B", 20)
    pdf.multi_cell(0, 12, breakable(agency), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Sarabun", "", 13)
    pdf.multi_cell(0, 8, address, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Sarabun", "B", 17)
    pdf.multi_cell(0, 10, "หนังสือแจ้งผลการพิจารณา", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Sarabun", "", 15)
    pdf.multi_cell(0, 9, thai_date(when), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    rows = [
        ("เลขทะเบียนรับ", receipt),
        ("เรื่อง", service),
        ("เรียน", requester),
        ("ผลการพิจารณา", OUTCOMES.get(outcome, outcome)),
    ]
    for label, value in rows:
        pdf.set_font("Sarabun", "B", 15)
        pdf.cell(38, 9, label)
        pdf.set_font("Sarabun", "", 15)
        pdf.multi_cell(0, 9, breakable(value), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for paragraph in [p.strip() for p in body.split("\n\n") if p.strip()]:
        pdf.multi_cell(0, 9, breakable(" ".join(paragraph.split("\n"))), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    if note:
        pdf.set_font("Sarabun", "B", 15)
        pdf.cell(38, 9, "หมายเหตุ")
        pdf.set_font("Sarabun", "", 15)
        pdf.multi_cell(0, 9, breakable(note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
