"""Checks of a whole answer against the question asked: is it the kind of answer asked
for, and are its passages about what was asked? (The rules in ``rules`` check each claim
against its own passage; a claim can be true and still not answer the question.)"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..intent import Intent
from ..text import DATE, NUMBER_WORDS, WORD, content_terms, same_word, stopwords, strip_markers
from .rules import UNITS, name_phrases, new_names, register

register("kind_of_answer", """An answer must be of the kind asked for: "how many" needs a quantity (in digits or
    words), "how much … cost/pay" an amount with a currency ("10 per cent" is no dollar value), "when" a
    date or time, "who" or "which …" a name the question did not already use (and not "will be announced").""")
register("named_outlets", """Asked what an outlet reported ("according to TechCrunch"), an answer must cite a passage
    from that outlet (or from one of the outlets named); another outlet's passage does not answer it.""")
register("question_names", """An answer is about what the question names: at least one of the question's own names
    (outlets aside) is in a cited article. Asked about Shreyanka Patil's last match, a passage on
    an Inter Miami game does not answer, whatever it says.""")
register("question_role", """Asked "who is the <role> of …" (the runner-up, the director, the new CEO), a cited article
    must name that role: a passage naming the 2010 World Cup's winner does not say who was its runner-up.""")
register("quote_on_question", """A sentence the second look copied counts only if the passages it cites are about
    the question: most of the question's content words occur there.""")

ASKS_QUANTITY = re.compile(r"^\W*((and|so|roughly|approximately|about|exactly)\W+)?"
                           r"(how (many|much|long|far|high|big|large|old)|what (percentage|share|proportion|number))\b",
                           re.IGNORECASE)
_HAS_QUANTITY = re.compile(rf"\d|\b({NUMBER_WORDS})\b", re.IGNORECASE)
_ASKS_MONEY = re.compile(r"^\W*(how much\b.*\b(pay|pays|paying|paid|cost|costs|spend|spent|worth|charge[sd]?)\b|"
                         r"what\b.*\b(dollar value|price|cost|sum)\b)", re.IGNORECASE)
# Any currency: a symbol (Unicode category Sc, matched by the range below), an ISO 4217 code, or its name.
_CURRENCY = (r"(?:(?i:dollars?|euros?|pounds?|sterling|yen|yuan|renminbi|won|rupees?|roubles?|rubles?|francs?|pesos?|"
             r"reais|real|rand|lira|liras|kronor|krona|kroner|krone|zloty|shekels?|dinars?|dirhams?|riyals?|baht|"
             r"ringgit|rupiah|hryvnias?|forints?|lei|leu)|[A-Z]{3})")
_HAS_MONEY = re.compile(rf"[\u0024\u00a2-\u00a5\u058f\u060b\u07fe\u07ff\u09f2\u09f3\u09fb\u0af1\u0bf9\u0e3f\u17db"
                        rf"\u20a0-\u20c0\ua838\ufdfc\ufe69\uff04\uffe0\uffe1\uffe5\uffe6]\s*\d|"
                        rf"\d[\d,.]*\s*(?i:thousand|million|billion|trillion|mn|bn|m|b)?\s*{_CURRENCY}\b")
_MONTH = re.compile(r"jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|oct(ober)?|"
                    r"nov(ember)?|dec(ember)?")
# Stems of words that say how a question is put, not what it is about: "What type of
# missile did Kyiv reportedly ask for?" is about a missile and Kyiv.
_FRAMING = frozenset({"type", "kind", "sort", "report", "name"})


_LEAD = r"^\W*(?:(?:and|so|but)\W+)?"
_ASKS_WHEN = re.compile(_LEAD + r"(?:when\b|(?:in )?(?:what|which) (?:year|date|day|month|time)\b)", re.IGNORECASE)
_HAS_TIME = re.compile(r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|today|yesterday|tomorrow|"
                       r"tonight|ago|week|month|year|decade|century|morning|afternoon|evening|night|spring|summer|"
                       r"autumn|fall|winter|season|since|until|before|after|during)\b|\d", re.IGNORECASE)
_ASKS_NAME = re.compile(_LEAD + r"(?:who|whom|whose|which)\b(?! (?:of (?:the|these|those) )?(?:year|date|day|month|time)s?\b)",
                        re.IGNORECASE)


# "The winner will be announced on December 12": a preview says who is not yet known.
_PENDING = re.compile(r"\b(?:(?:will|would|is|are|was|were)\s+(?:(?:set|due|expected|scheduled|going)\s+to\s+)?be|"
                      r"(?:has|have|had)\s+(?:not\s+(?:yet\s+)?|yet\s+to\s+)been|yet\s+to\s+be)\s+"
                      r"(?:announced|named|revealed|decided|determined|chosen|selected|unveiled|crowned)\b", re.IGNORECASE)


# What a question measures: the unit it names ("how many square kilometres"), else its "how" word.
_ASKS_UNIT = re.compile(r"\bhow (?:many|much)\s+(?:(?:more|fewer|less)\s+)?(?:" +
                        "|".join(f"(?P<{dim}>{units})" for dim, units in UNITS.items()) + r")\b", re.IGNORECASE)
