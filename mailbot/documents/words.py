"""Thai word segmentation for line breaking: newmm (newmm_tokenizer, PyThaiNLP's maximal
matching) over its own 62,000-word dictionary.

Owns: loading that dictionary once, and fast. newmm's ``Trie`` builds about 235,000 node
objects on import, which costs 0.6 s of every ``mailbot poll`` that writes a register row;
the dictionary here is the same word list kept sorted, and ``prefixes`` (the one lookup newmm
makes) walks it with ``bisect``, giving the same words in the same order. Loading takes about
30 ms. Segmentation results are identical (``tests/test_words.py`` compares both).
"""
from __future__ import annotations

import sys
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache


class SortedWords:
    """The subset of newmm's ``Trie`` that its segmenter uses, over a sorted list."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = {w.strip() for w in words} - {""}
        self._sorted = sorted(self.words)

    def prefixes(self, text: str) -> list[str]:
        """Every dictionary word that ``text`` starts with, shortest first (as ``Trie.prefixes``)."""
        found: list[str] = []
        ordered, lo = self._sorted, 0
        for end in range(1, len(text) + 1):
            head = text[:end]
            lo = bisect_left(ordered, head, lo)       # later heads sort after earlier ones
            if lo == len(ordered) or not ordered[lo].startswith(head):
                break                                 # no word goes on this way
            if ordered[lo] == head:
                found.append(head)
        return found

    def __contains__(self, word: object) -> bool:
        return word in self.words

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def __len__(self) -> int:
        return len(self.words)


_LOADING = threading.Lock()      # the console's threads may all ask for words at once


@lru_cache(maxsize=1)
def _segment() -> Callable[[str], list[str]]:
    import newmm_tokenizer.trie as trie

    with _LOADING:
        if "newmm_tokenizer.newmm" not in sys.modules:
            # newmm builds its default dictionary when imported: let it build this one instead
            slow, trie.Trie = trie.Trie, SortedWords
            try:
                import newmm_tokenizer.newmm  # noqa: F401
            finally:
                trie.Trie = slow
    from newmm_tokenizer import newmm

    dictionary = newmm.DEFAULT_WORD_DICT_TRIE
    return lambda text: newmm.segment(text, dictionary)


def words(text: str) -> list[str]:
    """``text`` cut into words, spaces kept as pieces of their own (newmm's ``word_tokenize``)."""
    if not text or not isinstance(text, str):
        return []
    return _segment()(text)
