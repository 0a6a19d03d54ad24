"""Every admin action of every registered model admin (ours and the libraries') needs the change or delete
permission its effect implies: a staff user who may only view is offered none and runs none, whatever
it posts. The same post by a superuser changes the data, so the post itself is one that would run."""

from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.auth import token_create
from events.models import Delivery, Message, Webhook
from segments.models import HistoryEvent, Membership, Segment
from users.models import User

ACTIONS = [
    (model._meta.label, name)
    for model, model_admin in admin.site._registry.items()
    for _, name, _ in model_admin._get_base_actions()
]


@pytest.fixture
def viewer_client(db, django_user_model) -> Client:
    """A staff user who may view every model and change none."""
    viewer = django_user_model.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def rows(db, django_user_model) -> None:
    """A row of every model with an admin, each one that some action of its admin changes. Asked for after
    the logged-in client: a login deletes expired login attempts."""
    Group.objects.create(name="g")
    django_user_model.objects.create_user("other", password="x")
    users = User.objects.bulk_create([User(id=1)])
    segment = Segment.objects.create(slug="S1")
    Membership.objects.create(user=users[0], segment=segment, source="manual")
    HistoryEvent.objects.create(user_id=1, segment_slug="S1", operation="added", at=timezone.now(), source="api")
    token_create(name="crm")
    webhook = Webhook.objects.create(url="http://93.184.215.14/", secret="whsec_x", enabled=False)
    Webhook.objects.create(url="http://93.184.215.14/on", secret="whsec_y")  # one to disable
    message = Message.objects.create(webhook=webhook, msg_id="msg_1_1", body="{}")
    Delivery.objects.create(message=message, attempt=1, duration_ms=1)
    access = {"user_agent": "ua", "ip_address": "127.0.0.1", "username": "other", "http_accept": "*/*"}
    access_attempt = apps.get_model("axes", "AccessAttempt")
    attempt = access_attempt.objects.create(**access, path_info="/", get_data="", post_data="", failures_since_start=1)
    access_attempt.objects.filter(pk=attempt.pk).update(attempt_time=timezone.now() - timedelta(days=30))
    apps.get_model("axes", "AccessAttemptExpiration").objects.create(
        access_attempt=attempt, expires_at=timezone.now() - timedelta(days=29)
    )
    apps.get_model("axes", "AccessLog").objects.create(**access, path_info="/")
    apps.get_model("axes", "AccessFailureLog").objects.create(**access, path_info="/")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)"
            " VALUES ('default', 'x', '{}', 'todo'), ('default', 'x', '{}', 'failed'), ('default', 'x', '{}', 'doing')"
        )


def _snapshot() -> dict[str, list[dict]]:
    """Every row of every model but the sessions, as values."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model._meta.label != "sessions.Session"
    }


def _post_action(client: Client, model, name: str):
    return client.post(
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"),
        {
            "action": name,
            "index": "0",
            "post": "yes",  # delete_selected's confirmation
            "_selected_action": [str(pk) for pk in model.objects.values_list("pk", flat=True)],
        },
    )


@pytest.mark.parametrize(("label", "name"), ACTIONS, ids=[f"{label}.{name}" for label, name in ACTIONS])
def test_admin_action__view_only_staff__refused_and_nothing_changes(viewer_client, rows, label, name):
    model = apps.get_model(label)
    before = _snapshot()

    response = _post_action(viewer_client, model, name)

    assert response.status_code in (200, 302), response.content[:500]
    assert _snapshot() == before


def test_admin_actions__each_runs_for_a_superuser__so_the_refusals_above_are_real(admin_client, rows, admin_user, rf):
    """The actions a superuser is offered, posted as above, change data (an action no one is offered needs no
    refusal test). Each runs on the same rows: its changes are rolled back."""
    request = rf.get("/")
    request.user = admin_user
    registry = admin.site._registry.items()
    offered = [(model, name) for model, model_admin in registry for name in model_admin.get_actions(request)]
    assert len(offered) >= 10
    before = _snapshot()
    for model, name in offered:
        with transaction.atomic():
            _post_action(admin_client, model, name)
            assert _snapshot() != before, f"{model._meta.label}.{name} changed nothing"
            transaction.set_rollback(True)
