"""Writes and workflows of the copilot, by concern:

- `pipeline`: the pipeline task's work (one customer message → one draft, acted on)
- `drafts`: agents' actions on drafts (send, reject, regenerate)
- `takeover`: an agent taking a ticket over, handing it back, switching its drafts off
- `prompt_templates`: versions of the draft prompt
- `policy`: the policy's per-intent switches
- `replies`, `stream`: posting a reply; publishing a draft's events while it is written
"""

from apps.copilot.services.drafts import (
    draft_regenerate,
    draft_regenerate_request,
    draft_reject,
    draft_send,
)
from apps.copilot.services.pipeline import pipeline_fail, pipeline_run, pipeline_warm
from apps.copilot.services.policy import policy_auto_send_disable, policy_auto_send_pause
from apps.copilot.services.prompt_templates import (
    prompt_template_activate,
    prompt_template_ensure_default,
    prompt_template_publish,
)
from apps.copilot.services.takeover import ticket_assist_set, ticket_handback, ticket_takeover

__all__ = [
    "draft_regenerate",
    "draft_regenerate_request",
    "draft_reject",
    "draft_send",
    "pipeline_fail",
    "pipeline_run",
    "pipeline_warm",
    "policy_auto_send_disable",
    "policy_auto_send_pause",
    "prompt_template_activate",
    "prompt_template_ensure_default",
    "prompt_template_publish",
    "ticket_assist_set",
    "ticket_handback",
    "ticket_takeover",
]
