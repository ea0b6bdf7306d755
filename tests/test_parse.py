"""Parsing (pure): Thai encodings, sender, attachments, automatic-mail signals, content hash."""
import base64
import quopri

import pytest

from mailbot.mail.parse import Unparseable, content_hash, parse, safe_filename

SUBJECT = "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12"
BODY = "เรียน นายกเทศมนตรี ขออนุญาตก่อสร้าง “บ้าน” …"   # smart quotes and ellipsis: cp874 only


def b64word(text, label, codec):
    return f"=?{label}?B?{base64.b64encode(text.encode(codec)).decode()}?="


def qword(text, label, codec):
    data = text.encode(codec)
    return f"=?{label}?Q?" + "".join(f"={b:02X}" for b in data) + "?="


def message(subject_header: str, body: bytes, charset: str, cte: str) -> bytes:
    if cte == "base64":
        payload = base64.encodebytes(body)
    elif cte == "quoted-printable":
        payload = quopri.encodestring(body)
    else:
        payload = body
    return (f"From: a@example.com\r\nSubject: {subject_header}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: {cte}\r\n\r\n").encode() + payload


@pytest.mark.parametrize("label,codec", [
    ("windows-874", "cp874"), ("x-windows-874", "cp874"), ("cp874", "cp874"),
    ("TIS-620", "tis-620"), ("tis620", "tis-620"), ("x-tis-620", "tis-620"), ("ISO-8859-11", "tis-620"),
    ("utf-8", "utf-8"),
])
@pytest.mark.parametrize("cte", ["base64", "quoted-printable", "8bit"])
@pytest.mark.parametrize("word", [b64word, qword])
def test_thai_charsets_subjects_and_bodies(label, codec, cte, word):
    body_text = BODY if codec in ("cp874", "utf-8") else "เรียน นายกเทศมนตรี ขออนุญาตก่อสร้าง"
    raw = message(word(SUBJECT, label, codec), body_text.encode(codec), label, cte)
    letter = parse(raw)
    assert letter.subject == SUBJECT
    assert letter.body_text.strip() == body_text


def test_tis620_label_with_cp874_punctuation():
    raw = message(b64word("“คำร้อง”", "TIS-620", "cp874"), "ข้อความ “ทดสอบ”".encode("cp874"), "TIS-620", "8bit")
    letter = parse(raw)
    assert letter.subject == "“คำร้อง”"
    assert letter.body_text.strip() == "ข้อความ “ทดสอบ”"


def test_encoded_words_mixing_charsets_and_split_across_words():
    part1 = b64word("ขออนุญาต", "windows-874", "cp874")
    part2 = qword("ก่อสร้าง", "utf-8", "utf-8")
    utf = "อาคาร".encode()
    # a UTF-8 character split across two encoded-words (invalid but common)
    split = f"=?utf-8?B?{base64.b64encode(utf[:4]).decode()}?= =?utf-8?B?{base64.b64encode(utf[4:]).decode()}?="
    raw = message(f"{part1} {part2}\r\n {split}", b"x", "us-ascii", "7bit")
    assert parse(raw).subject == "ขออนุญาตก่อสร้างอาคาร"


def test_raw_utf8_headers():
    raw = f"From: สมชาย <s@example.com>\r\nSubject: {SUBJECT}\r\n\r\nสวัสดี".encode()
    letter = parse(raw)
    assert letter.subject == SUBJECT and letter.from_name == "สมชาย" and letter.body_text == "สวัสดี"


def test_undeclared_thai_body_falls_back_to_cp874():
    raw = b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain\r\n\r\n" + "ภาษาไทย".encode("cp874")
    assert parse(raw).body_text == "ภาษาไทย"


def test_bogus_charset_does_not_crash():
    raw = message("=?x-nonsense?B?4LiB?=", b"\xe0\xb8\x81", "x-nonsense", "8bit")
    letter = parse(raw)
    assert letter.body_text == "ก"


def test_reply_to_preferred_and_unusable_sender():
    raw = b"From: A <a@example.com>\r\nReply-To: B <b@example.org>\r\nSubject: x\r\n\r\n."
    assert parse(raw).reply_to == "b@example.org"
    raw = b"From: somebody\r\nSubject: x\r\n\r\n."
    assert parse(raw).reply_to is None


