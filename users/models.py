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
