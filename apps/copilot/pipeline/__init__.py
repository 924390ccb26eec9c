"""The copilot pipeline, one module per stage, composed in order by `compose.draft_compose`.

    context     the conversation so far, bounded; the query            context.py
    guard       injected instructions in the message (apps.safety)     guard.py
    triage      the message's reading: intent, language, early handoffs reading.py
    retrieve    hybrid search, with the likely intents' articles lifted retrieval.py
    guard       instructions planted in the retrieved passages         guard.py
    route       which model alias drafts                               routing.py
    cache       a reply already written for the same question          cache.py
    draft       the model (or the cache) writes the reply, personal
                data pseudonymised for a remote model                  drafting.py
    validate    citations, links, groundedness, the output guard       validation.py
    confidence  the calibrated probability that the reply is right     confidence.py
    decide      auto-send, agent review or handoff, with a reason      decision.py

Each stage is a typed function from what earlier stages found to its own result; a stage
that ends the pipeline early says why (`record.Handoff`). `record.Composition` is what a
Draft row stores. No module here reads or changes a ticket: the pipeline task
(apps.copilot.services.pipeline) and the evaluation compose drafts the same way.

This package's `__init__` imports nothing, so a stage's own module (e.g. `routing`, whose
rule the policy selectors read) is importable without loading the rest.
"""
