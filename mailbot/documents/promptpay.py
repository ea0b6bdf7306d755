"""PromptPay (pure): the Thai QR payment payload for a fee, bill-payment form (EMVCo tag 30).

Owns: the payload text a banking app reads — EMVCo merchant-presented TLV fields, the
PromptPay bill-payment application ID, the biller ID (tax ID + 2-digit suffix), reference 1
(the receipt number, letters and digits only), an optional reference 2, the amount in baht,
and the CRC-16/CCITT-FALSE checksum over everything before it (tag 63) — plus parsing a
payload back and checking its checksum; and, for a service with ``fee:``, the code for one
case (``fee_qr``: the PNG to attach to the receipt email, the values its template shows, the
caption the letter prints). The QR image is drawn by segno (``qr_png``); nothing here touches
disk or network.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

BILL_PAYMENT_AID = "A000000677010112"   # PromptPay, bill payment (domestic)
CURRENCY_THB = "764"                   # ISO 4217
_REF = re.compile(r"^[A-Z0-9]{1,20}$")


class PromptPayError(ValueError):
    """A value that cannot go into a Thai QR payment code (Thai / English message)."""


def crc16(text: str) -> str:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF) as 4 upper-case hex digits."""
    crc = 0xFFFF
    for byte in text.encode("ascii"):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return f"{crc:04X}"


def tlv(tag: str, value: str) -> str:
    if len(value) > 99:
        raise PromptPayError(f"ข้อมูลยาวเกินกำหนดในช่อง {tag}", f"value too long for tag {tag}")
    return f"{tag}{len(value):02d}{value}"


def receipt_reference(receipt: str) -> str:
    """Reference 1 for a receipt number: '15/2569' -> '152569' (banks take A-Z and 0-9 only;
    the year is always the last four digits, so the number reads back unambiguously)."""
    ref = re.sub(r"[^0-9A-Za-z]", "", receipt).upper()
    if not _REF.match(ref):
        raise PromptPayError(f"ใช้เลขรับ {receipt} เป็นเลขอ้างอิงไม่ได้", f"receipt {receipt!r} cannot be a reference")
    return ref


def amount_text(amount: Decimal | float | int | str) -> str:
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if value <= 0 or value >= Decimal("10000000000"):
        raise PromptPayError("จำนวนเงินค่าธรรมเนียมไม่ถูกต้อง", f"bad fee amount {amount}")
    return f"{value:.2f}"


def bill_payment(biller_id: str, ref1: str, amount: Decimal | float | int | str | None = None,
                 ref2: str = "") -> str:
    """The payload: one-time (dynamic, '12') when an amount is given, else reusable ('11')."""
    biller = re.sub(r"[\s-]", "", biller_id)
    if not re.fullmatch(r"\d{13}|\d{15}", biller):
        raise PromptPayError("รหัสผู้รับชำระ (biller_id) ต้องเป็นตัวเลข 15 หลัก (เลขประจำตัวผู้เสียภาษี 13 หลัก + 2 หลัก)",
                             "biller_id must be 15 digits (13-digit tax ID + 2-digit suffix)")
    for name, ref in (("1", ref1), ("2", ref2)):
        if ref and not _REF.match(ref):
            raise PromptPayError(f"เลขอ้างอิง {name} ใช้ได้เฉพาะ A-Z และ 0-9 ไม่เกิน 20 ตัว",
                                 f"reference {name} must be 1-20 characters A-Z, 0-9")
    if not ref1:
        raise PromptPayError("ต้องมีเลขอ้างอิง 1", "reference 1 is required")
    merchant = tlv("00", BILL_PAYMENT_AID) + tlv("01", biller) + tlv("02", ref1) + (tlv("03", ref2) if ref2 else "")
    body = tlv("00", "01") + tlv("01", "12" if amount is not None else "11") + tlv("30", merchant)
    body += tlv("53", CURRENCY_THB)
    if amount is not None:
        body += tlv("54", amount_text(amount))
    body += tlv("58", "TH") + "6304"
    return body + crc16(body)


def parse(payload: str) -> dict[str, str]:
    """Top-level tags of a payload (tag -> value); PromptPayError when the checksum is wrong."""
    if len(payload) < 8 or payload[-8:-4] != "6304" or crc16(payload[:-4]) != payload[-4:].upper():
        raise PromptPayError("คิวอาร์โค้ดไม่ถูกต้อง (ค่าตรวจสอบไม่ตรง)", "bad checksum")
    out: dict[str, str] = {}
    i = 0
    while i < len(payload):
        tag, size = payload[i:i + 2], int(payload[i + 2:i + 4])
        out[tag] = payload[i + 4:i + 4 + size]
        i += 4 + size
    return out


def qr_png(payload: str, scale: int = 6) -> bytes:
    """The QR image (PNG bytes), error correction M, with the standard quiet zone."""
    import io

    import segno

    buf = io.BytesIO()
    segno.make_qr(payload, error="m").save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


@dataclass(frozen=True)
class FeeQr:
    """A fee's Thai QR code for one case: the image, its file name, and what templates show."""

    payload: str
    png: bytes
    filename: str
    context: dict
    caption: list[str]

    @property
    def attachment(self) -> tuple[str, bytes]:
        return self.filename, self.png


def fee_qr(service, receipt: str) -> FeeQr | None:
    """The Thai QR payment code for a service with ``fee:`` (None without one). The receipt
    email attaches ``.attachment`` and its template shows ``.context`` (``_fee.txt.j2``); the
    result letter prints it at the foot."""
    if service is None or getattr(service, "fee", None) is None:
        return None
    fee = service.fee
    ref1 = receipt_reference(receipt)
    payload = bill_payment(fee.biller_id, ref1, amount=fee.amount, ref2=fee.reference2)
    amount = f"{fee.amount:,.2f}"
    context = {"name": fee.name, "amount": amount, "ref1": ref1, "ref2": fee.reference2,
               "biller_id": fee.biller_id, "payload": payload, "receipt": receipt,
               "file": f"ชำระ{fee.name} เลขรับ {receipt.replace('/', '-')}.png"}
    caption = [f"สแกนเพื่อชำระ{fee.name}", f"{amount} บาท", f"เลขอ้างอิง {ref1}"]
    return FeeQr(payload, qr_png(payload), context["file"], context, caption)


__all__ = ["FeeQr", "PromptPayError", "amount_text", "bill_payment", "crc16", "fee_qr", "parse", "qr_png",
           "receipt_reference"]
