"""`manage.py retention_defaults`: create the starting playbooks and service catalogue (idempotent)."""

from django.core.management.base import BaseCommand

from retention.work.defaults import retention_defaults_ensure


class Command(BaseCommand):
    help = "Create the default retention playbooks and service products (existing rows are left as they are)."

    def handle(self, *args: object, **options: object) -> None:
        created = retention_defaults_ensure()
        self.stdout.write(f"Created {created['playbooks']} playbooks and {created['products']} service products.")
