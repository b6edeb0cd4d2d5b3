"""An index on clients_client.opened_on, for the callback progress (retention.work.callbacks).

`callback_progress` counts the clients opened in the year (the new-account callback quota) for the
management dashboard and `GET /api/v1/retention/callbacks/progress/`. Without an index that count
is a sequential scan of the whole client table: 0.2-0.3 s at 1,000,000 clients, the slowest
query of the dashboard (bench/page_bench.py). With it, an index-only range scan of the year's
new accounts.

The query is retention's, the table is clients': the index is created here by SQL and not
declared on the Client model, so the clients app's migrations are untouched. Plain CREATE INDEX:
about a second at 1,000,000 clients.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0002_import_batch"),
        ("retention", "0002_work"),
    ]

    operations = [
        migrations.RunSQL(
            sql="CREATE INDEX IF NOT EXISTS client_opened_on ON clients_client (opened_on)",
            reverse_sql="DROP INDEX IF EXISTS client_opened_on",
        ),
    ]
