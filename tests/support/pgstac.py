"""A throwaway PostgreSQL + pgstac + stac-fastapi-pgstac server for tests and benchmarks.

``PgstacServer`` creates a PostgreSQL cluster in a temporary directory, starts it on a free
``127.0.0.1`` port (``fsync``, ``synchronous_commit`` and ``full_page_writes`` off), installs the
pgstac schema with pypgstac, and runs stac-fastapi-pgstac under uvicorn as a subprocess on
another free port::

    with PgstacServer() as server:
        server.load_collections([make_collection("a", start, end)])
        server.load_items(generate_items("a", 1000, start, end))
        httpx.post(f"{server.url}/search", json={"collections": ["a"]})

PostgreSQL refuses to run as root, so when the current user is root the cluster belongs to the
``postgres`` OS user and its processes run as that user. The binaries are looked up in
``$STACFETCH_PG_BINDIR``, then ``pg_config --bindir``, then ``/usr/lib/postgresql/*/bin``
(Debian's layout), then ``$PATH``.

Nothing is left behind: ``stop()`` (also run by ``__exit__`` and at interpreter exit) ends
uvicorn and PostgreSQL and removes the directory, and a small watchdog process does the same if
the owning process dies without cleaning up (e.g. ``kill -9`` of pytest).

Command line (for benchmarks and manual use)::

    python -m tests.support.pgstac serve --items 50000 --collections a,b [--context on]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "PgstacServer",
    "PgstacStartupError",
    "PgstacUnavailable",
    "find_pg_bindir",
    "reference_search",
]

_DB_USER = "stacfetch"
_DB_NAME = "postgres"
_PG_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "jit": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
}

# Run by ``python -c`` in its own session: when the process that started the server is gone
# without calling stop(), kill uvicorn's process group and the postmaster, remove the directory.
_WATCHDOG = r"""# stacfetch pgstac test server watchdog
import os, shutil, signal, sys, time
parent, root = int(sys.argv[1]), sys.argv[2]
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
signal.signal(signal.SIGINT, signal.SIG_IGN)
while os.getppid() == parent and os.path.isdir(root):
    time.sleep(0.5)
def read_pid(path):
    try:
        with open(path) as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None
pg = read_pid(os.path.join(root, "data", "postmaster.pid"))
for pid, how in ((read_pid(os.path.join(root, "uvicorn.pid")), "group"), (pg, "one")):
    if pid:
        try:
            if how == "group":
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGQUIT)
        except OSError:
            pass
for _ in range(100):
    if not pg:
        break
    try:
        os.kill(pg, 0)
    except OSError:
        break
    time.sleep(0.1)
