"""The web server's worker process (gunicorn.conf.py): uvicorn's gunicorn worker, stopping quietly.

uvicorn's server, once it has shut down on SIGTERM or SIGINT, raises the signal again so that the
process dies of it; gunicorn's master then logs `Worker (pid:…) was sent SIGTERM!` at ERROR for every
worker of an ordinary stop. This worker ends as every gunicorn worker does once it is done: exit 0,
also on the SIGQUIT the master sends on Ctrl-C, and when stopped while still booting.
"""

import os
import signal
import socket
from contextlib import contextmanager

import uvicorn
import uvicorn_worker
from gunicorn.arbiter import Arbiter


class Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self):
        # gunicorn's master stops its workers with SIGQUIT on its own SIGINT (Ctrl-C): uvicorn's gunicorn
        # worker only marked itself dead on it and served on until killed 30 s later; here it shuts the
        # server down as SIGTERM does (set with signal.signal, as uvicorn sets its own).
        signal.signal(signal.SIGQUIT, self.handle_exit)
        try:
            with super().capture_signals():
                yield
                self._captured_signals.clear()  # shut down already: nothing to raise again
        finally:
            # Stopped: a stop signal that comes later ends the process at once (see _exit).
            for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
                signal.signal(stop, _exit)


class UvicornWorker(uvicorn_worker.UvicornWorker):
    # Python's own event loop, not uvloop: uvloop writes a response to the socket holding the GIL, and the
    # write wakes the client, which on a busy machine takes the CPU from the event loop's thread while the
    # pool's threads wait for the GIL it still holds. asyncio's socket writes let go of it. Measured side by
    # side (docs/performance.md): the hot GET about 1.5× and its p99 about half of uvloop's.
    CONFIG_KWARGS = {"loop": "asyncio", "http": "httptools"}

    def init_signals(self) -> None:
        super().init_signals()
        # Until the server takes the signals over, a stop (while booting) ends the worker quietly instead
        # of killing it by the signal.
        for stop in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(stop, _exit)

    async def _serve(self) -> None:
        self.config.app = self.wsgi
        server = Server(config=self.config)
        # Copies of the listening sockets: the event loop closes them at shutdown, and gunicorn's own
        # objects then stay open until the process ends instead of failing to close twice (EBADF).
        await server.serve(sockets=[socket.fromfd(s.fileno(), s.family, s.type) for s in self.sockets])
        if not server.started:
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR)


def _exit(signum, frame) -> None:
    """A stop while the worker boots, or once its server has stopped: end the process at once, exit 0. Not
    SystemExit: a Ctrl-C reaches a worker twice (the terminal's SIGINT, then the master's SIGQUIT), and the
    second would arrive in Python's own exit, which sets the handlers back to the default (killed by the
    signal, logged at ERROR) or reports a signal it no longer handles (a traceback)."""
    os._exit(0)
