"""ChurnScore's reasons and signals become typed columns (retention/reasons.py): each signal's
strength, three reason slots (code, points) and the figures behind the reasons. The two JSON
documents per score cost the nightly COPY most of its time (6.1 s against 1.0 s for a night's
scores on the 1M book) and could not be queried.

The stored scores keep their reasons: the figures are copied out of the JSON (only those a
reason showed were stored; the others stay empty until the next night) and back into it when
migrating backwards. PostgreSQL: one UPDATE each way, in SQL; elsewhere row by row.

The layout is frozen here (a migration must not change with the app's code).
"""

import datetime as dt
import json

from django.db import migrations, models

SIGNALS = (
    "model",
    "dormant",
    "overdue",
    "decline",
    "outflow",
    "complaints",
    "detractor",
    "low_csat",
    "losses",
    "downgrade",
)
SLOTS = 3
CODES = {name: number for number, name in enumerate(SIGNALS, start=1)}  # a reason slot's value; 0: empty
CODE_CHOICES = [(0, "-"), *((number, name) for name, number in CODES.items())]
# code: ((fact key, field, SQL type), ...)
FACTS = {
    "model": (
        ("p_no_trade", "p_no_trade", "float8"),
        ("p_alive", "p_alive", "float8"),
        ("window", "window_days", "int"),
    ),
    "dormant": (("days", "days_since_last_trade", "int"),),
    "overdue": (("days", "days_since_last_trade", "int"), ("gap", "typical_gap_days", "float8")),
    "decline": (
        ("recent", "recent_trading_days", "int"),
        ("window", "window_days", "int"),
        ("expected", "baseline_trading_days", "float8"),
    ),
    "outflow": (
        ("share", "outflow_share", "float8"),
        ("window", "outflow_window_days", "int"),
        ("amount", "outflow_amount", "numeric"),
    ),
    "complaints": (("count", "open_complaints", "int"),),
    "detractor": (("score", "nps_score", "int"),),
    "low_csat": (("score", "csat_score", "int"),),
    "losses": (
        ("amount", "loss_amount", "numeric"),
        ("closes", "losing_closes", "int"),
        ("window", "window_days", "int"),
        ("share", "loss_share", "float8"),
    ),
    "downgrade": (("from", "downgrade_from", "int"), ("to", "downgrade_to", "int"), ("on", "downgrade_on", "date")),
}
FIELDS = {}  # field: [(code, key, type)] (p_alive is a column already)
for _code, _layout in FACTS.items():
    for _key, _field, _type in _layout:
        if _field != "p_alive":
            FIELDS.setdefault(_field, []).append((_code, _key, _type))
TABLE = "retention_churnscore"
BATCH = 500  # rows per bulk_update (SQLite)


def _postgres(schema_editor):
    return schema_editor.connection.vendor == "postgresql"


def _literal(text):
    return "'" + text.replace("'", "''") + "'"