def test_attachment_names_rfc2231_thai_and_sanitised():
    raw = (b"From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
           b"--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
           b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename*=windows-874''"
           + "".join(f"%{b:02X}" for b in "แบบคำขอ ข.1.pdf".encode("cp874")).encode() + b"\r\n\r\nJVBERg==\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\nx\r\n"
           b"--b--\r\n")
    letter = parse(raw)
    assert [a.name for a in letter.attachments] == ["แบบคำขอ ข.1.pdf", "passwd"]
    assert letter.attachments[0].size == 4


@pytest.mark.parametrize("name,expected", [
    ("../../evil.sh", "evil.sh"),
    ("C:\\Windows\\system32\\x.dll", "x.dll"),
    ("/etc/passwd", "passwd"),
    ("CON", "_CON"),
    ("nul.txt", "_nul.txt"),
    ("COM1.pdf", "_COM1.pdf"),
    ("invoice\u202egnp.exe", "invoicegnp.exe"),
    ("..", "attachment"),
    ("", "attachment"),
    ("a\x00b.pdf", "ab.pdf"),
])
def test_safe_filename(name, expected):
    assert safe_filename(name) == expected


def test_safe_filename_caps_length_and_keeps_extension():
    name = safe_filename("ก" * 300 + ".pdf")
    assert len(name) <= 120 and name.endswith(".pdf")


def test_content_hash_ignores_trace_headers_and_line_endings():
    raw = b"From: a@example.com\r\nSubject: x\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n"
    other = (b"Return-Path: <a@example.com>\r\nReceived: from x by y;\r\n  Fri, 27 Nov 2026\r\n"
             b"Delivered-To: s@example.go.th\r\nX-Original-To: s@example.go.th\r\n") + raw.replace(b"\r\n", b"\n")
    assert content_hash(raw) == content_hash(other)
    assert content_hash(raw) != content_hash(raw.replace(b"body", b"bodY"))


def test_unparseable():
    for raw in (b"", b"   \r\n\r\n"):
        with pytest.raises(Unparseable):
            parse(raw)


