import os
import secrets
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from core.auth import token_create
from core.models import ApiToken
from users.models import User
from users.services import users_seed

# Run by hand, the command shows the password and token it makes; `make run` saves them here instead and shows
# them once the server and the worker are up (manage.py show_credentials). Git-ignored, readable by its owner only.
CREDENTIALS_FILE = ".quickstart"
AGAIN = (
    "Lost them? `cat {file}` shows them again; a new password: `.venv/bin/python manage.py changepassword admin`;"
    " a new token: `.venv/bin/python manage.py create_api_token NAME`."
)


class Command(BaseCommand):
    help = "Local first start: seed 1000 users, an admin account and an API token if there are none."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://" + os.environ.get("SERVE_BIND", "127.0.0.1:8000"))
        parser.add_argument(
            "--save",
            metavar="FILE",
            help="Write the output to FILE (mode 0600) instead of showing it, when it has a new password or"
            " token; an earlier FILE is kept otherwise",
        )

    def handle(self, *args, url: str, save: str | None, **options):
        lines, made = [], False
        if not User.objects.exists():
            created = users_seed(count=1000, start=1000, actor="quickstart")
            lines.append(f"Seeded {created} users (ids 1000-1999).")
        admin_model = get_user_model()
        if not admin_model.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            admin_model.objects.create_superuser("admin", "", password)
            once = "" if save else " (shown once)"
            lines.append(f"Admin: {url}/admin/  user 'admin', password '{password}'{once}")
            made = True
        else:
            lines.append(
                f"Admin: {url}/admin/  (reset a password with: .venv/bin/python manage.py changepassword admin)"
            )
        if not ApiToken.objects.exists():
            _, token = token_create(name="local")
            once = "" if save else "shown once; "
            lines.append(f"API token 'local' ({once}make more with .venv/bin/python manage.py create_api_token NAME):")
            lines.append(f"  curl -H 'Authorization: Bearer {token}' {url}/api/v1/users/1000/segments/")
            made = True
        lines.append(f"API docs: {url}/api/docs/   health: {url}/api/health/")
        if save is None:
            self.stdout.write("\n".join(lines))
        elif made or not Path(save).exists():
            path = Path(save)
            path.unlink(missing_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write("\n".join([*lines, AGAIN.format(file=save)]) + "\n")
