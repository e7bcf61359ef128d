"""Screening of free text for personal data that must never enter LMIS.

People appear only as pseudonymous ids. A free-text field (a vacancy title, say) that contains something
shaped like a resident registration number, a phone number or an e-mail address is rejected, and the
offending part is masked wherever the value is echoed back (errors, dead-letter records, logs).

Text is normalised before it is screened (:func:`normalise`): compatibility forms folded (NFKC: full-width
digits and ＠), invisible format characters removed (zero-width spaces, joiners, bidi marks), every kind of
dash read as ``-``. Digit groups separated by up to three spaces, dashes, dots, slashes, underscores,
brackets or ``+`` are read together, so ``010 - 9876 - 5432`` and ``900101_1234567`` are found. Every pattern
runs in time linear in the text's length (no nested or overlapping repetition); callers that echo untrusted
input still cap it (:data:`SCREEN_LIMIT`) so that one message can never hold the worker for long.

>>> find_pii("담당 010 – 9876 – 5432")
'phone number'
>>> redact("연락 kim.minsu@예시.한국")
'연락 ***.*****@**.**'
"""

from __future__ import annotations

import re
import unicodedata

# Untrusted text longer than this is cut before it is screened and echoed (errors, dead letters).
SCREEN_LIMIT = 4096

# Invisible characters that split a number or an address without showing: Unicode's format characters
# (category Cf) and the Hangul fillers, which render as nothing.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb\U000110bd\U000110cd\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001-\U000e007f]"
)
# Every dash (Unicode's Pd, the minus sign, tildes used as dashes) read as '-'.
_DASHES = re.compile("[\u058a\u05be\u1400\u1806\u2010-\u2015\u2043\u2212\u2e17\u2e1a\u2e3a\u2e3b\u2e40"
                     "\u301c\u3030\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d~\u223c]")
# Digits joined across short runs of separators: '\d' and the separators are disjoint, so a run is matched
# in one pass.
_DIGIT_RUN = re.compile(r"\d+(?:[\s\-./_()\[\]+]{1,3}\d+)*")
_GROUP = re.compile(r"\d+")
# 주민등록번호 YYMMDD + 7 digits (the 7th 1-8: century/sex/foreigner); mobile 010/011/016-019, Seoul 02, area
# codes 031-064, internet 070, with 82 for +82; national 15xx/16xx/18xx numbers.
_RRN = r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[1-8]\d{6}"
_PHONE = r"(?:82|0)(?:1[016789]|2|[3-6][1-5]|70)\d{7,8}|1[568]\d{6}"
_DIGITS_KIND = (("resident registration number", re.compile(_RRN)), ("phone number", re.compile(_PHONE)))
_DATE = re.compile(r"(?:19|20)\d\d\.(?:0?[1-9]|1[0-2])\.(?:0?[1-9]|[12]\d|3[01])")
_MAX_DIGITS = 13  # the longest shape above (an RRN; +82 mobile numbers have 12)
_MAX_GROUPS = 32  # longer runs of digit groups are no one's writing: read as one string of digits
# Internationalised too: local part and domain labels of any script's letters and digits.
EMAIL = re.compile(r"[\w.%+-]{1,64}\s{0,3}@\s{0,3}(?:[\w-]{1,63}\.){1,8}[^\W\d_]{2,63}")


def normalise(text: str) -> str:
    """The text as screened: NFKC, invisible format characters removed, dashes as ``-``."""
    text = unicodedata.normalize("NFKC", text)
    return _DASHES.sub("-", _INVISIBLE.sub("", text))


def _ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(c)) for c in text)


def _digits_kind(run: str) -> str | None:
    """The kind of personal data a run of digit groups holds: any consecutive groups read together, except
    across a date written with a four-digit year (2026.03.02 - 2026.04.30 is two dates, not 02-2026-0430)."""
    groups = [g if g.isascii() else _ascii_digits(g) for g in _GROUP.findall(run)]
    if sum(map(len, groups)) < 8:
        return None
    if len(groups) > _MAX_GROUPS:
        digits = "".join(groups)
        for kind, pattern in _DIGITS_KIND:
            if pattern.search(digits):
                return kind
        return None
    dated = [False] * len(groups)
    for i in range(len(groups) - 2):
        if _DATE.fullmatch(".".join(groups[i:i + 3])):
            dated[i:i + 3] = [True] * 3
    for i in range(len(groups)):
        joined = ""
        for j in range(i, len(groups)):
            if dated[j]:
                break
            joined += groups[j]
            if len(joined) > _MAX_DIGITS:
                break
            for kind, pattern in _DIGITS_KIND:
                if pattern.fullmatch(joined):
                    return kind
    return None


def _spans(text: str, first_only: bool) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the personal data in normalised ``text``."""
    found: list[tuple[int, int, str]] = []
    for m in _DIGIT_RUN.finditer(text):
        kind = _digits_kind(m.group(0))
        if kind:
            found.append((m.start(), m.end(), kind))
            if first_only:
                return found
    if "@" in text:
        for m in EMAIL.finditer(text):
            found.append((m.start(), m.end(), "e-mail address"))
            if first_only:
                return found
    return found


def find_pii(text: str) -> str | None:
    """Name of the first kind of personal data found in ``text`` (normalised first), or None."""
    found = _spans(normalise(text), first_only=True)
    return found[0][2] if found else None


_MASKED = re.compile(r"\w")


def redact(text: str) -> str:
    """``text`` normalised, with the letters and digits of every personal-data-looking part masked by ``*``."""
    text = normalise(text)
    spans = _spans(text, first_only=False)
    if not spans:
        return text
    out, at = [], 0
    for start, end, _ in sorted(spans):
        if start < at:  # an address around digits already masked
            start = at
        out.append(text[at:start])
        out.append(_MASKED.sub("*", text[start:end]))
        at = max(at, end)
    out.append(text[at:])
    return "".join(out)