def json_to_columns(apps, schema_editor):
    if _postgres(schema_editor):
        sets = [f"signal_{name} = COALESCE((signals ->> {_literal(name)})::float8, 0)" for name in SIGNALS]
        for k in range(SLOTS):
            numbers = " ".join(f"WHEN {_literal(name)} THEN {number}" for name, number in CODES.items())
            sets.append(f"reason_{k + 1} = CASE reasons -> {k} ->> 'code' {numbers} ELSE 0 END")
            sets.append(f"reason_{k + 1}_points = COALESCE((reasons -> {k} ->> 'points')::int, 0)")
        for field, sources in FIELDS.items():
            cases = [
                f"CASE WHEN reasons -> {k} ->> 'code' = {_literal(code)} "
                f"THEN (reasons -> {k} -> 'facts' ->> {_literal(key)})::{sql_type} END"
                for k in range(SLOTS)
                for code, key, sql_type in sources
            ]
            sets.append(f"{field} = COALESCE({', '.join(cases)})")
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {TABLE} SET {', '.join(sets)}")  # noqa: S608
        return
    ChurnScore = apps.get_model("retention", "ChurnScore")
    fields = [f"signal_{name}" for name in SIGNALS] + [
        f"reason_{k + 1}{p}" for k in range(SLOTS) for p in ("", "_points")
    ]
    fields += list(FIELDS)
    batch = []
    for score in ChurnScore.objects.order_by("pk").iterator():  # no ordering by client: no join
        for name in SIGNALS:
            setattr(score, f"signal_{name}", float((score.signals or {}).get(name, 0.0)))
        reasons = (score.reasons or [])[:SLOTS]
        for k in range(SLOTS):
            reason = reasons[k] if k < len(reasons) else None
            setattr(score, f"reason_{k + 1}", CODES[reason["code"]] if reason else 0)
            setattr(score, f"reason_{k + 1}_points", int(reason.get("points") or 0) if reason else 0)
            for key, field, sql_type in FACTS.get(reason["code"], ()) if reason else ():
                value = (reason.get("facts") or {}).get(key)
                if field != "p_alive" and value is not None:
                    setattr(score, field, dt.date.fromisoformat(value) if sql_type == "date" else value)
        batch.append(score)
        if len(batch) >= BATCH:
            ChurnScore.objects.bulk_update(batch, fields)
            batch = []
    ChurnScore.objects.bulk_update(batch, fields)


def _fact_sql(key, field, sql_type):
    if field == "p_alive":
        return f"{_literal(key)}, round(p_alive::numeric, 4)::float8"
    if sql_type == "date":
        return f"{_literal(key)}, to_char({field}, 'YYYY-MM-DD')"
    if sql_type == "numeric":
        return f"{_literal(key)}, {field}::float8"
    return f"{_literal(key)}, {field}"


def columns_to_json(apps, schema_editor):
    if _postgres(schema_editor):
        facts = " ".join(
            f"WHEN {_literal(code)} THEN jsonb_build_object({', '.join(_fact_sql(*fact) for fact in layout)})"
            for code, layout in FACTS.items()
        )
        names = " ".join(f"WHEN {number} THEN {_literal(name)}" for name, number in CODES.items())
        slots = ", ".join(f"({k + 1}, CASE reason_{k + 1} {names} END, reason_{k + 1}_points)" for k in range(SLOTS))
        reasons = (
            "(SELECT COALESCE(jsonb_agg(jsonb_build_object('code', s.code, 'points', s.points, 'facts', "  # noqa: S608
            f"CASE s.code {facts} ELSE '{{}}'::jsonb END) ORDER BY s.k), '[]'::jsonb) "
            f"FROM (VALUES {slots}) AS s (k, code, points) WHERE s.code IS NOT NULL)"
        )
        signals = (
            "jsonb_strip_nulls(jsonb_build_object("
            + ", ".join(f"{_literal(name)}, NULLIF(signal_{name}, 0)" for name in SIGNALS)
            + "))"
        )
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(f"UPDATE {TABLE} SET reasons = {reasons}, signals = {signals}")  # noqa: S608
        return
    ChurnScore = apps.get_model("retention", "ChurnScore")
    batch = []
    for score in ChurnScore.objects.order_by("pk").iterator():  # no ordering by client: no join
        score.signals = {name: value for name in SIGNALS if (value := getattr(score, f"signal_{name}")) > 0}
        reasons = []
        for k in range(SLOTS):
            code = {number: name for name, number in CODES.items()}.get(getattr(score, f"reason_{k + 1}"))
            if code is None:
                continue
            facts = {}
            for key, field, sql_type in FACTS.get(code, ()):
                value = getattr(score, field)
                if field == "p_alive" and value is not None:
                    value = round(value, 4)
                elif value is not None and sql_type == "date":
                    value = value.isoformat()
                elif value is not None and sql_type == "numeric":
                    value = float(value)
                facts[key] = value
            reasons.append({"code": code, "points": getattr(score, f"reason_{k + 1}_points"), "facts": facts})
        score.reasons = json.loads(json.dumps(reasons))
        batch.append(score)
        if len(batch) >= BATCH:
            ChurnScore.objects.bulk_update(batch, ["reasons", "signals"])
            batch = []
    ChurnScore.objects.bulk_update(batch, ["reasons", "signals"])


