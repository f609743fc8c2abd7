# syntax=docker/dockerfile:1
#
# Pitchcraft: one container, embedded SQLite + file storage + vector index.
# Everything worth keeping lives under /app/db, /app/storage and /app/qdrant, which
# compose.yaml mounts as named volumes. At start `pitchcraft serve` refuses to run if any
# of them is on the container's own (throwaway) filesystem.

# --- build: install the project and its dependencies into a virtualenv ------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# No torch: the embedding model runs on ONNX Runtime, so no CUDA wheels are pulled in.
RUN pip install '.[redis]'

# --- runtime -----------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

RUN groupadd --system --gid 10001 pitchcraft \
    && useradd --system --uid 10001 --gid pitchcraft --home-dir /app \
       --no-create-home --shell /usr/sbin/nologin pitchcraft

COPY --from=build /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    DB_PATH=/app/db \
    STORAGE_PATH=/app/storage \
    QDRANT_PATH=/app/qdrant

# The data directories exist in the image, owned by the runtime user, so a named volume
# mounted on them starts out with that owner (Docker copies the ownership on first use).
RUN mkdir -p /app/db /app/storage /app/qdrant \
    && chown -R pitchcraft:pitchcraft /app

WORKDIR /app
USER pitchcraft

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4); sys.exit(0 if r.status == 200 else 1)"]

CMD ["pitchcraft", "serve", "--host", "0.0.0.0", "--port", "8000"]
