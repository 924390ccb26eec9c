"""Log lines carry ids, not customers' data: a filter that masks what slipped through anyway.

Code logs ticket and message ids, never message text; this filter is the second line, for a
library's or an error's message that quotes a customer (an SMTP refusal naming the address,
a provider error echoing the prompt). It must be cheap to load and to run on every record, so
it uses python-stdnum's checksums (cards by Luhn, IBANs by mod-97, SSNs) and libphonenumber,
not Presidio (whose import loads transformers: seconds, on a web process's first log line).
Names are left to the first line.
"""

from __future__ import annotations

import logging
import re

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn

_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_DIGITS = re.compile(r"\D")


def text_mask(text: str) -> str:
    """`text` with cards, IBANs, emails, phone numbers and SSNs replaced by their type."""
    text = _EMAIL.sub("<EMAIL>", text)
    text = _IBAN.sub(lambda m: "<IBAN>" if iban.is_valid(m.group(0)) else m.group(0), text)
    text = _CARD.sub(
        lambda m: "<CREDIT_CARD>" if luhn.is_valid(_DIGITS.sub("", m.group(0))) else m.group(0),
        text,
    )
    text = _SSN.sub(lambda m: "<SSN>" if ssn.is_valid(m.group(0)) else m.group(0), text)
    if sum(c.isdigit() for c in text) >= 7:
        for region in ("GB", "US"):
            for match in reversed(list(phonenumbers.PhoneNumberMatcher(text, region))):
                text = text[: match.start] + "<PHONE>" + text[match.end :]
    return text


class PiiLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
            masked = text_mask(message)
        except Exception:  # a log line is never lost to its filter
            return True
        if masked != message:
            record.msg, record.args = masked, None
        return True
