"""The fast word dictionary segments exactly as newmm's own Trie does."""
from __future__ import annotations

import random
import subprocess
import sys

from mailbot.documents.words import SortedWords, words

SAMPLES = [
    "ขออนุญาตก่อสร้างอาคาร บ้านเลขที่ 12/3 หมู่ 4 ตำบลบางพลี",
    "ร้องเรียนไฟฟ้าสาธารณะดับ ซอยเพชรเกษม 69 ตั้งแต่วันที่ ๑๒ พฤศจิกายน ๒๕๖๙",
    "ภาษีที่ดินและสิ่งปลูกสร้าง แปลงโฉนดเลขที่ 4567",
    "เบี้ยยังชีพผู้สูงอายุ (ผู้สูงอายุรายใหม่) ประจำปีงบประมาณ พ.ศ. 2570",
    "นายสมชาย ใจดี ผู้อำนวยการกองช่าง องค์การบริหารส่วนตำบลหนองบัว",
    "Please register my request กรุณาตอบกลับ ASAP!!",
    "กกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกกก",
    "",
    "   ",
]


def test_prefixes_are_the_tries_prefixes():
    from newmm_tokenizer.common import thai_words as listed
    from newmm_tokenizer.trie import Trie

    vocab = list(listed())
    trie, fast = Trie(vocab), SortedWords(vocab)
    rng = random.Random(5)
    texts = [s[i:] for s in SAMPLES for i in range(len(s))]
    texts += ["".join(rng.choice(vocab) for _ in range(3)) for _ in range(300)]
    for text in texts:
        assert fast.prefixes(text) == trie.prefixes(text), text
    assert len(fast) == len(trie.words - {""})


def test_words_equal_newmm_word_tokenize_in_a_fresh_process():
    # a separate process: there newmm's module builds its own Trie, unaffected by ours
    code = ("import json,sys; from newmm_tokenizer.tokenizer import word_tokenize as w; "
            "print(json.dumps([w(t) for t in json.loads(sys.stdin.read())]))")
    rng = random.Random(9)
    from newmm_tokenizer.common import thai_words
    vocab = sorted(thai_words())
    texts = SAMPLES + [" ".join(rng.choice(vocab) + rng.choice(vocab) for _ in range(4)) for _ in range(200)]
    import json
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True,
                         check=True)
    assert [words(t) for t in texts] == json.loads(out.stdout)
