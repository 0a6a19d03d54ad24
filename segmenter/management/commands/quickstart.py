import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from core.auth import token_create
from core.models import ApiToken
from users.models import User
from users.services import users_seed


class Command(BaseCommand):
    help = "Local first start: seed 1000 users, an admin account and an API token if there are none."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://" + os.environ.get("SERVE_BIND", "127.0.0.1:8000"))

    def handle(self, *args, url: str, **options):
        if not User.objects.exists():
            created = users_seed(count=1000, start=1000, actor="quickstart")
            self.stdout.write(f"Seeded {created} users (ids 1000-1999).")
        admin_model = get_user_model()
        if not admin_model.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            admin_model.objects.create_superuser("admin", "", password)
            self.stdout.write(f"Admin: {url}/admin/  user 'admin', password '{password}' (shown once)")
        else:
            self.stdout.write(f"Admin: {url}/admin/  (reset a password with: manage.py changepassword admin)")
        if not ApiToken.objects.exists():
            _, token = token_create(name="local")
            self.stdout.write("API token 'local' (shown once; make more with manage.py create_api_token NAME):")
            self.stdout.write(f"  curl -H 'Authorization: Bearer {token}' {url}/api/v1/users/1000/segments/")
        self.stdout.write(f"API docs: {url}/api/docs/   health: {url}/api/health/")
