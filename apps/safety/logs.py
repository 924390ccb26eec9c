"""Log lines carry ids, not customers' data: a filter that masks what slipped through anyway.

Code logs ticket and message ids, never message text; this filter is the second line, for a
library's or an error's message that quotes a customer (an SMTP refusal naming the address,
a provider error echoing the prompt). It uses Presidio's pattern recognisers only (cards by
Luhn, IBANs by mod-97, emails, phone numbers by libphonenumber): no NER model runs per log
line, so names are left to the first line.
"""

from __future__ import annotations

import functools
import logging
from typing import Any


@functools.cache
def _recognizers() -> list[Any]:
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        PhoneRecognizer,
        UkNinoRecognizer,
        UsSsnRecognizer,
    )

    from apps.safety.pii import offline_suffix_list

    offline_suffix_list()
    return [
        CreditCardRecognizer(),
        IbanRecognizer(),
        EmailRecognizer(),
        PhoneRecognizer(supported_regions=("GB", "US")),
        UsSsnRecognizer(),
        UkNinoRecognizer(),
    ]


def text_mask(text: str) -> str:
    """`text` with cards, IBANs, emails, phone numbers and national ids replaced by their type."""
    spans = []
    for recognizer in _recognizers():
        for found in recognizer.analyze(text, recognizer.supported_entities, None) or []:
            if found.score >= 0.4:
                spans.append((found.start, found.end, found.entity_type))
    masked, position = [], 0
    for start, end, kind in sorted(spans):
        if start < position:
            continue
        masked += [text[position:start], f"<{kind}>"]
        position = end
    masked.append(text[position:])
    return "".join(masked)


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
