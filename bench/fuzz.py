"""Fuzz the JSON API with schemathesis, against the app's own OpenAPI schema.

Every operation of `/openapi.json` gets valid and invalid input (schemathesis' positive and
negative generation), then stateful sequences follow the links schemathesis infers from the
schema (upload → GET/DELETE /documents/{id}, process → results/{job_id} → rerun, search hits →
documents/{id}, …). Requests go in-process to the real ASGI app — its middleware, the SQLite
file (or a PostgreSQL schema), the worker that ingests uploads and runs refine jobs — as a
registered user with a bearer token. Each response is checked for:

* `not_a_server_error`: no 5xx (the only 5xx the API documents is /health's 503);
* `status_code_conformance`: the status is one the operation documents;
* `content_type_conformance`, `response_schema_conformance`: the body matches the schema.

The same driver runs, bounded and seeded, in tests/test_fuzz.py. Here it runs longer:

    .venv/bin/python -m bench.fuzz [--examples 200] [--stateful 50] [--db sqlite|postgresql|both]

It prints the requests sent (per operation and status) and the failures by check, with one
example request each, and writes bench/results/fuzz-<timestamp>.json. Exit status 1 when
anything failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.errors
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.core.failures import FailureGroup

REPORTED_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Reported with --all-checks, without failing the run: stricter readings of the schema that
# flag business rules it does not express (a password's minimum length is a setting, a
# template must contain {{marketing_text}}, text may hold no control characters, ...).
INFORMATIONAL_CHECKS = (
    "response_headers_conformance",
    "positive_data_acceptance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
)
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SERVER_ERROR = "not_a_server_error"
# The first search loads the embedding model; on a busy 2-core machine that takes a while.
TIMEOUT_S = 120


def checks(names: Sequence[str] = REPORTED_CHECKS) -> list[Any]:
    import schemathesis.checks as registry

    return [getattr(registry, name) for name in names]


def without_lifespan(app: Any) -> Any:
    """The app for schemathesis' ASGI client: it runs no lifespan of its own (the caller's
    TestClient already runs the real one, with its worker), so the app starts once."""

    async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            # Refused before any message is read: "no lifespan support" in ASGI terms.
            raise RuntimeError("the lifespan runs in the caller's TestClient")
        await app(scope, receive, send)

    return asgi


@dataclass
class Failure:
    check: str
    operation: str
    status: int | None
    title: str
    example: str
    count: int = 1


@dataclass
class FuzzReport:
    requests: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    by_outcome: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: dict[tuple[str, str, int | None, str], Failure] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    operations: set[str] = field(default_factory=set)  # all of the schema's

    def record(self, label: str, status: int) -> None:
        self.requests += 1
        self.by_operation[label] += 1
        self.by_status[status] += 1
        self.by_outcome[(label, status)] += 1

    def fail(self, check: str, label: str, status: int | None, title: str, example: str) -> None:
        key = (check, label, status, title)
        if key in self.failures:
            self.failures[key].count += 1
        else:
            self.failures[key] = Failure(check, label, status, title, example)

    def failures_by_check(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for f in self.failures.values():
            counts[f.check] += f.count
        return counts

    def summary(self) -> str:
        lines = [f"{self.requests} requests"]
        lines += [f"  {n:6d}  {label}" for label, n in sorted(self.by_operation.items())]
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.by_status.items()))
        lines.append(f"  by status: {statuses}")
        by_check = self.failures_by_check()
        lines.append(
            "failures by check: "
            + (", ".join(f"{c}: {n}" for c, n in sorted(by_check.items())) or "none")
        )
        for f in self.failures.values():
            lines.append(f"- [{f.check}] {f.operation} → {f.status} (x{f.count}): {f.title}")
            lines.append("    " + f.example.replace("\n", "\n    "))
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_operation": dict(self.by_operation),
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "failures_by_check": dict(self.failures_by_check()),
            "failures": [f.__dict__ for f in self.failures.values()],
            "seconds": self.seconds,
            "operations_not_reached": sorted(self.operations - set(self.by_operation)),
        }


def _settings(examples: int, seed: int | None, **extra: Any) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=examples,
        derandomize=seed is None,
        database=None,
        deadline=None,
        # Failures are collected, never raised: nothing to shrink or explain.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        **extra,
    )


# Signing out would end the fuzzing session itself: every call after it answers 401.
SESSION_ENDING = {("POST", "/api/v1/auth/logout")}


def _keeps_the_session(op: Any) -> bool:
    return (op.method.upper(), op.path) not in SESSION_ENDING


def _without_session_ending(schema: Any) -> Any:
    for method, path in SESSION_ENDING:
        schema = schema.exclude(method=method, path=path)
    return schema


class Fuzzer:
    """Sends schemathesis' cases to an ASGI app and collects what the checks find."""

    def __init__(
        self,
        app: Any,
        *,
        token: str,
        include: Callable[[Any], bool] | None = None,
        check_names: Sequence[str] = REPORTED_CHECKS,
    ) -> None:
        self.asgi = without_lifespan(app)
        self.schema = schemathesis.openapi.from_dict(app.openapi())
        self.schema.app = self.asgi
        self.headers = {"Authorization": f"Bearer {token}"}
        self.include = include
        self.checks = list(zip(check_names, checks(check_names), strict=True))
        self.report = FuzzReport()
        self.report.operations = {op.label for op in self.operations()}
        self.verbose = False

    def operations(self) -> list[Any]:
        ops = []
        for result in self.schema.get_all_operations():
            op = result.ok()
            if _keeps_the_session(op) and (self.include is None or self.include(op)):
                ops.append(op)
        return ops

    def exercise(self, case: Any, recorder: Any = None) -> Any:
        label = f"{case.method} {case.operation.path}"
        try:
            response = case.call(app=self.asgi, headers=self.headers, timeout=TIMEOUT_S)
        except Exception as exc:  # the app raised through every handler: a server error
            self.report.record(label, 500)
            self.report.fail(SERVER_ERROR, label, None, repr(exc)[:300], self._example(case))
            return None
        self.report.record(label, response.status_code)
        self.validate(case, response, recorder)
        return response

    def validate(self, case: Any, response: Any, recorder: Any = None) -> None:
        label = f"{case.method} {case.operation.path}"
        for name, check in self.checks:
            try:
                case.validate_response(
                    response,
                    checks=[check],
                    headers=self.headers,
                    transport_kwargs={"app": self.asgi, "headers": self.headers},
                    recorder=recorder,
                )
            except FailureGroup as group:
                for failure in group.exceptions:
                    self.report.fail(
                        name,
                        label,
                        response.status_code,
                        f"{failure.title}: {failure.message}"[:400],
                        self._example(case, response),
                    )

    @staticmethod
    def _example(case: Any, response: Any = None) -> str:
        try:
            # Without our headers: the token stays out of reports.
            curl: str = case.as_curl_command()
        except Exception:  # a case schemathesis cannot print
            curl = repr(case)[:500]
        if response is not None:
            # Bytes, not text: a download (a zip, a PNG) is an answer too.
            body = response.content[:300].decode("utf-8", "replace")
            curl += f"\n→ {response.status_code} {body!r}"
        return curl[:1500]

    def run_operations(
        self,
        examples: int,
        *,
        modes: Sequence[GenerationMode] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE),
        seed: int | None = None,
    ) -> None:
        started = time.monotonic()
        for op in self.operations():
            for mode in modes:
                strategy = op.as_strategy(generation_mode=mode)

                @_settings(examples, seed)
                @hypothesis.given(case=strategy)
                def run(case: Any) -> None:
                    self.exercise(case)

                if seed is not None:
                    run = hypothesis.seed(seed)(run)
                before, t0 = self.report.requests, time.monotonic()
                # Unsatisfiable: nothing to generate, e.g. invalid input where there is no input.
                with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                    run()
                if self.verbose:
                    print(
                        f"  {mode.value:8s} {op.label}: {self.report.requests - before} requests"
                        f" in {time.monotonic() - t0:.1f} s",
                        file=sys.stderr,
                        flush=True,
                    )
        self.report.seconds["operations"] = round(time.monotonic() - started, 1)

    def run_stateful(self, examples: int, *, steps: int = 6) -> None:
        """Sequences along the links schemathesis infers from the schema."""
        fuzzer = self
        schema = _without_session_ending(self.schema)
        schema = schema if self.include is None else schema.include(self.include)

        class Workflow(schema.as_state_machine()):  # type: ignore[misc]
            def get_call_kwargs(self, case: Any) -> dict[str, Any]:
                return {"app": fuzzer.asgi, "headers": fuzzer.headers, "timeout": TIMEOUT_S}

            def call(self, case: Any, **kwargs: Any) -> Any:
                label = f"{case.method} {case.operation.path}"
                try:
                    response = case.call(**kwargs)
                except Exception as exc:  # the app raised through every handler
                    fuzzer.report.record(label, 500)
                    fuzzer.report.fail(
                        SERVER_ERROR, label, None, repr(exc)[:300], fuzzer._example(case)
                    )
                    raise
                fuzzer.report.record(label, response.status_code)
                return response

            def validate_response(
                self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
            ) -> None:
                fuzzer.validate(case, response, getattr(self, "recorder", None))

        started = time.monotonic()
        # Always derandomized: hypothesis takes no seed for a state machine run this way.
        Workflow.run(settings=_settings(examples, None, stateful_step_count=steps))
        self.report.seconds["stateful"] = round(time.monotonic() - started, 1)


