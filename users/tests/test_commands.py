import pytest
from django.core.management import CommandError, call_command

from users.models import User

pytestmark = pytest.mark.django_db


def test_seed_users__defaults__1000_users_from_1000(capsys):
    call_command("seed_users")
    assert User.objects.count() == 1000
    assert (User.objects.order_by("id").first().id, User.objects.order_by("id").last().id) == (1000, 1999)
    assert "1000 users created" in capsys.readouterr().out


def test_seed_users__twice__adds_nothing(capsys):
    call_command("seed_users", "--count", "2500", "--start", "1")
    call_command("seed_users", "--count", "3000", "--start", "1")
    assert User.objects.count() == 3000
    assert "500 users created, 2500 already existed" in capsys.readouterr().out


def test_seed_users__bad_arguments__command_error():
    with pytest.raises(CommandError):
        call_command("seed_users", "--start", "0")
    with pytest.raises(CommandError):
        call_command("seed_users", "--count", "-5")
    assert not User.objects.exists()


def test_quickstart__fresh__seeds_and_makes_admin_and_token(capsys):
    call_command("quickstart")
    out = capsys.readouterr().out
    assert User.objects.count() == 1000
    assert "password" in out and "Authorization: Bearer sgm_" in out
    call_command("quickstart")
    again = capsys.readouterr().out
    assert "Bearer" not in again and User.objects.count() == 1000
