"""Schemathesis against the app's own OpenAPI schema: every operation with valid and invalid
input, then stateful sequences along the links schemathesis infers (upload → documents/{id},
process → results/{job_id} → rerun, …), in-process on a temporary SQLite data location, as a
registered user. Bounded and derandomized, so CI sees the same cases every run; the longer
run is `python -m bench.fuzz` (same driver)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.fuzz import Failure, Fuzzer, FuzzReport, fuzz_settings
from fastapi.testclient import TestClient

from pitchcraft.web.app import create_app
from tests.conftest import auth, register

pytestmark = pytest.mark.timeout(900)

EXAMPLES = 8  # per operation and generation mode (valid, invalid)
SCENARIOS = 6  # stateful scenarios, up to STEPS calls each
STEPS = 5


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> FuzzReport:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    app = create_app(fuzz_settings(Path(data)))
    with TestClient(app) as client:
        token = register(client, "fuzz@example.com", "fuzz-pass")
        fuzzer = Fuzzer(app, token=token)
        fuzzer.run_operations(EXAMPLES)
        fuzzer.run_stateful(SCENARIOS, steps=STEPS)
        # The server is still well, and so is the fuzzing user's account.
        assert client.get("/health").status_code == 200
        assert client.get("/api/v1/auth/me", headers=auth(token)).status_code == 200
        return fuzzer.report


def describe(failures: list[Failure]) -> str:
    return "\n".join(
        f"{f.operation} → {f.status} (x{f.count}): {f.title}\n    {f.example}" for f in failures
    )


@pytest.mark.parametrize(
    "check",
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ],
)
def test_check_holds(report: FuzzReport, check: str) -> None:
    failures = [f for f in report.failures.values() if f.check == check]
    assert not failures, f"{check} failed:\n{describe(failures)}\n\n{report.summary()}"


def test_every_operation_was_reached(report: FuzzReport) -> None:
    assert len(report.operations) >= 19
    assert report.operations - set(report.by_operation) == set()
    # Positive and negative cases both landed: successes and refusals.
    assert any(200 <= s < 300 for s in report.by_status)
    assert {401, 404, 422} <= set(report.by_status)


def test_stateful_links_were_followed(report: FuzzReport) -> None:
    """A document or job id only comes from an earlier answer: a 200 for a path with one
    means the state machine followed a link. (Which links a bounded run takes depends on
    the answers it gets; the links themselves are checked on the schema below.)"""
    followed = {label for (label, status), n in report.by_outcome.items() if status == 200}
    assert {label for label in followed if "{document_id}" in label or "{job_id}" in label}, (
        report.summary()
    )


def test_the_schema_links_a_job_to_its_result(tmp_path: Path) -> None:
    """Which transitions a bounded stateful run happens to take depends on the answers it
    gets (timing included); the links themselves are the schema's and must be there."""
    fuzzer = Fuzzer(create_app(fuzz_settings(tmp_path / "data")), token="unused")
    rules = set(dir(fuzzer.schema.as_state_machine()))
    for wanted in (
        "POST_api_v1_rag_process___202_GetJobAccepted__GET_api_v1_rag_results_job_id_",
        "POST_api_v1_rag_process___202_GetJobAccepted_0__GET_api_v1_jobs_job_id_",
        "POST_api_v1_rag_process___202_PostJobAccepted__POST_api_v1_jobs_job_id_rerun",
        "POST_api_v1_documents_upload___202_GetDocument__GET_api_v1_documents_document_id_",
    ):
        assert wanted in rules