_HOW = {"far": {"length"}, "high": {"length"}, "tall": {"length"}, "deep": {"length"}, "wide": {"length"},
        "long": {"length", "time"}, "heavy": {"mass"}}
_ASKS_HOW = re.compile(_LEAD + r"(?:roughly |approximately |about |exactly )?how (" + "|".join(_HOW) + r")\b",
                       re.IGNORECASE)
_ASKS_AREA = re.compile(r"\bhow (?:big|large|much)\b.*\b(?:area|territory|land)\b", re.IGNORECASE)


def asked_dimensions(question: str) -> frozenset[str]:
    """What a question asks to be measured: {"area"} for "how many square kilometres …" or
    "how big is the area …", {"length"} for "how far …", {"length", "time"} for "how long …";
    empty for any other question (a price is no area: "how much did the land cost")."""
    m = _ASKS_UNIT.search(question)
    if m:
        return frozenset({m.lastgroup})
    if _ASKS_AREA.search(question) and not _ASKS_MONEY.search(question):
        return frozenset({"area"})
    m = _ASKS_HOW.search(question)
    return frozenset(_HOW[m.group(1).lower()]) if m else frozenset()


def fits_question(question: str, text: str) -> bool:
    """A "how many" question is not answered by a sentence without any quantity, nor a
    question about money by one without a currency, nor "when" by one without a date or
    time, nor "who" or "which …" by one that names nobody the question did not, or that says
    who it is will be announced."""
    said = strip_markers(text)
    if _ASKS_MONEY.search(question) and not _HAS_MONEY.search(said):
        return False
    if _ASKS_WHEN.search(question) and not (DATE.search(said) or _HAS_TIME.search(said)):
        return False
    if _ASKS_NAME.search(question):
        premise = frozenset(w.lower() for w in WORD.findall(question))
        named = [n for n in new_names(said, premise) if not _MONTH.fullmatch(n)]  # "December" names nobody
        if not named or _PENDING.search(said):
            return False
    return not ASKS_QUANTITY.search(question) or bool(_HAS_QUANTITY.search(said))


# "Who was the runner-up of …", "Who is Ukraine's ambassador to …": a role in at most three words.
_ASKS_ROLE = re.compile(_LEAD + r"who\s+(?:is|was|are|were|will be|has been)\s+(?:(?:the|a|an)\s+)?"
                        r"((?:[\w'’\-]+\s+){0,2}?[\w'’\-]+)\s+(?:of|in|for|at|on|to|from)\b", re.IGNORECASE)


def holds_role(question: str, cited_articles: Sequence[str]) -> bool:
    """Whether a cited article names the role the question asks about (its last word,
    "runner-up" of "the runner-up"; "CEO" of "the new CEO"); a question asking for no
    role, or for an action ("Who was named …"), passes."""
    m = _ASKS_ROLE.search(question)
    words = m.group(1).lower().split() if m else []
    if not words or any(w.endswith(("ed", "ing")) or w in ("who", "that", "which") for w in words):
        return True
    role = words[-1].strip("'’-")
    if role in stopwords() or re.fullmatch(rf"{NUMBER_WORDS}|\d+", role):
        return True
    return any(same_word(role, w) for text in cited_articles for w in WORD.findall(text))


def on_question(question: str, previous: str | None, cited: Sequence[str], share: float = 0.6) -> bool:
    """Whether the cited passages are about the question: most of its content words (with
    the previous question's, for a follow-up) occur there."""
    wanted = content_terms(question)
    if previous:
        wanted |= content_terms(previous)
    wanted -= _FRAMING
    found = content_terms(" ".join(cited))
    return bool(wanted) and len(wanted & found) / len(wanted) >= share


def cites_named_outlet(intent: Intent, cited_sources: Sequence[str | None]) -> bool:
    """Whether an answer cites one of the outlets the question names (if it names any)."""
    named = set().union(*intent.outlets) if intent.outlets else set()
    return not named or any(source in named for source in cited_sources)


def names_the_topic(question: str, intent: Intent, cited_articles: Sequence[str]) -> bool:
    """Whether a cited article holds one of the names the question uses, outlets aside, written
    as a name ("Times" is not found in "at times") and as the same name: "Maxwell" of "Brandon
    Maxwell" is not the "Maxwell Award", while "Patil" is "Shreyanka Patil" (one name holds the
    other). A question that names nothing passes."""
    outlets = {w.lower() for group in intent.outlets for o in group for w in WORD.findall(o)}
    # a question's first word, and a quotation's, is capitalised as a word, not a name
    body = re.sub(r"(?:^\W*|(?:^|(?<=\s))[\"'‘“])\w+", "", question)
    asked = [frozenset(n for n in p if not any(same_word(n, o) for o in outlets) and not _MONTH.fullmatch(n))
             for p in name_phrases(body)]
    asked = [p for p in asked if p]
    if not asked:
        return True
    held = [q for text in cited_articles for q in name_phrases(text)]
    return any(_within(p, q) or _within(q, p) for p in asked for q in held)


def _within(a: frozenset[str], b: frozenset[str]) -> bool:
    """Every word of name ``a`` is a word of name ``b``."""
    return all(any(same_word(x, y) for y in b) for x in a)
