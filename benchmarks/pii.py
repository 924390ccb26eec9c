"""PII pseudonymisation on support messages: what would still reach a model, what is mangled.

    .venv/bin/python benchmarks/pii.py [--messages 300] [--seed 0] [--banking77 PATH]

The development set is generated: support messages in the phrasings customers use (written
here, 24 templates), filled by Faker with values from eight locales (names, street addresses,
phone numbers in national and international formats, Luhn-valid cards, valid IBANs, SSNs,
NINOs, dates of birth, bank accounts) and with look-alike tokens that are not personal data
and must reach the model intact (order numbers, amounts, a card's last four digits, payment
dates, tracking and reference codes). Half the templates (`--split held`) are kept apart from
any tuning. Prints, per type, the share of values that would reach the model; the share of
look-alike tokens mangled; the share of Banking77's real messages (no personal data to speak
of) that would be altered at all, and by which type; latency p50/p95 per message and for one
20 000-character message.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from faker import Faker  # noqa: E402
from percentiles import percentile  # noqa: E402

from apps.safety import pii  # noqa: E402

LOCALES = ["en_GB", "en_US", "en_IE", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"]

# {slot} is personal data, [slot] is a look-alike that must stay. Two halves: "dev" (tuned
# on) and "held" (measured only).
TEMPLATES = {
    "dev": [
        "Hi, my name is {name}. My card {card} was charged twice for order [order], [amount].",
        "please refund [amount] to IBAN {iban}, account holder {name}",
        "I moved to {address}, can you update my address? Phone {phone}",
        "my date of birth is {dob} and the app says it doesn't match",
        "This is {name}, call me back on {phone} about the [amount] payment from [date]",
        "Card ending [last4] was declined at a shop on [date]. Email me at {email}",
        "Sort code {sort_code} account number {account}, the transfer of [amount] never arrived",
        "Verification asks for my SSN {ssn}, I entered it but it fails",
        "My national insurance number is {nino}, why do you need it?",
        "Hello, {name} here ({email}). Tracking number [tracking] shows nothing.",
        "send the new card to {address} please, not the old one. Ref [reference]",
        "I was born on {dob}. Top up of [amount] with card {card} failed",
    ],
    "held": [
        "Dear team, I am {name} and I cannot log in. My number is {phone}.",
        "why was [amount] taken from my account? IBAN: {iban}",
        "Can you confirm the address you have: {address}",
        "{name}\n{address}\n{phone}\nMy card {card} is blocked since [date]",
        "DOB {dob}, email {email}. Order [order] is late",
        "pls help, card {card} stolen!! call {phone} asap - {name}",
        "The payee is {name}, sort code {sort_code}, acc {account}, amount [amount]",
        "For the tax form I gave SSN {ssn}; is that stored securely?",
        "Regards,\n{name}\nNI {nino}",
        "Transfer [reference] of [amount] on [date] to {iban} is pending",
        "my email changed to {email}, the old one was {email2}",
        "Hi it's {name}, last four [last4], I didn't make the [amount] payment",
    ],
}
TYPE_OF_SLOT = {
    "name": "PERSON", "card": "CREDIT_CARD", "iban": "IBAN", "address": "ADDRESS",
    "phone": "PHONE", "dob": "DATE_OF_BIRTH", "email": "EMAIL", "email2": "EMAIL",
    "sort_code": "SORT_CODE", "account": "BANK_ACCOUNT", "ssn": "NATIONAL_ID",
    "nino": "NATIONAL_ID",
}  # fmt: skip


def _spaced(value: str, rng: random.Random, size: int = 4) -> str:
    style = rng.choice(["plain", "space", "dash"]) if value.isdigit() else "space"
    if style == "plain":
        return value
    joiner = " " if style == "space" else "-"
    return joiner.join(value[i : i + size] for i in range(0, len(value), size))


def _personal(fake: Faker, slot: str, rng: random.Random) -> str:
    if slot == "name":
        return fake.name() if rng.random() < 0.7 else fake.first_name() + " " + fake.last_name()
    if slot == "card":
        return _spaced(fake.credit_card_number(card_type=rng.choice(["visa16", "mastercard"])), rng)
    if slot == "iban":
        return _spaced(fake.iban(), rng) if rng.random() < 0.5 else fake.iban()
    if slot == "address":
        return fake.street_address().replace("\n", ", ")
    if slot == "phone":
        return fake.phone_number()
    if slot == "dob":
        born = fake.date_of_birth(minimum_age=18, maximum_age=90)
        return born.strftime(
            rng.choice(["%d/%m/%Y", "%m/%d/%Y", "%Y-%m-%d", "%d %B %Y", "%B %d, %Y"])
        )
    if slot in ("email", "email2"):
        return fake.email()
    if slot == "sort_code":
        return "-".join(f"{rng.randrange(100):02d}" for _ in range(3))
    if slot == "account":
        return f"{rng.randrange(10**7, 10**8)}"
    if slot == "ssn":
        return Faker("en_US").ssn()
    if slot == "nino":
        prefix = rng.choice(["AB", "CE", "JK", "PR", "WX", "ZY"])
        digits = " ".join(f"{rng.randrange(100):02d}" for _ in range(3))
        return f"{prefix} {digits} {rng.choice('ABCD')}"
    raise KeyError(slot)


def _look_alike(slot: str, rng: random.Random) -> str:
    if slot == "order":
        return rng.choice(["#", "order ", "no. "]) + str(rng.randrange(10**5, 10**8))
    if slot == "amount":
        return rng.choice(["$", "£", "€"]) + f"{rng.randrange(1, 2000)}.{rng.randrange(100):02d}"
    if slot == "last4":
        return f"{rng.randrange(10**4):04d}"
    if slot == "date":
        return rng.choice(["12/03/2024", "3 March", "2024-11-02", "last Tuesday", "05.06.2025"])
    if slot == "tracking":
        return rng.choice(["1Z999AA10123456784", "JD014600003828374", "RR123456785GB"])
    if slot == "reference":
        return rng.choice(["TX-20931", "REF 44821907", "INV-2024-0031", "A1B2C3"])
    raise KeyError(slot)


def dev_set(
    count: int, seed: int, split: str
) -> list[tuple[str, list[tuple[str, str]], list[str]]]:
    """(message, [(type, personal value)], [look-alike tokens]) for `count` messages."""
    import re

    rng = random.Random(seed)
    Faker.seed(seed)
    fakers = {locale: Faker(locale) for locale in LOCALES}
    items = []
    for _ in range(count):
        template = rng.choice(TEMPLATES[split])
        fake = fakers[rng.choice(LOCALES)]
        personal: list[tuple[str, str]] = []
        kept: list[str] = []

        def fill(
            match: re.Match[str],
            fake: Faker = fake,
            personal: list[tuple[str, str]] = personal,
            kept: list[str] = kept,
        ) -> str:
            slot = match.group(2)
            if match.group(1) == "{":
                value = _personal(fake, slot, rng)
                personal.append((TYPE_OF_SLOT[slot], value))
            else:
                value = _look_alike(slot, rng)
                kept.append(value)
            return value

        text = re.sub(r"([{\[])(\w+)[}\]]", fill, template)
        items.append((text, personal, kept))
    return items


def _banking77(path: Path, limit: int) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [row["text"] for row in csv.DictReader(handle)]
    return random.Random(0).sample(rows, min(limit, len(rows)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--banking77", type=Path, default=BASE_DIR.parent / "shared/data/banking77/train.csv"
    )
    parser.add_argument("--benign", type=int, default=1000)
    args = parser.parse_args()

    pii.analyzer_warm()
    for split in ("dev", "held"):
        reached: Counter[str] = Counter()
        total: Counter[str] = Counter()
        kept_total = kept_mangled = 0
        latencies = []
        mangled_examples = []
        for text, personal, kept in dev_set(args.messages, args.seed, split):
            started = time.perf_counter()
            redacted = pii.Pseudonymiser().redact(text)
            latencies.append((time.perf_counter() - started) * 1000)
            for kind, value in personal:
                total[kind] += 1
                if value in redacted:
                    reached[kind] += 1
            for token in kept:
                kept_total += 1
                if token not in redacted:
                    kept_mangled += 1
                    mangled_examples.append(token)
        print(f"\n== {split} set: {args.messages} messages, seed {args.seed}")
        print(f"{'type':<15}{'values':>8}{'reached model':>15}")
        for kind in sorted(total):
            print(
                f"{kind:<15}{total[kind]:>8}{reached[kind]:>9} ({reached[kind] / total[kind]:.1%})"
            )
        strict = ("CREDIT_CARD", "IBAN", "NATIONAL_ID", "EMAIL", "PHONE")
        print(
            "strict types (card, IBAN, national id, email, phone) reaching the model: "
            f"{sum(reached[k] for k in strict)} of {sum(total[k] for k in strict)}"
        )
        soft = ("PERSON", "ADDRESS")
        caught = sum(total[k] - reached[k] for k in soft)
        print(
            f"names and addresses kept from the model: {caught / sum(total[k] for k in soft):.1%}"
        )
        print(
            f"look-alike tokens mangled: {kept_mangled} of {kept_total} "
            f"({kept_mangled / max(kept_total, 1):.1%}) {Counter(mangled_examples).most_common(5)}"
        )
        print(
            f"latency per message: p50 {percentile(latencies, 0.5):.1f} ms, "
            f"p95 {percentile(latencies, 0.95):.1f} ms"
        )

    if args.banking77.exists():
        texts = _banking77(args.banking77, args.benign)
        altered: Counter[str] = Counter()
        examples = []
        for text in texts:
            findings = pii.pii_find(text)
            if findings:
                altered[findings[0].type] += 1
                examples.append((text, [text[f.start : f.end] for f in findings]))
        share = sum(altered.values()) / len(texts)
        print(f"\nBanking77, {len(texts)} real messages: {share:.1%} altered {dict(altered)}")
        for text, values in examples[:8]:
            print(f"   {values} in {text[:90]!r}")

    big = " ".join(text for text, _, _ in dev_set(400, 1, "dev"))[:20_000]
    started = time.perf_counter()
    pii.Pseudonymiser().redact(big)
    print(f"\none 20 000-character message: {(time.perf_counter() - started) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
