from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models.functions import Now


class User(models.Model):
    """A user of the company, known by the id its user service gave it."""

    id = models.BigIntegerField(primary_key=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(id__gte=1), name="user_id_positive"),
        ]

    def __str__(self) -> str:
        return str(self.id)


class UserAttributes(models.Model):
    """A user's attributes (segments/attributes.py), and the document segment rules are evaluated against.

    `document` is derived by the database (users_attributes_document, migration 0002): each attribute
    under its key as an object naming its type, `{"s": string}` (with `"v"`, a version's sortable key,
    and `"t"`, a timestamp's epoch seconds, when the string is one), `{"n": number}`, `{"b": boolean}`
    or `{"l": list}`, so that a rule compiled to a jsonpath (segments/rules.py) compares like with like.
    `attributes` is an object: the document's function refuses anything else. The row goes with its
    user: the foreign key is ON DELETE CASCADE in the database (migration 0002).
    """

    user = models.OneToOneField(
        User, primary_key=True, on_delete=models.CASCADE, db_constraint=False, related_name="attributes"
    )
    attributes = models.JSONField(default=dict)
    document = models.GeneratedField(
        expression=models.Func(
            models.F("attributes"), function="users_attributes_document", output_field=models.JSONField()
        ),
        output_field=models.JSONField(),
        db_persist=True,
    )
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        verbose_name_plural = "user attributes"
        indexes = [
            GinIndex(fields=["document"], opclasses=["jsonb_path_ops"], name="user_attributes_document"),
        ]

    def __str__(self) -> str:
        return f"attributes of {self.user_id}"
