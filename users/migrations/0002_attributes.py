"""Users' attributes, and the document segment rules are evaluated against (a stored generated column).

The document's functions are frozen in sql/0002_attributes.sql, installed before the table whose
generated column calls them. The foreign key to the user is ON DELETE CASCADE in the database (the field
declares no constraint of its own), so deleting a user by SQL deletes its attributes too.
"""

from pathlib import Path

import django.contrib.postgres.indexes
import django.db.models.deletion
import django.db.models.functions.datetime
from django.db import migrations, models

SQL = Path(__file__).resolve().parent / "sql"
FOREIGN_KEY = (
    "ALTER TABLE users_userattributes ADD CONSTRAINT users_userattributes_user_id_fk"
    " FOREIGN KEY (user_id) REFERENCES users_user (id) ON DELETE CASCADE"
)


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            (SQL / "0002_attributes.sql").read_text(),
            (SQL / "0002_attributes_reverse.sql").read_text(),
        ),
        migrations.CreateModel(
            name="UserAttributes",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="attributes",
                        serialize=False,
                        to="users.user",
                    ),
                ),
                ("attributes", models.JSONField(default=dict)),
                (
                    "document",
                    models.GeneratedField(
                        db_persist=True,
                        expression=models.Func(
                            models.F("attributes"),
                            function="users_attributes_document",
                            output_field=models.JSONField(),
                        ),
                        output_field=models.JSONField(),
                    ),
                ),
                ("updated_at", models.DateTimeField(db_default=django.db.models.functions.datetime.Now())),
            ],
            options={
                "verbose_name_plural": "user attributes",
                "indexes": [
                    django.contrib.postgres.indexes.GinIndex(
                        fields=["document"], name="user_attributes_document", opclasses=["jsonb_path_ops"]
                    )
                ],
            },
        ),
        migrations.RunSQL(
            FOREIGN_KEY, "ALTER TABLE users_userattributes DROP CONSTRAINT users_userattributes_user_id_fk"
        ),
    ]
