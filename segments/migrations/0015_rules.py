"""Segments defined by rules: the rule, its compiled form, exclusions, the `rule` source; the foreign keys
ON DELETE CASCADE and the PATCH's function with exclusions (sql/0015_rules.sql; undone by
sql/0015_rules_reverse.sql)."""

from pathlib import Path

import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models

SQL = Path(__file__).resolve().parent / "sql"


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0014_membership_journal"),
        ("users", "0002_attributes"),
    ]

    operations = [
        migrations.CreateModel(
            name="Exclusion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False)),
                ("actor", models.CharField(blank=True, default="", max_length=150)),
            ],
            options={
                "ordering": ["segment", "user"],
            },
        ),
        migrations.CreateModel(
            name="SegmentRule",
            fields=[
                (
                    "segment",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="compiled_rule",
                        serialize=False,
                        to="segments.segment",
                    ),
                ),
                ("path", models.TextField()),
                ("relative", models.BooleanField()),
                ("matches_empty", models.BooleanField()),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="historyevent",
            name="history_source_valid",
        ),
        migrations.RemoveConstraint(
            model_name="membership",
            name="membership_source_valid",
        ),
        migrations.AddField(
            model_name="segment",
            name="rule",
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="historyevent",
            name="source",
            field=models.CharField(
                choices=[
                    ("api", "Api"),
                    ("admin", "Admin"),
                    ("rollout", "Rollout"),
                    ("ttl", "Ttl"),
                    ("segment_deleted", "Segment Deleted"),
                    ("user_deleted", "User Deleted"),
                    ("import", "Import"),
                    ("rule", "Rule"),
                ],
                max_length=15,
            ),
        ),
        migrations.AlterField(
            model_name="membership",
            name="source",
            field=models.CharField(
                choices=[("manual", "Manual"), ("rollout", "Rollout"), ("rule", "Rule")],
                default="manual",
                max_length=10,
            ),
        ),
        migrations.AddConstraint(
            model_name="historyevent",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "source__in",
                        ["api", "admin", "rollout", "ttl", "segment_deleted", "user_deleted", "import", "rule"],
                    )
                ),
                name="history_source_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.CheckConstraint(
                condition=models.Q(("source__in", ["manual", "rollout", "rule"])), name="membership_source_valid"
            ),
        ),
        migrations.AddField(
            model_name="exclusion",
            name="segment",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="exclusions",
                to="segments.segment",
            ),
        ),
        migrations.AddField(
            model_name="exclusion",
            name="user",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                to="users.user",
            ),
        ),
        migrations.AddConstraint(
            model_name="exclusion",
            constraint=models.UniqueConstraint(fields=("segment", "user"), name="exclusion_unique_segment_user"),
        ),
        migrations.RunSQL(
            (SQL / "0015_rules.sql").read_text(),
            (SQL / "0015_rules_reverse.sql").read_text(),
        ),
    ]
