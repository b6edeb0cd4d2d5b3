"""demo_logins: print the demo users, their password and the API token (after `seed_demo`)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients.demo import users


class Command(BaseCommand):
    help = "Print the demo logins, the demo password and the API token of system_api."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="Where the demo is served.")

    def handle(self, *args: object, **options: object) -> None:
        if not get_user_model().objects.filter(username="system_api").exists():
            raise CommandError("No demo users yet: run `python manage.py seed_demo` first.")
        for line in users.login_lines(
            password=users.demo_password(), api_token=users.ensure_api_token(), url=str(options["url"])
        ):
            self.stdout.write(line)