class Migration(migrations.Migration):
    dependencies = [
        ("retention", "0005_scores_partitioned_by_generation"),
    ]

    operations = [
        migrations.AddField(
            model_name="churnscore",
            name="baseline_trading_days",
            field=models.FloatField(
                blank=True, help_text="Trading days its own baseline expects in the recent window.", null=True
            ),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="csat_score",
            field=models.SmallIntegerField(blank=True, help_text="The lowest recent CSAT answer (1-5).", null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="days_since_last_trade",
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="downgrade_from",
            field=models.PositiveSmallIntegerField(
                blank=True, choices=[(1, "VIP"), (2, "Major"), (3, "Ordinary"), (4, "Small")], null=True
            ),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="downgrade_on",
            field=models.DateField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="downgrade_to",
            field=models.PositiveSmallIntegerField(
                blank=True, choices=[(1, "VIP"), (2, "Major"), (3, "Ordinary"), (4, "Small")], null=True
            ),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="losing_closes",
            field=models.IntegerField(blank=True, help_text="Losing closing trades in the recent window.", null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="loss_amount",
            field=models.DecimalField(
                blank=True, decimal_places=2, help_text="Realised loss in the recent window.", max_digits=20, null=True
            ),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="loss_share",
            field=models.FloatField(blank=True, help_text="The loss / assets before it.", null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="nps_score",
            field=models.SmallIntegerField(blank=True, help_text="The lowest recent NPS answer (0-10).", null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="open_complaints",
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="outflow_amount",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=20, null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="outflow_share",
            field=models.FloatField(blank=True, help_text="Net outflow / assets before it.", null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="outflow_window_days",
            field=models.PositiveSmallIntegerField(blank=True, help_text="30 or 90.", null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="p_no_trade",
            field=models.FloatField(blank=True, help_text="BG/NBD P(no trade in the recent window).", null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="reason_1",
            field=models.PositiveSmallIntegerField(choices=CODE_CHOICES, default=0, verbose_name="top reason"),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="reason_1_points",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="reason_2",
            field=models.PositiveSmallIntegerField(choices=CODE_CHOICES, default=0, verbose_name="second reason"),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="reason_2_points",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="reason_3",
            field=models.PositiveSmallIntegerField(choices=CODE_CHOICES, default=0, verbose_name="third reason"),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="reason_3_points",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="recent_trading_days",
            field=models.IntegerField(blank=True, help_text="Trading days in the recent window.", null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_complaints",
            field=models.FloatField(default=0.0, help_text="Open complaints."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_decline",
            field=models.FloatField(default=0.0, help_text="Trading days down against its own baseline."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_detractor",
            field=models.FloatField(default=0.0, help_text="A detractor NPS answer."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_dormant",
            field=models.FloatField(default=0.0, help_text="Dormant (clients the model does not cover)."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_downgrade",
            field=models.FloatField(default=0.0, help_text="A tier downgrade."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_losses",
            field=models.FloatField(default=0.0, help_text="A run of losing closes."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_low_csat",
            field=models.FloatField(default=0.0, help_text="A low satisfaction answer."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_model",
            field=models.FloatField(default=0.0, help_text="Lifetime model: P(no trade in the recent window)."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_outflow",
            field=models.FloatField(default=0.0, help_text="Net assets moved out over 30/90 days."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="signal_overdue",
            field=models.FloatField(default=0.0, help_text="Overdue against its own rhythm (no model)."),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="typical_gap_days",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="churnscore",
            name="window_days",
            field=models.PositiveSmallIntegerField(blank=True, help_text="The recent window, in days.", null=True),
        ),
        migrations.RunPython(json_to_columns, columns_to_json, elidable=False),
        migrations.RemoveField(model_name="churnscore", name="reasons"),
        migrations.RemoveField(model_name="churnscore", name="signals"),
    ]
