"""`manage.py knowledge_gaps [--refresh] [--limit N] [--json]`: the questions agents keep
answering with no knowledge-base article behind them, clustered, with the agents' answers
(`--refresh` recomputes them first, as the hourly beat task does)."""

import json

from django.core.management.base import BaseCommand

from apps.evaluation.gaps import knowledge_gap_report, knowledge_gaps_refresh
from apps.evaluation.models import GapStatus, KnowledgeGap


class Command(BaseCommand):
    help = "Report the knowledge gaps (questions answered by agents with no article)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--refresh", action="store_true", help="recompute them first")
        parser.add_argument("--limit", type=int, default=20)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        if options["refresh"]:
            counts = knowledge_gaps_refresh()
            self.stdout.write(
                f"{counts['evidence']} questions answered without an article; "
                f"{counts['gaps']} gaps ({counts['created']} new, {counts['updated']} changed, "
                f"{counts['removed']} gone)"
            )
        if options["json"]:
            gaps = KnowledgeGap.objects.filter(status=GapStatus.OPEN)[: options["limit"]]
            self.stdout.write(json.dumps([
                {"id": g.pk, "title": g.title, "tickets": g.tickets, "intent": g.intent,
                 "questions": g.questions, "answers": g.answers,
                 "proposed_body": g.proposed_body}
                for g in gaps
            ], indent=2, default=str))  # fmt: skip
            return
        self.stdout.write(knowledge_gap_report(limit=options["limit"]))
