"""Admin login lockout (django-axes): repeated wrong passwords lock a username at an address."""

import pytest
from django.contrib.auth.models import User as StaffUser
from django.test import Client

PASSWORD = "a-long-staff-password-1"


@pytest.fixture
def staff(db) -> StaffUser:
    return StaffUser.objects.create_user("pm", password=PASSWORD, is_staff=True)


def log_in(client: Client, password: str, **headers) -> int:
    return client.post("/admin/login/?next=/admin/", {"username": "pm", "password": password}, **headers).status_code


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_admin_login__five_wrong_passwords__right_one_refused_until_cool_off(staff, settings, time_machine):
    time_machine.move_to("2030-01-01T00:00:00Z", tick=False)
    client = Client()
    assert [log_in(client, "wrong") for _ in range(4)] == [200] * 4  # the form again, with an error
    assert log_in(client, "wrong") == 429
    assert log_in(client, PASSWORD) == 429
    assert not logged_in(client)

    time_machine.move_to("2030-01-01T00:14:00Z", tick=False)
    assert log_in(client, PASSWORD) == 429

    time_machine.move_to("2030-01-01T00:15:01Z", tick=False)
    assert log_in(client, PASSWORD) == 302
    assert logged_in(client)


def test_admin_login__fewer_failures_than_the_limit__right_password_admitted_and_count_reset(staff):
    client = Client()
    assert [log_in(client, "wrong") for _ in range(4)] == [200] * 4
    assert log_in(client, PASSWORD) == 302
    assert [log_in(Client(), "wrong") for _ in range(4)] == [200] * 4  # counting starts again


def test_admin_login__locked_at_one_address__another_address_still_logs_in(staff):
    for _ in range(5):
        log_in(Client(), "wrong", REMOTE_ADDR="192.0.2.1")
    assert log_in(Client(), PASSWORD, REMOTE_ADDR="192.0.2.1") == 429
    assert log_in(Client(), PASSWORD, REMOTE_ADDR="192.0.2.2") == 302


def test_admin_login__forwarded_for_without_trusted_proxy__ignored(staff):
    """A client cannot dodge the lockout by inventing X-Forwarded-For addresses."""
    for number in range(5):
        log_in(Client(), "wrong", HTTP_X_FORWARDED_FOR=f"198.51.100.{number}")
    assert log_in(Client(), PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.99") == 429


def test_admin_login__behind_trusted_proxy__address_the_proxy_forwarded_counts(staff, settings):
    settings.DJANGO_TRUSTED_PROXY = True
    for _ in range(5):
        log_in(Client(), "wrong", HTTP_X_FORWARDED_FOR="203.0.113.9, 192.0.2.1")
    assert log_in(Client(), PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.1") == 429
    assert log_in(Client(), PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.2") == 302
