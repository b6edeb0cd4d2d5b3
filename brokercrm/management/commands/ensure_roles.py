"""ensure_roles: create the five role groups and the ops admin permissions (idempotent).

Run after `migrate` on every deployment; docker-compose's web service does.
"""

from django.core.management.base import BaseCommand

from brokercrm.services import roles_ensure


class Command(BaseCommand):
    help = "Create the role groups (account_manager, team_lead, compliance_officer, ops, api_system)."

    def handle(self, *args: object, **options: object) -> None:
        groups = roles_ensure()
        for name, group in groups.items():
            self.stdout.write(f"  {name:<20} {group.permissions.count():>3} permissions")
