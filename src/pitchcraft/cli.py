"""The `pitchcraft` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from pitchcraft.settings import Settings

app = typer.Typer(
    help="Pitchcraft: refine marketing copy with your own documents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
users_app = typer.Typer(
    help="Manage accounts (works even when registration is closed).", no_args_is_help=True
)
app.add_typer(users_app, name="user")


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    from pitchcraft.core.filemodes import restrict_umask

    restrict_umask()  # whatever a command writes in the data location stays private
    try:
        return Settings()
    except ValidationError as exc:
        problems = "\n".join(
            f"  - {'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: {e['msg']}"
            for e in exc.errors()
        )
        raise _fail(f"Invalid configuration:\n{problems}") from exc


def _container(settings: Settings, *, migrate_schema: bool | None = None):  # type: ignore[no-untyped-def]
    from pitchcraft.container import build
    from pitchcraft.core.migrate import SchemaOutdated, SchemaTooNew
    from pitchcraft.core.persistence import DataNotPersistent

    try:
        return build(settings, migrate_schema=migrate_schema)
    except (DataNotPersistent, SchemaTooNew, SchemaOutdated) as exc:
        raise _fail(str(exc)) from exc
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            raise _fail(f"Cannot reach the database: {exc.orig}") from exc
        raise


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def listens_publicly(host: str) -> bool:
    """True unless `host` is a loopback address (or `localhost`)."""
    import ipaddress

    if host.strip().lower() in {"localhost", "localhost."}:
        return False
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return True  # a host name: it may resolve to any interface


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    forwarded_allow_ips: Annotated[
        str | None, typer.Option(help="Proxies trusted for X-Forwarded-For (comma-separated).")
    ] = None,
) -> None:
    """Check the data location, migrate, and serve the web app and API."""
    import uvicorn

    from pitchcraft.web.app import create_app
    from pitchcraft.web.server_limits import protocol_for

    settings = _settings()
    _configure_logging(settings.log_level)
    container = _container(settings)
    for report in container.path_reports:
        logging.getLogger("pitchcraft").info(
            "%s=%s (%s)", report.setting, report.path, report.where
        )
    if not settings.cookie_secure and listens_publicly(host):
        logging.getLogger("pitchcraft").warning(
            "listening on %s, reachable from other machines, with COOKIE_SECURE=false: "
            "session cookies travel unencrypted unless a TLS proxy is in front; put one "
            "there and set COOKIE_SECURE=true (see SECURITY.md)",
            host,
        )
    application = create_app(settings, container=container)
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=20,
        http=protocol_for(settings),
    )


@app.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Ingestion jobs run at once (WORKER_CONCURRENCY).")
    ] = None,
    kind: Annotated[
        str, typer.Option(help="Which jobs: ingest, refine or all (each kind in its own lane).")
    ] = "all",
) -> None:
    """Run ingestion and refine jobs in this process, beside `serve` replicas (needs QDRANT_URL)."""
    import signal
    import threading

    from pitchcraft.runtime import LANES, build_worker, stop_background_work

    if kind not in LANES:
        raise _fail(f"--kind must be one of {', '.join(LANES)}, not {kind!r}")
    settings = _settings()
    _configure_logging(settings.log_level)
    if not settings.qdrant_url:
        raise _fail(
            "`pitchcraft worker` needs QDRANT_URL (a Qdrant server): the embedded vector index "
            "belongs to the `serve` process, which runs its own worker (WORKER_IN_PROCESS)."
        )
    if concurrency is not None:
        settings = settings.model_copy(update={"worker_concurrency": concurrency})
    container = _container(settings)
    runner = build_worker(container, kind)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    runner.start()
    logging.getLogger("pitchcraft").info("worker %s started", runner.id)
    stopping.wait()
    stop_background_work(runner, timeout=30)
    container.close()


@app.command()
def reindex(
    email: Annotated[str | None, typer.Option(help="Only this user's documents.")] = None,
) -> None:
    """Rebuild vectors from the stored files: every document is queued for ingestion again
    (MiniLM and BM25), then for multilingual enrichment (e5) when MULTILINGUAL_SEARCH is on.

    Safe while the server runs: this only queues work; the server's worker does it.
    """
    from pitchcraft.documents.reindex import queue_reindex

    container = _container(_settings())
    try:
        # A Qdrant server's collections without the multilingual vector are rebuilt.
        index = container.index() if container.settings.qdrant_url else None
        count = queue_reindex(container.db, email=email, index=index)
    except LookupError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"Queued {count} document(s) for re-indexing.")


@app.command("migrate-vectors")
def migrate_vectors(
    replace: Annotated[
        bool,
        typer.Option(
            help="Delete each user's collection on the server before copying it (drops "
            "points the embedded index does not have)."
        ),
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=10_000, help="Points per request.")] = 256,
) -> None:
    """Copy the embedded vector index (QDRANT_PATH) into the Qdrant server at QDRANT_URL.

    Stop `pitchcraft serve` first: it owns the embedded shards. Ids, vectors and payloads are
    copied as they are and every collection is verified; running it again is safe.
    """
    from pitchcraft.vectors.migrate import MigrationError, migrate_from_settings

    settings = _settings()
    _configure_logging("WARNING")
    try:
        report = migrate_from_settings(settings, replace=replace, batch=batch, progress=typer.echo)
    except MigrationError as exc:
        raise _fail(str(exc)) from exc
    for line in report.summary():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (serve does this at start too)."""
    from pitchcraft.core import migrate as migrations
    from pitchcraft.core.db import Database
    from pitchcraft.core.persistence import DataNotPersistent, ensure_persistent

    settings = _settings()
    try:
        ensure_persistent(settings)
        before, after = migrations.upgrade(Database(settings))
    except (DataNotPersistent, migrations.SchemaTooNew) as exc:
        raise _fail(str(exc)) from exc
    if before == after:
        typer.echo(f"Database already at {after}.")
    else:
        typer.echo(f"Database migrated from {before or 'empty'} to {after}.")


