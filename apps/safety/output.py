"""Output guard: what a reply must not carry to a customer, whatever the model was told.

    findings = output_check(reply=..., evidence=[passage texts], known_urls=[...],
                            customer_text=..., system_prompt=..., canary=...)

Each finding is {"kind", "text"}; any finding keeps the reply from being sent on its own
(reason `unsafe_output`). Kinds:

- "link": a link or web address not in the knowledge base, in any form: `https://`, `www.`,
  a bare `evil.example/reset` (any registered or reserved top-level domain, judged with
  tldextract's bundled public-suffix list), `//host`, `javascript:`/`data:` links, Markdown
  links; the hosts of the cited articles and of links inside the passages are allowed.
- "contact": an email address or phone number found neither in the passages nor in what the
  customer wrote (their own details may be repeated back to them).
- "prompt leak": the call's canary token, or eight words in a row of the system prompt.
- "commitment": an amount of money, a refund/credit/compensation promise, or a date or
  deadline that no passage states.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

import phonenumbers

_SCHEME_LINK = re.compile(r"""(?:https?|ftp)://[^\s<>"'()\[\]{}]+""", re.IGNORECASE)
_SCRIPT_LINK = re.compile(r"\b(?:javascript|data|vbscript):[^\s<>\"')]*", re.IGNORECASE)
_PROTOCOL_RELATIVE = re.compile(
    r"(?<![:\w/])//([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?:/[^\s<>\"')]*)?", re.IGNORECASE
)
_BARE_HOST = re.compile(
    r"(?<![@\w.-])((?:www\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})"
    r"(?::\d{2,5})?(?:/[^\s<>\"')]*)?",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_MONEY = re.compile(
    r"(?:[$£€¥]\s?\d[\d,.]*|\b\d[\d,.]*\s?(?:usd|eur|gbp|dollars?|euros?|pounds?|cents?)\b)",
    re.IGNORECASE,
)
_PROMISE = re.compile(
    r"\b(?:(?:i|we)(?:'ve| have| will|'ll)?\s+(?:approved|issued|credited|refunded|processed|"
    r"granted|authori[sz]ed|confirmed|waived|reimbursed)|(?:is|has been|have been|will be)\s+"
    r"(?:approved|issued|credited|refunded|granted|authori[sz]ed|confirmed|waived|reimbursed)|"
    r"\bguarantee[ds]?\b|\bi (?:promise|confirm)\b|\bwe (?:promise|confirm)\b)",
    re.IGNORECASE,
)
_DEADLINE = re.compile(
    r"\b(?:by|before|on|until|no later than|within)\s+(?:(?:next\s+)?(?:monday|tuesday|"
    r"wednesday|thursday|friday|saturday|sunday)|tomorrow|today|tonight|the end of (?:the )?"
    r"(?:day|week|month)|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?[a-z]{3,9}|[a-z]{3,9}\s+\d{1,2}"
    r"(?:st|nd|rd|th)?|\d{1,2}[./-]\d{1,2}(?:[./-]\d{2,4})?|\d+\s+(?:hours?|days?|weeks?))\b",
    re.IGNORECASE,
)
_WORDS = re.compile(r"[a-z0-9']+", re.IGNORECASE)
LEAK_WORDS = 8


@functools.cache
def _suffixes() -> Any:
    import tldextract

    from apps.safety.pii import offline_suffix_list

    offline_suffix_list()
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


# Reserved for examples and tests (RFC 2606), not in the public-suffix list, and exactly what
# an attacker's made-up link looks like in a test.
_RESERVED = ("example", "test", "invalid", "localhost", "local", "internal", "onion")


def _is_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host.rsplit(".", 1)[-1] in _RESERVED:
        return True
    parts = _suffixes()(host)
    return bool(parts.suffix and parts.domain)


def _host_of(link: str) -> str:
    link = re.sub(r"^(?:[a-z]+:)?//", "", link.strip(), flags=re.IGNORECASE)
    host = re.split(r"[/:?#]", link, maxsplit=1)[0].lower()
    return host.removeprefix("www.")


def links_found(text: str) -> list[str]:
    """Every link or web address in `text`, in whatever form it is written."""
    found: list[str] = []
    for pattern in (_SCHEME_LINK, _SCRIPT_LINK, _PROTOCOL_RELATIVE):
        found += [m.group(0) for m in pattern.finditer(text)]
    rest = _PROTOCOL_RELATIVE.sub(" ", _SCRIPT_LINK.sub(" ", _SCHEME_LINK.sub(" ", text)))
    rest = _EMAIL.sub(" ", rest)
    for match in _BARE_HOST.finditer(rest):
        if _is_host(match.group(1)):
            found.append(match.group(0))
    return [link.rstrip(".,;:!?)") for link in found]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _phones(text: str) -> list[str]:
    found: dict[str, str] = {}  # by position: one number read in several regions is one
    for region in ("GB", "US", "DE", "FR"):
        for match in phonenumbers.PhoneNumberMatcher(text, region):
            found.setdefault(f"{match.start}", match.raw_string)
    return list(found.values())


def output_check(
    *,
    reply: str,
    evidence: Iterable[str],
    known_urls: Iterable[str] = (),
    customer_text: str = "",
    system_prompt: str = "",
    canary: str = "",
) -> list[dict]:
    evidence_text = "\n".join(evidence)
    findings: list[dict] = []

    allowed_hosts = {_host_of(url) for url in known_urls if url}
    allowed_hosts |= {_host_of(link) for link in links_found(evidence_text)}
    for link in links_found(reply):
        scripted = link.lower().startswith(("javascript:", "data:", "vbscript:"))
        if scripted or _host_of(link) not in allowed_hosts:
            findings.append({"kind": "link", "text": link[:200]})

    known_contacts = {e.lower() for e in _EMAIL.findall(evidence_text + "\n" + customer_text)}
    for email in _EMAIL.findall(reply):
        if email.lower() not in known_contacts:
            findings.append({"kind": "contact", "text": email})
    known_numbers = {_digits(p)[-9:] for p in _phones(evidence_text + "\n" + customer_text)}
    for phone in _phones(reply):
        if _digits(phone)[-9:] not in known_numbers:
            findings.append({"kind": "contact", "text": phone})

    if canary and canary in reply:
        findings.append({"kind": "prompt leak", "text": "the prompt's canary token"})
    elif system_prompt:
        shared = _shared_run(reply, system_prompt, LEAK_WORDS)
        if shared:
            findings.append({"kind": "prompt leak", "text": shared})

    evidence_lower = evidence_text.lower()
    evidence_amounts = {_digits(m) for m in _MONEY.findall(evidence_text)}
    for amount in _MONEY.findall(reply):
        if _digits(amount) not in evidence_amounts:
            findings.append({"kind": "commitment", "text": f"amount {amount.strip()}"})
    for promise in _PROMISE.finditer(reply):
        if promise.group(0).lower() not in evidence_lower:
            findings.append({"kind": "commitment", "text": _around(reply, promise)})
    for deadline in _DEADLINE.finditer(reply):
        if deadline.group(0).lower() not in evidence_lower:
            findings.append({"kind": "commitment", "text": _around(reply, deadline)})
    return findings


def _around(text: str, match: re.Match[str], width: int = 60) -> str:
    start, end = max(0, match.start() - width), min(len(text), match.end() + width)
    return text[start:end].strip()


def _shared_run(reply: str, prompt: str, size: int) -> str:
    """The first run of `size` words that the reply copies from the prompt ("" if none)."""
    prompt_words = [w.lower() for w in _WORDS.findall(prompt)]
    grams = {tuple(prompt_words[i : i + size]) for i in range(len(prompt_words) - size + 1)}
    words = _WORDS.findall(reply)
    lowered = [w.lower() for w in words]
    for i in range(len(lowered) - size + 1):
        if tuple(lowered[i : i + size]) in grams:
            return " ".join(words[i : i + size])
    return ""
