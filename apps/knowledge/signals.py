"""What the knowledge base tells the apps above it (it never imports them).

`knowledge_imported` is sent when an import finished and changed the published knowledge
base (articles added, updated or unpublished), with `report` (an ImportReport) and
`source_name`: the moment to redo work that depends on the whole knowledge base (the
copilot relearns its intent→article links). Not sent per article or per API batch: those
arrive in bursts, and the copilot's periodic check covers them.
"""

from django.dispatch import Signal

knowledge_imported = Signal()