shutil.rmtree(root, ignore_errors=True)
"""


class PgstacUnavailable(RuntimeError):
    """PostgreSQL, PostGIS or a required Python package is not installed."""


class PgstacStartupError(RuntimeError):
    """The server was found but did not start; the message includes the captured logs."""


def find_pg_bindir() -> str:
    """Directory holding ``initdb``/``pg_ctl``; raises ``PgstacUnavailable`` when there is none."""
    candidates: list[str] = []
    if os.environ.get("STACFETCH_PG_BINDIR"):
        candidates.append(os.environ["STACFETCH_PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            candidates.append(out.stdout.strip())
    debian = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(debian, key=lambda p: _version_key(p.split("/")[-2]), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(os.path.dirname(initdb))
    for cand in candidates:
        if os.access(os.path.join(cand, "initdb"), os.X_OK) and os.access(
            os.path.join(cand, "pg_ctl"), os.X_OK
        ):
            return cand
    raise PgstacUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl) not found. Install them, e.g. on Debian 12: "
        "`apt-get install -y postgresql-15 postgresql-15-postgis-3` (see scripts/ci_system_deps.sh)"
        ", or set STACFETCH_PG_BINDIR. Searched: " + (", ".join(candidates) or "nothing found")
    )


def _version_key(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split(".") if p.isdigit())


def _check_postgis(bindir: str) -> None:
    """Raise ``PgstacUnavailable`` when PostGIS is not installed for this PostgreSQL."""
    sharedirs: list[str] = []
    pg_config = os.path.join(bindir, "pg_config")
    if os.access(pg_config, os.X_OK):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--sharedir"], capture_output=True, text=True, timeout=10, check=True
            )
            sharedirs.append(out.stdout.strip())
    version = os.path.basename(os.path.dirname(bindir))
    sharedirs.append(os.path.join("/usr/share/postgresql", version))
    sharedirs.append(os.path.join(os.path.dirname(bindir), "share"))
    if not any(os.path.exists(os.path.join(d, "extension", "postgis.control")) for d in sharedirs):
        raise PgstacUnavailable(
            f"PostGIS is not installed for the PostgreSQL in {bindir} (no extension/"
            f"postgis.control under {', '.join(sharedirs)}). On Debian 12: "
            f"`apt-get install -y postgresql-{version}-postgis-3`."
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: str, limit: int = 6000) -> str:
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return "(no log)"
    return text[-limit:] or "(empty)"


class PgstacServer:
    """PostgreSQL + pgstac + stac-fastapi-pgstac in a temporary directory.

    Args:
        context: turn pgstac's ``context`` setting on, so searches report ``numberMatched``.
        workers: uvicorn worker processes.
        db_max_conn_size: size of the API's connection pool (stac-fastapi-pgstac default 10).
        startup_timeout: seconds to wait for each of PostgreSQL and the API to come up.
        pg_bindir: PostgreSQL binaries; found by ``find_pg_bindir()`` when omitted.
        keep_dir: leave the directory (data and logs) on ``stop()``, for debugging.
    """

    def __init__(
        self,
        *,
        context: bool = False,
        workers: int = 1,
        db_max_conn_size: int = 10,
        startup_timeout: float = 60.0,
        pg_bindir: str | None = None,
        keep_dir: bool = False,
    ) -> None:
        self.context = context
        self.workers = workers
        self.db_max_conn_size = db_max_conn_size
        self.startup_timeout = startup_timeout
        self.pg_bindir = pg_bindir
        self.keep_dir = keep_dir
        self.root: str | None = None
        self.pg_port = 0
        self.api_port = 0
        self.password = secrets.token_hex(16)
        self.startup_seconds: dict[str, float] = {}
        self._api: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._pg_started = False
        self._run_as: pwd.struct_passwd | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ properties
    @property
    def url(self) -> str:
        """API root, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        self._require_started()
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def dsn(self) -> str:
        """libpq connection string of the database (pgstac schema installed)."""
        self._require_started()
        return (
            f"postgresql://{_DB_USER}:{self.password}@127.0.0.1:{self.pg_port}/{_DB_NAME}"
            "?application_name=stacfetch-tests"
        )

    @property
    def log_paths(self) -> dict[str, str]:
        """Paths of the captured logs (initdb, postgres, uvicorn)."""
        root = self.root or ""
        return {n: os.path.join(root, f"{n}.log") for n in ("initdb", "postgres", "uvicorn")}

    def logs(self) -> str:
        """The tail of every captured log, as one text (for failure messages)."""
        return "\n".join(f"--- {n} ({p}) ---\n{_tail(p)}" for n, p in self.log_paths.items())

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> PgstacServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> PgstacServer:
        """Create, start and migrate the cluster and start the API; returns ``self``."""
        if self.root is not None:
            raise RuntimeError("PgstacServer already started")
        for module in ("pypgstac", "psycopg", "psycopg_pool", "stac_fastapi.pgstac", "uvicorn"):
            try:
                __import__(module)
            except ImportError as exc:
                raise PgstacUnavailable(
                    f"Python package for the test server missing: {module} ({exc}). "
                    "Install `stac-fastapi-pgstac pypgstac[psycopg] uvicorn`."
                ) from exc
        bindir = self.pg_bindir or find_pg_bindir()
        if not os.access(os.path.join(bindir, "initdb"), os.X_OK):
            raise PgstacUnavailable(f"no executable initdb in pg_bindir={bindir!r}")
        _check_postgis(bindir)
        self.pg_bindir = bindir
        if os.geteuid() == 0:
            try:
                self._run_as = pwd.getpwnam("postgres")
            except KeyError:
                raise PgstacUnavailable(
                    "Running as root, PostgreSQL needs an unprivileged OS user named 'postgres' "
                    "(created by the Debian postgresql package)."
                ) from None
        t0 = time.perf_counter()
        self.root = tempfile.mkdtemp(prefix="stacfetch-pgstac-")
        atexit.register(self.stop)
        try:
            self._start_watchdog()
            self._initdb()
            self.startup_seconds["initdb"] = time.perf_counter() - t0
            self._start_postgres()
            self.startup_seconds["postgres"] = time.perf_counter() - t0
            self._start_api()  # imports for ~1 s while the schema is installed
            self._migrate()
            self.startup_seconds["migrate"] = time.perf_counter() - t0
            if self.context:
                self.set_context(True)
            self._wait_api()
            self.startup_seconds["total"] = time.perf_counter() - t0
        except BaseException as exc:
            logs = self.logs()  # read before stop() removes the directory
            self.stop()
            if isinstance(exc, (PgstacUnavailable, PgstacStartupError)) or not isinstance(
                exc, Exception
            ):
                raise
            raise PgstacStartupError(
                f"pgstac test server failed to start: {exc!r}\n{logs}"
            ) from exc
        return self

    def stop(self) -> None:
        """Stop uvicorn and PostgreSQL and remove the directory. Safe to call twice."""
        with self._lock:
            root, self.root = self.root, None
            if root is None:
                return
            atexit.unregister(self.stop)
            if self._api is not None:
                _kill_group(self._api)
                self._api = None
            if self._pg_started:
                self._pg_ctl(root, "stop", "-m", "immediate", "-w", "-t", "30", check=False)
                self._pg_started = False
            if self._watchdog is not None:
                self._watchdog.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._watchdog.wait(5)
                self._watchdog = None
            if not self.keep_dir:
                shutil.rmtree(root, ignore_errors=True)

    # ------------------------------------------------------------------ data
    def load_collections(self, collections: Iterable[Mapping[str, Any]]) -> int:
        """Insert collections (kept unpartitioned); returns how many."""
        from pypgstac.load import Loader, Methods

        rows = [dict(c) for c in collections]
        with self._pgstac_db() as db:
            Loader(db).load_collections(iter(rows), insert_mode=Methods.insert)
        return len(rows)

    def load_items(self, items: Iterable[Mapping[str, Any]]) -> int:
        """Insert items (their collections must exist); returns how many.

        Uses pypgstac's ``Loader`` in process (COPY in chunks of 10,000), then ``ANALYZE`` and
        clears pgstac's cached search counts so ``numberMatched`` reflects the new rows.
        """
        from pypgstac.load import Loader, Methods

        count = 0

        def counted() -> Iterator[dict[str, Any]]:
            nonlocal count
            for item in items:
                count += 1
                yield dict(item)

        with self._pgstac_db() as db:
            Loader(db).load_items(counted(), insert_mode=Methods.insert)
        self.execute("DELETE FROM pgstac.search_wheres")
        self.execute("ANALYZE pgstac.items")
        return count

    def set_context(self, on: bool) -> None:
        """Switch ``numberMatched`` on or off; takes effect on the next request, no restart."""
        self.execute(
            "UPDATE pgstac.pgstac_settings SET value = %s WHERE name = 'context'",
            ("on" if on else "off",),
        )
        self.context = on

    def execute(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one SQL statement in autocommit mode; returns the rows (empty if none)."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(query.encode(), params)
            return list(cur.fetchall()) if cur.description is not None else []

    def count_items(self, collection: str | None = None) -> int:
        """Rows in ``pgstac.items`` (of one collection when given)."""
        if collection is None:
            rows = self.execute("SELECT count(*) FROM pgstac.items")
        else:
            rows = self.execute(
                "SELECT count(*) FROM pgstac.items WHERE collection = %s", (collection,)
            )
        return int(rows[0][0])

    # ------------------------------------------------------------------ internals
    def _require_started(self) -> None:
        if self.root is None:
            raise RuntimeError("PgstacServer is not running: call start() first")

    @contextlib.contextmanager
    def _pgstac_db(self) -> Iterator[Any]:
        from psycopg_pool import ConnectionPool
        from pypgstac.db import PgstacDB

        pool = ConnectionPool(self.dsn, min_size=1, max_size=1, open=True)
        try:
            db = PgstacDB(pool=pool)
            try:
                yield db
            finally:
                db.disconnect()
        finally:
            pool.close()

    def _as_pg_user(self) -> dict[str, Any]:
        if self._run_as is None:
            return {}
        return {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _run(self, args: list[str], log: str, timeout: float, check: bool = True) -> int:
        with open(log, "ab") as out:
            proc = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                cwd=self.root,
                **self._as_pg_user(),
            )
        if check and proc.returncode != 0:
            raise PgstacStartupError(
                f"{os.path.basename(args[0])} exited with {proc.returncode}\n{self.logs()}"
            )
        return proc.returncode

    def _pg_ctl(self, root: str, *args: str, check: bool = True) -> int:
        assert self.pg_bindir is not None
        cmd = [os.path.join(self.pg_bindir, "pg_ctl"), "-D", os.path.join(root, "data"), *args]
        return self._run(cmd, os.path.join(root, "postgres.log"), 60, check)

    def _start_watchdog(self) -> None:
        assert self.root is not None
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(os.getpid()), self.root],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",
        )

    def _initdb(self) -> None:
        assert self.root is not None
        assert self.pg_bindir is not None
        root = self.root
        pwfile = os.path.join(root, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        os.chmod(pwfile, 0o600)
        if self._run_as is not None:
            for path in (root, pwfile):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        args = [os.path.join(self.pg_bindir, "initdb"), "-D", os.path.join(root, "data")]
        args += [f"--username={_DB_USER}", f"--pwfile={pwfile}", "--auth=scram-sha-256"]
        args += ["--no-sync", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"]
        self._run(args, self.log_paths["initdb"], 120)
        os.unlink(pwfile)
        settings = dict(_PG_SETTINGS, unix_socket_directories=f"'{root}'")
        with open(os.path.join(root, "data", "postgresql.conf"), "a") as conf:
            conf.write("\n# stacfetch test server\n")
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())

    def _start_postgres(self) -> None:
        assert self.root is not None
        for attempt in range(3):
            self.pg_port = _free_port()
            timeout = str(int(self.startup_timeout))
            code = self._pg_ctl(
                self.root, "start", "-w", "-t", timeout, "-o", f"-p {self.pg_port}", check=False
            )
            if code == 0:
                self._pg_started = True
                return
            if "could not bind" not in _tail(self.log_paths["postgres"]) or attempt == 2:
                break
        raise PgstacStartupError(f"PostgreSQL did not start (pg_ctl start)\n{self.logs()}")

    def _migrate(self) -> None:
        from pypgstac.migrate import Migrate

        with self._pgstac_db() as db:
            Migrate(db).run_migration()

    def _start_api(self) -> None:
        assert self.root is not None
        self.api_port = _free_port()
        env = dict(os.environ)
        env.update(
            PGUSER=_DB_USER,
            PGPASSWORD=self.password,
            PGHOST="127.0.0.1",
            PGPORT=str(self.pg_port),
            PGDATABASE=_DB_NAME,
            DB_MIN_CONN_SIZE="1",
            DB_MAX_CONN_SIZE=str(self.db_max_conn_size),
            STAC_FASTAPI_TITLE="stacfetch test pgstac",
            STAC_FASTAPI_DESCRIPTION="Throwaway stac-fastapi-pgstac for stacfetch tests",
            STAC_FASTAPI_VERSION="test",
            STAC_FASTAPI_LANDING_ID="stacfetch-test-pgstac",
            PYTHONUNBUFFERED="1",
        )
        for var in ("ENABLED_EXTENSIONS", "ROOT_PATH", "PREFIX_PATH", "UVICORN_ROOT_PATH"):
            env.pop(var, None)
        args = [sys.executable, "-m", "uvicorn", "--factory"]
        args += ["stac_fastapi.pgstac.app:create_app", "--host", "127.0.0.1"]
        args += ["--port", str(self.api_port), "--log-level", "warning", "--no-access-log"]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        with open(self.log_paths["uvicorn"], "ab") as log:
            self._api = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,  # no stray .env file gets read
                env=env,
                start_new_session=True,
            )
        with open(os.path.join(self.root, "uvicorn.pid"), "w") as f:
            f.write(f"{self._api.pid}\n")

    def _wait_api(self) -> None:
        assert self._api is not None
        deadline = time.monotonic() + self.startup_timeout
        last = "no answer yet"
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self._api.poll() is not None:
                    raise PgstacStartupError(
                        f"uvicorn exited with {self._api.returncode}\n{self.logs()}"
                    )
                try:
                    resp = client.get(f"http://127.0.0.1:{self.api_port}/")
                    if resp.status_code == 200 and resp.json().get("type") == "Catalog":
                        return
                    last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.05)
        raise PgstacStartupError(
            f"API did not answer within {self.startup_timeout} s ({last})\n{self.logs()}"
        )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL after 5 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stray workers of the group