def test_quoted_text_is_not_new_content():
    raw = (b"From: a@example.com\r\nSubject: Re: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           + "ขอบคุณครับ\r\n\r\nOn Fri, 27 Nov 2026 someone wrote:\r\n> old text\r\n".encode())
    letter = parse(raw)
    assert letter.new_text == "ขอบคุณครับ"


def test_html_only_mail_is_read_as_text_never_rendered():
    raw = (b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
           + "<script>alert(1)</script><p>ขออนุญาต&amp;ก่อสร้าง</p>".encode())
    letter = parse(raw)
    assert "alert" not in letter.body_text and "ขออนุญาต&ก่อสร้าง" in letter.body_text


def test_large_attachments_are_measured_without_feeding_them_to_the_parser():
    from email.message import EmailMessage

    from mailbot.mail.parse import shrink

    msg = EmailMessage()
    msg["From"], msg["Subject"] = "a@example.com", "ขออนุญาตก่อสร้าง"
    msg.set_content("ข้อความ")
    msg.add_attachment(b"\x01" * 3_000_000, maintype="application", subtype="pdf", filename="แบบ.pdf")
    msg.add_attachment(b"\x02" * 1000, maintype="image", subtype="png", filename="small.png")
    raw = bytes(msg)
    small = shrink(raw)
    assert len(small) < 20_000 < len(raw)
    letter = parse(raw)
    assert [(a.name, a.size) for a in letter.attachments] == [("แบบ.pdf", 3_000_000), ("small.png", 1000)]
    assert letter.body_text.strip() == "ข้อความ" and letter.subject == "ขออนุญาตก่อสร้าง"
    assert letter.content_hash == parse(raw).content_hash      # computed on the real bytes


@pytest.mark.parametrize("subject,automatic", [
    ("RE: Automatic reply: ขออนุญาตก่อสร้าง", True),
    ("Re: Re: Out of Office: ขออนุญาต", True),
    ("ตอบกลับ: ตอบกลับอัตโนมัติ: ขออนุญาต", True),
    ("AW: Automatische Antwort: x", True),
    ("Re: [เลขรับ 3/2569] Re: Automatic reply: x", True),
    ("Re: ขออนุญาตก่อสร้าง", False),
    ("Fwd: Automatic reply: x", False),        # a person forwarding it means it to be read
    ("Re: ขอคำตอบเรื่องระบบตอบรับ", False),
])
def test_the_whole_subject_chain_is_read_for_automatic_replies(subject, automatic):
    letter = parse(f"From: a@b.example\r\nSubject: {subject}\r\n\r\nhi".encode())
    assert bool(letter.auto_signals) == automatic, letter.auto_signals


def test_boundary_lines_are_cut_where_the_multiline_expression_cut_them():
    """``shrink`` finds delimiter lines with bytes.find; it cuts exactly where the one regular
    expression it replaced cut (the oracle below), on generated mail and on hostile lines: a
    boundary that starts another, the boundary inside a line, trailing text, CRLF and LF,
    'BOUNDARY = "…"' spelled differently."""
    import random
    import re
    from email.message import EmailMessage

    from mailbot.mail import parse as p

    def oracle(raw: bytes) -> list[bytes]:
        names = {m.group(1).strip() for m in p._BOUNDARY.finditer(raw)}
        if not names:
            return [raw]
        delimiter = re.compile(rb"(^--(?:" + b"|".join(re.escape(n) for n in names) + rb")(?:--)?[ \t]*\r?$)", re.M)
        return delimiter.split(raw)

    rnd = random.Random(3)
    samples = []
    for k in range(24):
        m = EmailMessage()
        m["Subject"] = "ขออนุญาต"
        m.set_content("สวัสดี " * rnd.randint(1, 50))
        for j in range(rnd.randint(1, 3)):
            m.add_attachment(rnd.randbytes(rnd.randint(1000, 300_000)), maintype="application", subtype="pdf",
                             filename=f"a{j}.pdf")
        if k % 3 == 0:
            inner = EmailMessage()
            inner["Subject"] = "in"
            inner.set_content("x")
            inner.add_attachment(rnd.randbytes(100_000), maintype="application", subtype="octet-stream",
                                 filename="b.bin")
            m.add_attachment(inner)
        raw = bytes(m)
        if k % 2:
            raw = raw.replace(b"\n", b"\r\n")
        if k % 4 == 3:
            raw = raw.replace(b'boundary="', b'BOUNDARY = "')
        samples.append(raw)
    samples.append(b'Content-Type: multipart/mixed; boundary="abc"\n\n--abc\nContent-Type: multipart/mixed; '
                   b'boundary="abcd"\n\n--abcd\n\nx --abc\n--abcX\n--abc--x\n--abc-\n--abc  \n--abcd--\n--abc--\n')
    samples.append(b"Subject: none\n\n--abc\n")
    for raw in samples:
        assert p._split_parts(raw) == oracle(raw)
    assert len(p._split_parts(samples[-2])) == 11      # the oracle agrees on something to cut


def test_shrink_gives_the_bytes_it_gave_when_it_cut_copies():
    """``shrink`` reads the big bodies by offset now (no copy of a 25 MB body); its output is
    byte for byte what the version that split the message into copies produced (the oracle)."""
    import random
    from email.message import EmailMessage

    from mailbot.mail import parse as p

    def oracle(raw: bytes) -> bytes:
        if len(raw) < 2 * p.SHRINK_OVER:
            return raw
        out = []
        for i, piece in enumerate(p._split_parts(raw)):
            if i % 2 == 0 and i > 0 and len(piece) > p.SHRINK_OVER:
                head, sep, body = piece.partition(b"\r\n\r\n")
                if not sep:
                    head, sep, body = piece.partition(b"\n\n")
                if sep and p._B64.search(head) and not p._CONTAINER.search(head):
                    blanks = body.count(b"\r") + body.count(b"\n") + body.count(b" ") + body.count(b"\t")
                    size = max(0, len(body) - blanks - body.count(b"=")) * 3 // 4
                    newline = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
                    piece = head + newline + p.SIZE_HEADER.encode() + b": %d" % size + sep + newline
            out.append(piece)
        return b"".join(out)

    rnd = random.Random(11)
    for k in range(12):
        m = EmailMessage()
        m["Subject"] = "แบบแปลน"
        m.set_content("ตามแนบ " * rnd.randint(1, 40))
        for j in range(rnd.randint(1, 3)):
            m.add_attachment(rnd.randbytes(rnd.choice([2000, 300_000, 900_000])), maintype="application",
                             subtype="pdf", filename=f"a{j}.pdf")
        if k % 4 == 1:
            m.add_attachment(("ข้อความ " * 60_000).encode(), maintype="text", subtype="plain")   # big, not base64 body
        raw = bytes(m)
        if k % 2:
            raw = raw.replace(b"\n", b"\r\n")
        shrunk = p.shrink(raw)
        assert shrunk == oracle(raw)
        if len(raw) > 2 * p.SHRINK_OVER and k % 4 != 1:
            assert len(shrunk) < len(raw)


def test_parsing_a_large_message_makes_no_copy_of_it():
    """Memory, not time: reading a message with an 8 MB attachment allocates a small fraction of
    its size (no ``strip()``, split or slice of the whole message; the body is measured, not fed
    to the stdlib parser). Before, parse() held two more copies of it at its peak."""
    import random
    import tracemalloc
    from email.message import EmailMessage

    m = EmailMessage()
    m["From"], m["Subject"] = "a@example.com", "ขออนุญาตก่อสร้าง"
    m.set_content("แบบแปลนตามแนบ")
    m.add_attachment(random.Random(1).randbytes(8_000_000), maintype="application", subtype="pdf",
                     filename="แบบ.pdf")
    for raw in (bytes(m).replace(b"\n", b"\r\n"), bytes(m)):
        parse(raw)                                  # imports and caches warmed
        tracemalloc.start()
        try:
            letter = parse(raw)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert letter.attachments[0].size == 8_000_000
        assert peak < len(raw) // 10, (peak, len(raw))


def test_content_hash_is_what_it_was_before_it_stopped_copying():
    """``content_hash`` now hashes the body where it lies; on every mix of line endings it gives
    the digest the copying version gave (the oracle), so no message already in a ledger looks
    new after an upgrade."""
    import hashlib
    import random

    from mailbot.mail import parse as p

    def oracle(raw: bytes) -> str:
        if raw.startswith(b"From ") and b"\n" in raw:
            raw = raw.split(b"\n", 1)[1]
        end = raw.find(b"\r\n\r\n")
        crlf_only = end >= 0 and raw.count(b"\n") == raw.count(b"\r\n") and (raw.find(b"\n\n") < 0)
        if crlf_only:
            head, body_start = raw[:end].replace(b"\r\n", b"\n"), end + 4
        else:
            data = raw.replace(b"\r\n", b"\n")
            head, sep, rest = data.partition(b"\n\n")
            if not sep:
                head, rest = data, b""
        lines: list[bytes] = []
        for line in head.split(b"\n"):
            if line[:1] in (b" ", b"\t") and lines:
                lines[-1] += b" " + line.strip()
            else:
                lines.append(line.rstrip())
        h = hashlib.sha256()
        for line in lines:
            name, colon, value = line.partition(b":")
            if colon and name.strip().lower().decode("latin-1") in p.TRACE_HEADERS:
                continue
            h.update(name.strip().lower() + b":" + b" ".join(value.split()) + b"\r\n")
        h.update(b"\r\n")
        if crlf_only:
            stop = len(raw)
            while stop - 2 >= body_start and raw[stop - 2:stop] == b"\r\n":
                stop -= 2
            h.update(memoryview(raw)[body_start:stop])
        else:
            h.update(rest.rstrip(b"\n").replace(b"\n", b"\r\n"))
        return h.hexdigest()

    rnd = random.Random(21)
    ends = [b"\n", b"\r\n", b"\r", b"\r\r\n", b"\n\r"]
    samples = [b"", b"From x\n", b"From a@b Sat Jan  1\nSubject: x\n\nbody\n\n\n", b"Subject: x", b"\r\n\r\n",
               b"Subject: x\r\n\r\nbody\r\n\r\n", b"Subject: x\n\r\nbody\r\r\n", b"Subject: x\r\n\nbody\n\r\n"]
    for _ in range(400):
        parts = [b"Received: from a\r\n\tby b", b"Subject: =?utf-8?b?4Lij?=", b"From: a@b", b"", b"body line",
                 b"x" * rnd.randint(0, 50), b"\r", b""]
        samples.append(b"".join(rnd.choice(parts) + rnd.choice(ends) for _ in range(rnd.randint(1, 14))))
    big = b"Subject: big\n\n" + b"".join(b"line %d\r\n" % i if i % 3 else b"line %d\n" % i for i in range(300_000))
    samples += [big, big + b"\r", big.replace(b"\r\n", b"\n") + b"\n\n"]
    edge = 1 << 18                                     # a lone CR, then CRLF, where a chunk ends
    samples += [b"Subject: x\n\n" + b"a" * (edge - 1) + b"\r\r\nmore\n",
                b"Subject: x\n\n" + b"a" * (edge - 2) + b"\r\r\r\n",
                b"Subject: x\n\n" + b"a\r\r\n" * 300_000]
    for raw in samples:
        assert p.content_hash(raw) == oracle(raw), raw[:200]