@app.command()
def doctor() -> None:
    """Check data paths, persistence, free space, schema and backends; exit 1 on any problem."""
    from pitchcraft.ops.doctor import run_checks

    settings = _settings()
    ok = True
    for check in run_checks(settings):
        mark = (
            typer.style("ok  ", fg=typer.colors.GREEN)
            if check.ok
            else typer.style("FAIL", fg=typer.colors.RED)
        )
        typer.echo(f"[{mark}] {check.name}: {check.detail}")
        ok = ok and check.ok
    raise typer.Exit(0 if ok else 1)


@users_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The new account's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="Asked for when omitted."
        ),
    ],
) -> None:
    """Create an account."""
    from pydantic import EmailStr, TypeAdapter

    from pitchcraft.core.errors import AppError

    try:
        address = TypeAdapter(EmailStr).validate_python(email)
    except ValidationError as exc:
        raise _fail(f"{email!r} is not a valid email address.") from exc
    container = _container(_settings())
    try:
        user = container.accounts.create_user(email=address, password=password)
    except AppError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"Created user {user.id} <{user.email}>.")


@users_app.command("list")
def user_list() -> None:
    """List accounts: role, state, sign-ins and what each one uses."""
    container = _container(_settings())
    rows, _ = container.users.list(limit=1_000_000)
    if not rows:
        typer.echo("No accounts yet.")
        return
    typer.echo(
        f"{'id':>6}  {'email':<40} {'role':<6} {'state':<8} {'subscr':<6} "
        f"{'created (UTC)':<16} {'last sign-in':<16} {'docs':>5} {'jobs':>5} {'storage':>10}"
    )
    for u in rows:
        last = f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"
        typer.echo(
            f"{u.id:>6}  {u.email:<40} {'admin' if u.is_admin else 'member':<6} "
            f"{'disabled' if u.disabled else 'active':<8} {'yes' if u.is_subscribed else 'no':<6} "
            f"{u.created_at:%Y-%m-%d %H:%M} {last:<16} {u.documents:>5} {u.jobs:>5} "
            f"{_size(u.storage_bytes):>10}"
        )


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _update_user(email: str, done: str, **change: bool) -> None:
    from pitchcraft.core.errors import AppError

    container = _container(_settings())
    try:
        row = container.users.update(container.users.id_for_email(email), **change)
    except AppError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"<{row.email}> {done}.")


EmailArg = Annotated[str, typer.Argument(help="The account's email.")]


@users_app.command("promote")
def user_promote(email: EmailArg) -> None:
    """Make an account an administrator."""
    _update_user(email, "is now an administrator", is_admin=True)


