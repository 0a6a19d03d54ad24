#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "segmenter.settings")
    from django.core.management import execute_from_command_line
    from django.db.utils import OperationalError

    try:
        execute_from_command_line(sys.argv)
    except OperationalError as exc:
        if "connection to server" not in str(exc):
            raise
        from core.local_db import unreachable

        sys.exit(unreachable(exc))


if __name__ == "__main__":
    main()