# --- the standalone run ---------------------------------------------------------------------


@contextlib.contextmanager
def _database(kind: str) -> Iterator[str | None]:
    if kind == "sqlite":
        yield None
        return
    import psycopg

    conninfo = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"fuzz_{secrets.token_hex(6)}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def fuzz_settings(data_dir: Path, database_url: str | None = None, **overrides: Any) -> Any:
    """Settings for a fuzzed app: small limits, so the size checks are reached cheaply, and
    throttles high enough that the fuzzer is not refused with 429 all along."""
    from pitchcraft.settings import Settings

    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "container_mode": "no",
        "login_rate_limit_per_client": "100000/minute",
        "login_rate_limit_per_email": "100000/minute",
        "register_rate_limit_per_client": "100000/minute",
        "refine_rate_limit_per_user": "100000/minute",
        "clear_documents_on_login": False,
        "max_upload_mb": 1,
        "max_files_per_upload": 4,
        "max_request_kb": 64,
        "parse_timeout_s": 30,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def run(
    kind: str,
    examples: int,
    stateful: int,
    steps: int,
    seed: int | None,
    check_names: Sequence[str] = REPORTED_CHECKS,
) -> FuzzReport:
    from fastapi.testclient import TestClient

    from pitchcraft.web.app import create_app

    with (
        _database(kind) as url,
        tempfile.TemporaryDirectory(prefix="pitchcraft-fuzz-") as tmp,
    ):
        app = create_app(fuzz_settings(Path(tmp) / "data", url))
        with TestClient(app) as client:
            r = client.post(
                "/api/v1/auth/register", json={"email": "fuzz@example.com", "password": "fuzz-pass"}
            )
            r.raise_for_status()
            fuzzer = Fuzzer(app, token=r.json()["access_token"], check_names=check_names)
            fuzzer.verbose = True
            fuzzer.run_operations(examples, seed=seed)
            if stateful:
                try:
                    fuzzer.run_stateful(stateful, steps=steps)
                except Exception as exc:  # recorded already; the run goes on to report
                    print(f"stateful run stopped: {exc!r}"[:500], file=sys.stderr)
            alive = client.get("/health").status_code
            if alive != 200:
                fuzzer.report.fail(SERVER_ERROR, "GET /health", alive, "unhealthy after", "")
        return fuzzer.report


