"""A small PDF with many pages, as an attacker makes one: page objects packed in compressed object
streams (PDF 1.5), a few hundred KB for 20,000 pages. Used by the stamping budget tests."""
import sys, zlib

def make(n_pages: int, per_stream: int = 500) -> bytes:
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}   # obj -> ("plain", offset) or ("stream", stream_obj, index)
    def add_plain(num, body: bytes):
        offsets[num] = ("plain", len(out))
        out.extend(b"%d 0 obj\n" % num + body + b"\nendobj\n")
    # 1 catalog, 2 pages, 3 content, 4 font? (none) ; pages 10.. ; object streams after
    first_page = 10
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(n_pages))
    add_plain(1, b"<</Type/Catalog/Pages 2 0 R>>")
    add_plain(2, b"<</Type/Pages/Count %d/Kids[%s]>>" % (n_pages, kids))
    content = b"BT /F1 12 Tf 72 720 Td (page) Tj ET"
    add_plain(3, b"<</Length %d>>stream\n" % len(content) + content + b"\nendstream")
    add_plain(4, b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>")
    next_num = first_page + n_pages
    for start in range(0, n_pages, per_stream):
        nums = list(range(first_page + start, first_page + min(n_pages, start + per_stream)))
        bodies = [b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Contents 3 0 R/Resources<</Font<</F1 4 0 R>>>>>>" for _ in nums]
        header = bytearray()
        data = bytearray()
        for num, b in zip(nums, bodies):
            header.extend(b"%d %d " % (num, len(data)))
            data.extend(b + b" ")
        raw = bytes(header) + bytes(data)
        comp = zlib.compress(raw, 9)
        sn = next_num
        next_num += 1
        for i, num in enumerate(nums):
            offsets[num] = ("stream", sn, i)
        add_plain(sn, b"<</Type/ObjStm/N %d/First %d/Filter/FlateDecode/Length %d>>stream\n" % (len(nums), len(header), len(comp)) + comp + b"\nendstream")
    # xref stream
    xref_num = next_num
    size = xref_num + 1
    rows = bytearray()
    for num in range(size):
        e = offsets.get(num)
        if num == xref_num:
            rows += bytes([1]) + len(out).to_bytes(4, "big") + (0).to_bytes(2, "big")
        elif e is None:
            rows += bytes([0]) + (0).to_bytes(4, "big") + (0).to_bytes(2, "big")
        elif e[0] == "plain":
            rows += bytes([1]) + e[1].to_bytes(4, "big") + (0).to_bytes(2, "big")
        else:
            rows += bytes([2]) + e[1].to_bytes(4, "big") + e[2].to_bytes(2, "big")
    comp = zlib.compress(bytes(rows), 9)
    xref_off = len(out)
    out.extend(b"%d 0 obj\n<</Type/XRef/Size %d/W[1 4 2]/Root 1 0 R/Filter/FlateDecode/Length %d>>stream\n" % (xref_num, size, len(comp)) + comp + b"\nendstream\nendobj\n")
    out.extend(b"startxref\n%d\n%%%%EOF\n" % xref_off)
    return bytes(out)

if __name__ == "__main__":
    n = int(sys.argv[1])
    data = make(n)
    open(sys.argv[2], "wb").write(data)
    print(len(data))
