"""python manage.py kb_apikey --kb SLUG [--name NAME] | --list [--kb SLUG] | --revoke PREFIX"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.knowledge.models import KnowledgeBase, KnowledgeBaseApiKey
from apps.knowledge.services import api_key_create, api_key_revoke


class Command(BaseCommand):
    help = (
        "Create an API key for a knowledge base's OpenAI-compatible endpoint (printed once; only its "
        "hash is stored), list keys, or revoke one by its prefix."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--kb", help="knowledge base slug (the model name clients send)")
        parser.add_argument("--name", default="", help="a note on who uses the key")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--list", action="store_true", help="list keys (of --kb, or all)")
        action.add_argument("--revoke", metavar="PREFIX", help="revoke the key that starts with PREFIX")

    def handle(self, *args: object, **options: object) -> None:
        if options["revoke"]:
            api_key = api_key_revoke(prefix=str(options["revoke"]))
            if api_key is None:
                raise CommandError(f"no API key with prefix {options['revoke']!r}")
            self.stdout.write(f"revoked {api_key.prefix}… of {api_key.knowledge_base.slug}")
            return
        if options["list"]:
            self._list(options["kb"])
            return
        if not options["kb"]:
            raise CommandError("--kb SLUG is required to create a key")
        knowledge_base = KnowledgeBase.objects.filter(slug=options["kb"]).first()
        if knowledge_base is None:
            raise CommandError(f"no knowledge base {options['kb']!r}")
        created = api_key_create(knowledge_base=knowledge_base, name=str(options["name"]))
        self.stdout.write(created.key)
        self.stderr.write(
            f"API key {created.api_key.prefix}… for model {knowledge_base.slug!r}. It is shown only "
            "now; store it in a secret manager. Revoke it with --revoke PREFIX."
        )

    def _list(self, slug: object) -> None:
        keys = KnowledgeBaseApiKey.objects.select_related("knowledge_base").order_by("created_at")
        if slug:
            keys = keys.filter(knowledge_base__slug=slug)
        for key in keys:
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
            self.stdout.write(
                f"{key.prefix}…  {key.knowledge_base.slug}  created {key.created_at:%Y-%m-%d %H:%M}  "
                f"last used {used}  {state}  {key.name}"
            )
