"""Why a refine job failed, as a code kept with its result, and the error a client that
waited for the job receives: the status a person expects and the job's own reason."""

from __future__ import annotations

from pitchcraft.core.errors import (
    AppError,
    BadGateway,
    Conflict,
    GatewayTimeout,
    Internal,
    NotFound,
    Unavailable,
)
from pitchcraft.jobs.models import CANCELLED, FAILED, Job
from pitchcraft.llm.base import LLMError

FAILURE = "failure"  # the key of the code in a failed job's result

MODEL_UNREACHABLE = "model_unreachable"  # no connection to the endpoint
MODEL_TIMEOUT = "model_timeout"  # connected, no answer in LLM_TIMEOUT_S
MODEL_REFUSED = "model_refused"  # the endpoint said no: key, model name, quota, bad request
MODEL_FAILED = "model_failed"  # server errors, rate limits, a broken or empty answer
SEARCH_UNAVAILABLE = "search_unavailable"  # the embedding model or the vector index failed

_ERRORS: dict[str, type[AppError]] = {
    MODEL_UNREACHABLE: BadGateway,
    MODEL_TIMEOUT: GatewayTimeout,
    MODEL_REFUSED: BadGateway,
    MODEL_FAILED: BadGateway,
    SEARCH_UNAVAILABLE: Unavailable,
}


def model_failure(exc: LLMError) -> str:
    if exc.kind == "connection":
        return MODEL_UNREACHABLE
    if exc.kind == "timeout":
        return MODEL_TIMEOUT
    if not exc.transient and exc.status is not None and 400 <= exc.status < 500:
        return MODEL_REFUSED
    return MODEL_FAILED


def failure_code(job: Job) -> str | None:
    """The code of a failed job; None for jobs that did not fail or failed outside the
    runner (a worker that crashed on it, jobs from before codes were kept)."""
    if job.status != FAILED:
        return None
    code = (job.result or {}).get(FAILURE)
    return code if isinstance(code, str) else None


def job_error(job: Job) -> AppError:
    """A finished job that did not succeed, as the error to answer with."""
    if job.status == CANCELLED:
        return Conflict("The job was cancelled before it finished.", code="job_cancelled")
    reason = job.error or "the job failed"
    code = failure_code(job)
    if code is None:
        return Internal(reason, code="job_failed")
    return _ERRORS.get(code, Internal)(reason, code=code)


def missing_job() -> NotFound:
    return NotFound("No such job (it was deleted while it ran).", code="job_not_found")