def main(argv: Sequence[str] | None = None) -> int:
    from bench import banner, go_offline, machine, write_results

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="per operation and mode")
    parser.add_argument("--stateful", type=int, default=50, help="stateful scenarios")
    parser.add_argument("--steps", type=int, default=8, help="most steps per scenario")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="sqlite")
    parser.add_argument("--seed", type=int, default=None, help="default: derandomized")
    parser.add_argument(
        "--all-checks",
        action="store_true",
        help=f"also report (without failing) {', '.join(INFORMATIONAL_CHECKS)}",
    )
    args = parser.parse_args(argv)
    go_offline()
    banner("fuzz")
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: dict[str, Any] = {"machine": machine(), "args": vars(args), "runs": {}}
    failed = False
    for kind in kinds:
        started = time.monotonic()
        names = [*REPORTED_CHECKS, *(INFORMATIONAL_CHECKS if args.all_checks else ())]
        report = run(kind, args.examples, args.stateful, args.steps, args.seed, names)
        print(f"\n== {kind} ({time.monotonic() - started:.0f} s)\n{report.summary()}")
        results["runs"][kind] = report.as_json()
        failed = failed or any(f.check in REPORTED_CHECKS for f in report.failures.values())
    print(f"\nwritten to {write_results('fuzz', results)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
