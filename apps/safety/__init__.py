"""Safety: what stands between strangers' text, the model and the customer.

- `pii.pseudonymiser()` → a `Pseudonymiser` for one model call: `redact(text)` replaces
  personal data with typed placeholders (`<CREDIT_CARD_1>`, `<PERSON_1>`), the same value
  always with the same placeholder; `restore(text)` puts the values back; `stream(publish)`
  restores a streamed reply piece by piece. `pii.pii_find(text)` lists what it would replace
  (types and spans, for caches and logs). Detection is Microsoft Presidio's analyzer with its
  checksummed recognisers (Luhn, mod-97, SSN, NINO), phone numbers by Google's
  libphonenumber, names by a spaCy model, and recognisers added here for what Presidio lacks
  (UK sort code and account, date of birth, street addresses).
"""
