from django.db import models
from django.db.models.functions import Now


class ApiToken(models.Model):
    """A bearer token of a client service. Only the SHA-256 of the token is stored."""

    name = models.CharField(max_length=100, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return self.name


class JobRun(models.Model):
    """When a background job last finished a run (the expiry sweep's age is a metric)."""

    name = models.CharField(max_length=50, unique=True)
    finished_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} finished at {self.finished_at}"


class RateCount(models.Model):
    """Requests of one client in its current window of a rate (core/throttles.py): one row per scope and client."""

    key = models.CharField(max_length=200, primary_key=True)  # the scope and the client: `reports:token-7`
    window_end = models.DateTimeField()
    count = models.IntegerField()

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.window_end}"
