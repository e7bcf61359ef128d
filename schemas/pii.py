"""Screening of free text for personal data that must never enter LMIS.

People appear only as pseudonymous ids. A free-text field (a vacancy title, say) that contains something
shaped like a resident registration number, a phone number or an e-mail address is rejected, and the
offending part is masked wherever the value is echoed back (errors, dead-letter records, logs).
"""

from __future__ import annotations

import re

# 주민등록번호: YYMMDD-GNNNNNN, the 7th digit 1-8 (century/sex/foreigner); the dash may be missing.
RRN = re.compile(r"(?<!\d)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?[-–]?\s?[1-8]\d{6}(?!\d)")
# Mobile 010/011/016-019, Seoul 02, area codes 031-064, internet 070, national 15xx/16xx/18xx, +82 forms.
PHONE = re.compile(
    r"(?<![\d])(?:\+?82[-.\s]?|0)(?:1[016789]|2|[3-6][1-5]|70)\)?[-.\s]?\d{3,4}[-.\s]?\d{4}(?!\d)"
    r"|(?<![\d])1[568]\d{2}-\d{4}(?!\d)"
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+\s?(?:@|＠)\s?[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("resident registration number", RRN),
    ("phone number", PHONE),
    ("e-mail address", EMAIL),
)


def find_pii(text: str) -> str | None:
    """Name of the first kind of personal data found in ``text``, or None."""
    for kind, pattern in PATTERNS:
        if pattern.search(text):
            return kind
    return None


def redact(text: str) -> str:
    """``text`` with every personal-data-looking part masked by ``*``."""
    for _, pattern in PATTERNS:
        text = pattern.sub(lambda m: re.sub(r"[0-9A-Za-z]", "*", m.group(0)), text)
    return text