def reference_search(
    url: str,
    body: Mapping[str, Any] | None = None,
    *,
    page_size: int = 1000,
    max_pages: int = 10_000,
    client: httpx.Client | None = None,
) -> list[dict[str, Any]]:
    """Every item of one search, fetched sequentially: the independent reference for tests.

    POSTs ``body`` (plus ``limit=page_size`` unless given) to ``{url}/search`` and follows
    ``next`` links exactly as given (GET or POST, ``body``, ``merge``, ``headers``). Plain httpx,
    no retries: any non-200 answer raises. A repeated ``next`` link raises ``RuntimeError``.
    """
    own = client is None
    http = client or httpx.Client(timeout=120.0)
    request: dict[str, Any] = {
        "method": "POST",
        "href": f"{url.rstrip('/')}/search",
        "body": {"limit": page_size, **(body or {})},
        "headers": {},
    }
    seen: set[str] = set()
    items: list[dict[str, Any]] = []
    try:
        for _ in range(max_pages):
            key = str(sorted((k, repr(v)) for k, v in request.items()))
            if key in seen:
                raise RuntimeError(f"next link loop at {request}")
            seen.add(key)
            if request["method"] == "POST":
                resp = http.post(request["href"], json=request["body"], headers=request["headers"])
            else:
                resp = http.get(request["href"], headers=request["headers"])
            resp.raise_for_status()
            page = resp.json()
            items.extend(page["features"])
            nxt = next((ln for ln in page.get("links", []) if ln.get("rel") == "next"), None)
            if nxt is None:
                return items
            method = str(nxt.get("method", "GET")).upper()
            link_body = nxt.get("body")
            if method == "POST" and nxt.get("merge"):
                link_body = {**request["body"], **(link_body or {})}
            request = {
                "method": method,
                "href": nxt["href"],
                "body": link_body,
                "headers": nxt.get("headers") or {},
            }
        raise RuntimeError(f"more than {max_pages} pages")
    finally:
        if own:
            http.close()


