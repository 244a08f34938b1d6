"""python manage.py kb_identity_secret --kb SLUG [--off | --status]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.knowledge.models import KnowledgeBase
from apps.knowledge.services import identity_secret_clear, identity_secret_rotate


class Command(BaseCommand):
    help = (
        "Create or rotate the secret a shop's server signs its customer ids with (HMAC-SHA256) so the "
        "widget carries a verified identity; printed once. --off turns verification off."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kb", required=True, help="knowledge base slug (the widget's data-kb)")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--off", action="store_true", help="clear the secret: identity verification off")
        action.add_argument("--status", action="store_true", help="say whether verification is on")

    def handle(self, *args: object, **options: object) -> None:
        knowledge_base = KnowledgeBase.objects.filter(slug=options["kb"]).first()
        if knowledge_base is None:
            raise CommandError(f"no knowledge base {options['kb']!r}")
        if options["status"]:
            state = "on" if knowledge_base.identity_secret else "off"
            self.stdout.write(f"identity verification for {knowledge_base.slug}: {state}")
            return
        if options["off"]:
            identity_secret_clear(knowledge_base=knowledge_base)
            self.stderr.write(f"identity verification for {knowledge_base.slug} is off")
            return
        rotated = bool(knowledge_base.identity_secret)
        self.stdout.write(identity_secret_rotate(knowledge_base=knowledge_base))
        self.stderr.write(
            f"identity secret for {knowledge_base.slug!r} {'rotated: the old one no longer works' if rotated else 'created'}. "
            "It is shown only now; give it to the shop's server (never to a browser) and sign each "
            "customer id with it: hex(HMAC-SHA256(secret, customer_id))."
        )
