"""What BM25 sees of a text, the same in every store: numbers and units spelled one way,
then words lower-cased, stop words dropped and stemmed (Snowball, English).

The embedded store feeds the tokens to bm25s; Milvus gets them joined by spaces
(``analyzed``), so its own BM25 analyzer only has to split on spaces and both stores
score the same terms.
"""

from __future__ import annotations

import logging
import re

from ..text import normalize_numbers, stopwords

# Units are written both ways: "600 sq km" must match "square kilometres" for BM25.
_UNIT_SPELLINGS = ((re.compile(r"\bsq\.?(?=\s*(?:km|mi)\b)", re.IGNORECASE), "square"),
                   (re.compile(r"(?<=\d)(?=kms?\b)", re.IGNORECASE), " "),  # "50km" -> "50 km"
                   (re.compile(r"\bkms?\b", re.IGNORECASE), "kilometres"))


def lexical_text(text: str) -> str:
    text = normalize_numbers(text)
    for pattern, spelled in _UNIT_SPELLINGS:
        text = pattern.sub(spelled, text)
    return text


def tokens(texts: list[str], return_ids: bool = True):
    """bm25s tokens of ``texts`` (ids and vocabulary, or lists of strings)."""
    import bm25s
    import Stemmer  # PyStemmer: "longest" finds "long", "troops" finds "troop"

    logging.getLogger("bm25s").setLevel(logging.WARNING)  # its import sets it to DEBUG, over any config
    return bm25s.tokenize([lexical_text(t) for t in texts], stopwords=list(stopwords()),
                          stemmer=Stemmer.Stemmer("english"), return_ids=return_ids, show_progress=False)


def analyzed(texts: list[str]) -> list[str]:
    """Each text as its BM25 terms joined by spaces, for a store that analyzes text itself."""
    return [" ".join(words) for words in tokens(texts, return_ids=False)]
