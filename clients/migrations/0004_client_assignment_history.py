"""Assignment history: every client's account manager and branch over time.

Database triggers on clients_client record each assignment, whatever path writes the client
(admin, services, imports, COPY): an inserted client gets a row valid since before the history;
a change of manager or branch closes the current row and opens a new one at the transaction's
time. Existing clients get their current assignment as a row valid since before the history,
so dates computed before this migration keep their figures.
"""

import django.db.models.deletion
from django.db import migrations, models

TABLE = "clients_clientassignment"

POSTGRES_FORWARD = f"""
CREATE OR REPLACE FUNCTION clients_assignment_track() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO {TABLE} (client_id, account_manager_id, branch_id, valid_from, valid_to)
        VALUES (NEW.id, NEW.account_manager_id, NEW.branch_id, NULL, NULL);
    ELSIF NEW.account_manager_id IS DISTINCT FROM OLD.account_manager_id
          OR NEW.branch_id IS DISTINCT FROM OLD.branch_id THEN
        UPDATE {TABLE} SET valid_to = now() WHERE client_id = NEW.id AND valid_to IS NULL;
        INSERT INTO {TABLE} (client_id, account_manager_id, branch_id, valid_from, valid_to)
        VALUES (NEW.id, NEW.account_manager_id, NEW.branch_id, now(), NULL);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER clients_assignment_track
    AFTER INSERT OR UPDATE OF account_manager_id, branch_id ON clients_client
    FOR EACH ROW EXECUTE FUNCTION clients_assignment_track();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS clients_assignment_track ON clients_client;
DROP FUNCTION IF EXISTS clients_assignment_track();
"""

# SQLite keeps Django's datetime text format, in UTC.
SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
SQLITE_FORWARD = [
    f"""CREATE TRIGGER clients_assignment_insert AFTER INSERT ON clients_client BEGIN
        INSERT INTO {TABLE} (client_id, account_manager_id, branch_id, valid_from, valid_to)
        VALUES (NEW.id, NEW.account_manager_id, NEW.branch_id, NULL, NULL);
    END""",
    f"""CREATE TRIGGER clients_assignment_update AFTER UPDATE OF account_manager_id, branch_id ON clients_client
    WHEN NEW.account_manager_id IS NOT OLD.account_manager_id OR NEW.branch_id IS NOT OLD.branch_id BEGIN
        UPDATE {TABLE} SET valid_to = {SQLITE_NOW} WHERE client_id = NEW.id AND valid_to IS NULL;
        INSERT INTO {TABLE} (client_id, account_manager_id, branch_id, valid_from, valid_to)
        VALUES (NEW.id, NEW.account_manager_id, NEW.branch_id, {SQLITE_NOW}, NULL);
    END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS clients_assignment_insert",
    "DROP TRIGGER IF EXISTS clients_assignment_update",
]

BACKFILL = f"""
INSERT INTO {TABLE} (client_id, account_manager_id, branch_id, valid_from, valid_to)
SELECT id, account_manager_id, branch_id, NULL, NULL FROM clients_client
"""


def triggers_forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:  # pragma: no cover - the product runs on PostgreSQL and SQLite only
        raise NotImplementedError(f"assignment history triggers for {schema_editor.connection.vendor}")
    schema_editor.execute(BACKFILL)


def triggers_backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD)
    else:
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("clients", "0003_kyc_id_number_encrypted"),
    ]

    operations = [
        migrations.CreateModel(
            name="ClientAssignment",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "valid_from",
                    models.DateTimeField(blank=True, help_text="Empty: since before the history was kept.", null=True),
                ),
                ("valid_to", models.DateTimeField(blank=True, help_text="Empty: the current assignment.", null=True)),
                (
                    "account_manager",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="clients.accountmanager",
                    ),
                ),
                (
                    "branch",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="clients.branch",
                    ),
                ),
                (
                    "client",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="assignments",
                        to="clients.client",
                    ),
                ),
            ],
            options={
                "ordering": ["client_id", "valid_from"],
                "indexes": [models.Index(fields=["client", "valid_to"], name="assignment_client_valid_to")],
                "constraints": [
                    models.UniqueConstraint(
                        condition=models.Q(("valid_to__isnull", True)),
                        fields=("client",),
                        name="assignment_one_current_per_client",
                    )
                ],
            },
        ),
        migrations.RunPython(triggers_forward, triggers_backward),
    ]
