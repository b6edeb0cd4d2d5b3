"""verify_audit_chain: recompute the audit trail's hash chain; exit 1 naming the first broken entry."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from compliance.audit import verify_chain


class Command(BaseCommand):
    help = "Recompute every audit entry's hash in order and report the first one that does not check out."

    def handle(self, *args: object, **options: object) -> None:
        report = verify_chain()
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN at entry #{report.first_broken_seq}: {report.reason} "
                f"({report.entries} entries read)."
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {report.entries} entries."))