# ---------------------------------------------------------------------------- CLI
def _parse_date(text: str) -> datetime:
    from .itemgen import parse_datetime

    return parse_datetime(text if "T" in text else f"{text}T00:00:00Z")


def _serve(args: argparse.Namespace) -> int:
    from .itemgen import generate_items, make_collection

    start, end = _parse_date(args.start), _parse_date(args.end)
    names = [c.strip() for c in args.collections.split(",") if c.strip()]
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    t0 = time.perf_counter()
    with PgstacServer(context=args.context == "on", workers=args.workers) as server:
        up = time.perf_counter() - t0
        server.load_collections(make_collection(c, start, end) for c in names)
        total = 0
        for i, name in enumerate(names):
            total += server.load_items(generate_items(name, args.items, start, end, args.seed + i))
        print(
            f"server up in {up:.1f} s, {total} items in {len(names)} collection(s) loaded in "
            f"{time.perf_counter() - t0 - up:.1f} s; context {args.context}",
            file=sys.stderr,
        )
        print(server.url, flush=True)
        while not stop.wait(0.5):
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.support.pgstac serve ...``: start a seeded server and wait."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.pgstac")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start a seeded server, print its URL, wait")
    serve.add_argument("--items", type=int, default=10000, help="items per collection")
    serve.add_argument("--collections", default="sf-a", help="comma-separated ids")
    serve.add_argument("--context", choices=["on", "off"], default="off")
    serve.add_argument("--start", default="2020-01-01", help="extent start (date or RFC 3339)")
    serve.add_argument("--end", default="2022-12-31T23:59:59Z", help="extent end")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn workers")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