@users_app.command("demote")
def user_demote(email: EmailArg) -> None:
    """Make an administrator a member again (refused for the last administrator)."""
    _update_user(email, "is now a member", is_admin=False)


@users_app.command("disable")
def user_disable(email: EmailArg) -> None:
    """Disable an account: it cannot sign in, and its sessions stop working."""
    _update_user(email, "is disabled; its sessions are signed out", disabled=True)


@users_app.command("enable")
def user_enable(email: EmailArg) -> None:
    """Enable a disabled account again."""
    _update_user(email, "is enabled", disabled=False)


@users_app.command("set-password")
def user_set_password(
    email: Annotated[str, typer.Argument(help="The account's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, help="Asked for when omitted."
        ),
    ],
) -> None:
    """Set a new password; every token issued before stops working."""
    from pitchcraft.core.errors import AppError

    container = _container(_settings())
    try:
        user = container.accounts.set_password(email=email, password=password)
    except AppError as exc:
        raise _fail(exc.message) from exc
    typer.echo(f"Password changed for <{user.email}>; older sessions are signed out.")


@users_app.command("set-subscribed")
def user_set_subscribed(
    email: Annotated[str, typer.Argument(help="The account's email.")],
    value: Annotated[str, typer.Argument(metavar="true|false", help="The new status.")],
) -> None:
    """Mark an account subscribed or not (shown on its Account page and in the API)."""
    from pitchcraft.core.errors import AppError

    flag = {"true": True, "false": False}.get(value.strip().lower())
    if flag is None:
        raise _fail(f"Say true or false, not {value!r}.")
    container = _container(_settings())
    try:
        user = container.accounts.set_subscribed(email=email, subscribed=flag)
    except AppError as exc:
        raise _fail(exc.message) from exc
    state = "subscribed" if user.is_subscribed else "not subscribed"
    typer.echo(f"<{user.email}> is now {state}.")


@app.command("import-legacy")
def import_legacy(
    path: Annotated[Path, typer.Argument(help="The original system's marketing_mvp.db.")],
) -> None:
    """Import users, prompt templates and jobs from the original system. Safe to re-run."""
    from pitchcraft.ops.legacy import LegacyImportError
    from pitchcraft.ops.legacy import import_legacy as run_import

    container = _container(_settings())
    try:
        report = run_import(container.db, path)
    except LegacyImportError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"Imported from {path}:")
    for line in report.lines():
        typer.echo(f"  {line}")


@app.command()
def backup(
    out: Annotated[
        str,
        typer.Argument(
            help="Archive to write: NAME.tar, NAME.tar.gz (compressed), a directory (a dated "
            "name inside), or - for standard output."
        ),
    ],
) -> None:
    """Write a consistent archive of the database, stored files and vectors.

    Safe while the server runs. Never overwrites a file; a failed backup leaves no archive.
    """
    from pitchcraft.ops.backup import BackupError, create_backup

    settings = _settings()
    to_stdout = out == "-"
    if to_stdout and sys.stdout.isatty():
        raise _fail("Refusing to write an archive to a terminal: redirect it, e.g. `> backup.tar`.")
    try:
        if to_stdout:
            report = create_backup(settings, stream=sys.stdout.buffer)
        else:
            report = create_backup(settings, Path(out))
    except BackupError as exc:
        raise _fail(str(exc)) from exc
    for line in report.lines():
        typer.echo(line, err=to_stdout)


@app.command()
def restore(
    archive: Annotated[
        str, typer.Argument(help="An archive made by `pitchcraft backup`, or - for standard input.")
    ],
) -> None:
    """Fill an empty data location from a backup archive (stop the server first).

    Every checksum is verified before anything is written; a location that holds data is
    refused. Migrates the database, checks the vectors and re-queues what needs re-indexing.
    """
    from pitchcraft.ops.backup import BackupError, restore_backup

    settings = _settings()
    if archive == "-" and sys.stdin.isatty():
        raise _fail("Give an archive on standard input, e.g. `< backup.tar`.")
    try:
        if archive == "-":
            report = restore_backup(settings, stream=sys.stdin.buffer)
        else:
            report = restore_backup(settings, Path(archive))
    except BackupError as exc:
        raise _fail(str(exc)) from exc
    for line in report.lines():
        typer.echo(line)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
