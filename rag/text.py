"""Text utilities every stage shares: citation markers, numbers, words and stems.

One place for each pattern, so retrieval, prompting, verification, evaluation and
the front ends agree on what a marker, a figure or a word is.
"""

from __future__ import annotations

import functools
import re

# --- citation markers ----------------------------------------------------------------------

MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")  # [1], [2, 3], [4; 5]: what the model writes
RENDERED_MARKER = re.compile(r"\[(\d+)\]")  # one marker as a verified answer shows it


def marker_numbers(group: str) -> tuple[int, ...]:
    """(2, 3) for the "2, 3" of "[2, 3]"."""
    return tuple(int(n) for n in re.findall(r"\d+", group))


def strip_markers(text: str) -> str:
    """The text without its markers (earlier answers' markers refer to earlier passages)."""
    return re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", text)).strip()


# --- numbers -----------------------------------------------------------------------------------

_THOUSANDS = re.compile(r"(?<=\d)[,\u202f](?=\d{3}\b)")
MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
# Dates are numbers too, but "Oct. 29" and "2024" are no answer to "how many".
DATE = re.compile(rf"\b{MONTH}\s+\d{{1,2}}(?:\s*(?:and|to|-|–)\s*\d{{1,2}})?\b|\b\d{{1,2}}\s+{MONTH}|\b(?:19|20)\d\d\b",
                  re.IGNORECASE)
YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_FIGURE = re.compile(r"(?<![\d.])\d+(?:\.\d+)?")
# Every English number word: a quantity need not be written in digits ("twenty-two", "a dozen").
NUMBER_WORDS = (r"zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
                r"hundreds?|thousands?|millions?|billions?|trillions?|dozens?|several|few|half|a couple")


def normalize_numbers(text: str) -> str:
    """'160,000' and '160000' should match each other."""
    return _THOUSANDS.sub("", text)


def figures(text: str) -> set[str]:
    """The numbers a passage states, dates aside: what a "how many" answer is made of."""
    return set(_FIGURE.findall(DATE.sub(" ", normalize_numbers(text))))


# --- words ------------------------------------------------------------------------------------

WORD = re.compile(r"[^\W\d_][\w'’\-]*")  # letters first, in any script ("Zelenskyy", "Łódź", "München")


@functools.lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: Snowball stemming, "troops" -> "troop", "longest" -> "longest"

    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stemmer().stemWord(word.lower().strip("'’-"))


def same_word(a: str, b: str) -> bool:
    """Whether two words name the same thing: equal stems, or one stem extends the other
    by a short suffix of letters ("korea"/"korean", "ukrain"/"ukrainian"). Whole words only:
    "Austin" is not "Australia" (their stems share four letters), "Blinken" not "Blinken-Lavrov"."""
    sa, sb = stem(a), stem(b)
    if sa == sb:
        return True
    short, long = sorted((sa, sb), key=len)
    suffix = long[len(short):]
    return len(short) >= 5 and long.startswith(short) and suffix.isalpha() and len(suffix) <= 4


@functools.lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """bm25s's long English list plus words every news question is full of."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    return frozenset([*STOPWORDS_EN_PLUS, "many", "much", "say", "says", "said", "according"])


def content_terms(text: str) -> set[str]:
    """Stemmed words that carry meaning: what a question is about."""
    words = [w for w in re.findall(r"[^\W_]+", normalize_numbers(text).lower()) if w not in stopwords()]
    return {stem(w) for w in words}
