"""Sessions benchmark: what checking a token costs now that it names a session.

In the same run, on a SQLite file and on PostgreSQL, per call (median of interleaved rounds):
- stateless: verifying the JWT alone (signature, expiry) — the baseline;
- user lookup: the JWT and one primary-key read of the user (the check before sessions);
- session: the JWT and one primary-key read of the session joined to its user
  (`SessionStore.check`, SESSION_CACHE_SECONDS=0, the default);
- session, cached: the same with SESSION_CACHE_SECONDS=5 (a hit costs the JWT and a dict).
And per request: `GET /api/v1/auth/me` through the whole ASGI app, with the share of it
that the session lookup takes.

Run: .venv/bin/python -m bench.sessions [--quick] [--db sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench import banner, machine, ratio, table, write_results


def _per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def measure(database_url: str | None, data_dir: Path, *, rounds: int, calls: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from pitchcraft.auth.models import User
    from pitchcraft.auth.sessions import SessionStore
    from pitchcraft.web.app import create_app
    from tests.conftest import make_settings

    settings = make_settings(data_dir, database_url, worker_in_process=False)
    app = create_app(settings)
    with TestClient(app) as client:
        container = app.state.container
        r = client.post(
            "/api/v1/auth/register", json={"email": "bench@example.com", "password": "bench-pass"}
        )
        token = r.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        tokens, db = container.accounts.tokens, container.db
        sessions = container.accounts.sessions
        cached = SessionStore(db, tokens, idle_minutes=30, cache_seconds=5)

        def user_lookup() -> None:
            claims = tokens.decode(token)
            with db.session() as s:
                s.execute(select(User).where(User.id == claims.user_id)).scalar_one()

        variants: dict[str, Callable[[], object]] = {
            "stateless": lambda: tokens.decode(token),
            "user lookup": user_lookup,
            "session": lambda: sessions.check(token),
            "session, cached": lambda: cached.check(token),
            "GET /auth/me": lambda: client.get("/api/v1/auth/me", headers=headers),
        }
        for fn in variants.values():  # warm up connections, caches, the JIT-less paths
            _per_call(fn, 20)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, fn in variants.items():
                n = calls if name != "GET /auth/me" else max(10, calls // 10)
                samples[name].append(_per_call(fn, n))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    rounds, calls = (5, 200) if args.quick else (15, 1000)
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {"machine": machine(), "rounds": rounds, "calls": calls}
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp:
        for db in dbs:
            banner(f"token checks on {db}")
            schema: Any = None
            url = None
            if db == "postgresql":
                from tests.conftest import PgSchema

                schema = PgSchema()
                schema.create()
                url = schema.url
            try:
                found = measure(url, Path(tmp) / db, rounds=rounds, calls=calls)
            finally:
                if schema is not None:
                    schema.drop()
            base = found["stateless"]
            lookup = found["session"] - base
            found["session share of GET /auth/me"] = lookup / found["GET /auth/me"]
            results[db] = found
            for name in ("stateless", "user lookup", "session", "session, cached", "GET /auth/me"):
                rows.append([db, name, found[name] * 1e6, ratio(found[name], base)])
            share = found["session share of GET /auth/me"]
            rows.append([db, "session lookup / request", None, share])
    print(table(["database", "check", "us per call", "ratio to stateless"], rows))
    print(f"\nwritten to {write_results('sessions', results)}")


if __name__ == "__main__":
    main()
