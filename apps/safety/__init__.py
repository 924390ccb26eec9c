"""Safety: what stands between strangers' text, the model and the customer.

- `pii`: `Pseudonymiser()` for one model call: `redact(text)` replaces personal data with
  typed placeholders (`<CREDIT_CARD_1>`, `<PERSON_1>`), the same value always with the same
  placeholder; `restore(text)` puts the values back; `stream(send)` restores a streamed reply
  piece by piece. `pii_find(text)` lists what it would replace (the caches ask it).
  Microsoft Presidio's analyzer, libphonenumber, a spaCy model, and recognisers for what
  Presidio lacks.
- `logs`: the logging filter that masks cards, IBANs, emails, phone numbers in log lines.
- `injection`: `injection_scan(text, vector=)` → Scan(suspected, score, evidence).
- `output`: `output_check(reply=, evidence=, ...)` → findings (links, contacts, prompt leaks,
  commitments).
- `throttle`: `limit_hit(name, *keys)` (Redis rate limits, 429) and `client_ip(request)`.
"""
