"""The Dockerfile and compose.yaml agree with each other and with the application's settings.

No Docker engine runs here, so these read the files the way Docker would and check what a
mistake would silently break: a volume mounted where the app does not write (data lost on
the next `docker compose up`), a port published that nobody listens on, a root user, a
health check that cannot succeed.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from pitchcraft.cli import app as cli_app
from pitchcraft.core.persistence import COMPOSE_VOLUMES
from pitchcraft.settings import Settings

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
DOCKERIGNORE = REPO / ".dockerignore"
README = REPO / "README.md"
REQUIRED_VOLUMES = {"backend_db", "backend_storage", "qdrant_storage"}
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what a container must listen on


# --- Dockerfile ----------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str | None:
        found = self.all(keyword)
        return found[-1] if found else None


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) with line continuations joined and comment lines dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            # Docker drops comment lines even in the middle of a continued instruction.
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends in a line continuation"
    return instructions


def dockerfile_stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for keyword, args in dockerfile_instructions(text):
        if keyword == "FROM":
            parts = [p for p in args.split() if not p.startswith("--")]
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=parts[0], name=name))
        elif keyword != "ARG" or stages:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, args))
    return stages


_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def parse_env(args: str, known: dict[str, str]) -> dict[str, str]:
    """One ENV instruction: `K=V K2="V 2"` or the legacy `K V`; $VAR refers to earlier ENV."""

    def expand(value: str) -> str:
        return _VAR.sub(lambda m: known.get(m[1] or m[2], m[0]), value)

    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:
        key, _, value = args.partition(" ")
        return {key: expand(value.strip())}
    values = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        assert sep, f"ENV token {token!r} is not KEY=VALUE"
        values[key] = expand(value)
    return values


def exec_form(args: str, what: str) -> list[str]:
    """CMD/HEALTHCHECK CMD must be the JSON exec form: no shell, signals reach the process."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"{what} is not in JSON exec form: {args}")
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile_stages(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def image_env(final: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in final.all("ENV"):
        env.update(parse_env(args, env))
    return env


@pytest.fixture(scope="module")
def cmd(final: Stage) -> list[str]:
    args = final.last("CMD")
    assert args is not None, "the image has no CMD"
    return exec_form(args, "CMD")


def option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


@pytest.fixture(scope="module")
def cmd_port(cmd: list[str]) -> int:
    port = option(cmd, "--port")
    assert port is not None, f"CMD does not set --port: {cmd}"
    return int(port)


# --- compose.yaml --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def backend(compose: dict[str, Any]) -> dict[str, Any]:
    service = compose["services"]["backend"]
    assert isinstance(service, dict)
    return service


@dataclass(frozen=True)
class VolumeMount:
    source: str
    target: str
    named: bool


def volume_mounts(service: dict[str, Any]) -> list[VolumeMount]:
    mounts = []
    for entry in service.get("volumes", []):
        if isinstance(entry, str):
            parts = entry.split(":")
            assert len(parts) in (2, 3), f"unexpected volume entry {entry!r}"
            source, target = parts[0], parts[1]
            named = not source.startswith(("/", ".", "~", "$"))
        else:
            source, target = entry.get("source", ""), entry["target"]
            named = entry.get("type", "volume") == "volume" and bool(source)
        mounts.append(VolumeMount(source, target, named))
    return mounts


def container_ports(service: dict[str, Any]) -> list[int]:
    """The container side of each published port (short or long syntax)."""
    ports = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.append(int(entry["target"]))
            continue
        spec = str(entry).split("/", 1)[0]
        ports.append(int(spec.rsplit(":", 1)[-1]))
    return ports


_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


def interpolate(value: str, host: dict[str, str]) -> str:
    """Compose's variable interpolation, enough of it for the forms compose files use."""

    def replace(m: re.Match[str]) -> str:
        if m[0] == "$$":
            return "$"
        name = m[1] or m[4]
        op, arg = m[2], m[3]
        current = host.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return current if current is not None else arg
        if op in (":?", "?"):
            if not current if op == ":?" else current is None:
                pytest.fail(f"compose requires {name} to be set: {arg}")
            return current or ""
        return current or ""

    return _INTERPOLATION.sub(replace, value)


def compose_environment(service: dict[str, Any], host: dict[str, str]) -> dict[str, str]:
    """What the container's environment gets from compose, for a given host environment."""
    raw = service.get("environment", {})
    items: list[tuple[str, str | None]] = []
    if isinstance(raw, list):
        for entry in raw:
            name, sep, text = str(entry).partition("=")
            items.append((name, text if sep else None))
    else:
        items = [(k, None if v is None else str(v)) for k, v in raw.items()]
    env: dict[str, str] = {}
    for key, value in items:
        if value is None:
            # A bare name passes the host's value through, and is unset when it has none.
            if key in host:
                env[key] = host[key]
        else:
            env[key] = interpolate(value, host)
    return env


# --- the image --------------------------------------------------------------------------


def test_every_stage_is_python_311_slim(stages: list[Stage]) -> None:
    names = {s.name for s in stages if s.name}
    for stage in stages:
        assert stage.base == "python:3.11-slim" or stage.base in names, stage.base


def test_image_sets_the_data_paths_and_runtime_env(image_env: dict[str, str]) -> None:
    assert image_env.get("DB_PATH") == "/app/db"
    assert image_env.get("STORAGE_PATH") == "/app/storage"
    assert image_env.get("QDRANT_PATH") == "/app/qdrant"
    assert image_env.get("HF_HUB_OFFLINE") == "1"
    assert image_env.get("PYTHONUNBUFFERED") == "1"
    # Nothing baked into the image may switch the persistence guard off.
    assert image_env.get("ALLOW_EPHEMERAL_DATA", "false").lower() in {"false", "0", "no"}
    assert image_env.get("CONTAINER_MODE", "auto") != "no"


def test_image_installs_the_project_from_source(stages: list[Stage]) -> None:
    runs = [args for stage in stages for args in stage.all("RUN")]
    # `pip install .` or `pip install '.[extras]'`
    install = r"pip install (--\S+ )*(\.|[\"']\.\[[\w,]+\][\"'])(\s|$)"
    project = [i for i, r in enumerate(runs) if re.search(install, r)]
    assert project, runs
    # The embedding model runs on ONNX Runtime: nothing installs torch (gigabytes of CUDA).
    assert not [r for r in runs if "torch" in r], runs
    copied = " ".join(args for stage in stages for args in stage.all("COPY"))
    for needed in ("pyproject.toml", "README.md", "src"):
        assert needed in copied, f"{needed} is needed by `pip install .` but never copied"


def user_of(final: Stage) -> str:
    user = final.last("USER")
    assert user is not None, "the image runs as root: no USER instruction"
    return user.split(":", 1)[0]


def test_runs_as_a_non_root_user(final: Stage) -> None:
    user = user_of(final)
    assert user not in {"root", "0", ""}
    if not user.isdigit():
        created = " ".join(final.all("RUN"))
        assert re.search(rf"useradd\b[^&;]*\s{re.escape(user)}(\s|$)", created), (
            f"USER {user} is never created in the final stage"
        )


def shell_commands(final: Stage) -> list[list[str]]:
    commands = []
    for run in final.all("RUN"):
        for part in re.split(r"&&|;|\|\|", run):
            words = shlex.split(part)
            if words:
                commands.append(words)
    return commands


def test_data_directories_are_created_and_owned_by_the_runtime_user(
    final: Stage, image_env: dict[str, str]
) -> None:
    user = user_of(final)
    commands = shell_commands(final)
    made = {Path(w) for c in commands if c[0] == "mkdir" for w in c[1:] if not w.startswith("-")}
    owned: list[tuple[Path, bool]] = []
    for c in commands:
        if c[0] != "chown":
            continue
        args = [w for w in c[1:] if not w.startswith("-")]
        recursive = any(w in {"-R", "--recursive"} for w in c[1:])
        assert args[0].split(":", 1)[0] == user, f"chown to {args[0]}, but USER is {user}"
        owned += [(Path(p), recursive) for p in args[1:]]
    for setting in ("DB_PATH", "STORAGE_PATH", "QDRANT_PATH"):
        path = Path(image_env[setting])
        assert path in made, f"{setting}={path} is not created in the image"
        assert any(path == p or (rec and path.is_relative_to(p)) for p, rec in owned), (
            f"{setting}={path} is not chowned to {user}: a fresh volume would be root's"
        )


def test_cmd_serves_on_all_interfaces(cmd: list[str], final: Stage) -> None:
    assert cmd[:2] == ["pitchcraft", "serve"], cmd
    assert option(cmd, "--host") == ALL_INTERFACES
    # The arguments are ones `pitchcraft serve` really accepts.
    command = typer.main.get_command(cli_app)
    assert isinstance(command, typer.core.TyperGroup)
    ctx = command.commands["serve"].make_context("serve", list(cmd[2:]))
    assert ctx.params["host"] == ALL_INTERFACES
    assert [p.split("/")[0] for p in final.all("EXPOSE")] == [str(ctx.params["port"])]


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/health" else 404
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_healthcheck_hits_health_with_python(
    final: Stage, cmd_port: int, health_server: HTTPServer
) -> None:
    args = final.last("HEALTHCHECK")
    assert args is not None, "the image has no HEALTHCHECK"
    assert args.upper() != "NONE"
    _, sep, check = args.partition("CMD ")
    assert sep, f"HEALTHCHECK without CMD: {args}"
    argv = exec_form(check.strip(), "HEALTHCHECK CMD")
    assert argv[0] in {"python", "python3"}, "the slim image has no curl or wget"
    url = f"http://127.0.0.1:{cmd_port}/health"
    script = argv[-1]
    assert url in script, f"the health check does not ask {url}"

    # Run the check itself against a stand-in server: 200 passes, 503 fails.
    port = health_server.server_address[1]
    local = [sys.executable, *argv[1:-1], script.replace(url, f"http://127.0.0.1:{port}/health")]
    _Health.status = 200
    assert subprocess.run(local, capture_output=True, timeout=30).returncode == 0
    _Health.status = 503
    try:
        assert subprocess.run(local, capture_output=True, timeout=30).returncode != 0
    finally:
        _Health.status = 200


def test_dockerignore_keeps_the_build_inputs_and_drops_local_state() -> None:
    patterns = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatch(name, p.removeprefix("**/")) for p in patterns)

    for needed in ("pyproject.toml", "README.md", "src"):
        assert not ignored(needed), f".dockerignore drops {needed}, which the build copies"
    for local in (".venv", "data", ".git", ".env", ".pytest_cache", ".mypy_cache"):
        assert ignored(local), f".dockerignore lets {local} into the build context"


# --- compose -------------------------------------------------------------------------------


def test_volume_targets_are_where_the_image_keeps_its_data(
    backend: dict[str, Any], image_env: dict[str, str]
) -> None:
    settings = Settings(
        _env_file=None,
        db_path=image_env["DB_PATH"],
        storage_path=image_env["STORAGE_PATH"],
        qdrant_path=image_env["QDRANT_PATH"],
    )
    paths = settings.data_paths()
    assert set(paths) == {"DB_PATH", "STORAGE_PATH", "QDRANT_PATH"}
    by_target = {Path(m.target): m for m in volume_mounts(backend)}
    for setting, path in paths.items():
        mount = by_target.get(path)
        assert mount is not None, (
            f"{setting}={path} has no volume: its data dies with the container"
        )
        assert mount.named, f"{setting}={path} is a bind mount, not a named volume"
        # The guard's error message tells operators this very volume name.
        assert mount.source == COMPOSE_VOLUMES[setting]
    stray = set(by_target) - set(paths.values())
    assert not stray, f"volumes mounted where the app writes nothing: {stray}"


def test_backend_uses_exactly_the_three_named_volumes(backend: dict[str, Any]) -> None:
    mounts = volume_mounts(backend)
    assert sorted(m.source for m in mounts) == sorted(REQUIRED_VOLUMES)
    assert all(m.named for m in mounts)


def test_every_named_volume_is_declared(compose: dict[str, Any]) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    assert declared >= REQUIRED_VOLUMES
    for name, service in compose["services"].items():
        for m in volume_mounts(service):
            if m.named:
                assert m.source in declared, f"{name} uses volume {m.source}, never declared"


def test_compose_environment_keeps_the_image_paths_and_the_guard(
    backend: dict[str, Any], image_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing set on the host, the container's settings are valid and guarded."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    container_env = {**image_env, **compose_environment(backend, host={})}
    for key, value in container_env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    assert not settings.allow_ephemeral_data
    assert settings.container_mode != "no"
    assert settings.jwt_secret is None, "an unset JWT_SECRET must stay unset, not become ''"
    targets = {Path(m.target) for m in volume_mounts(backend)}
    assert set(settings.data_paths().values()) == targets


def test_compose_passes_jwt_secret_through(backend: dict[str, Any]) -> None:
    secret = "s" * 40
    assert compose_environment(backend, host={"JWT_SECRET": secret}).get("JWT_SECRET") == secret


def test_published_port_matches_the_cmd_port(backend: dict[str, Any], cmd_port: int) -> None:
    ports = container_ports(backend)
    assert ports, "the backend publishes no port"
    assert all(p == cmd_port for p in ports), (
        f"published {ports}, but the app listens on {cmd_port}"
    )


def test_backend_is_built_here_and_restarts(backend: dict[str, Any]) -> None:
    build = backend.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    assert context in {".", "./"}
    if isinstance(build, dict):
        assert (REPO / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    assert backend.get("restart") == "unless-stopped"


def test_readme_backup_commands_name_the_real_volumes(compose: dict[str, Any]) -> None:
    """Compose prefixes volume names with the project name; the README's commands use them."""
    project = compose.get("name")
    assert project, "without a fixed `name:` the volume names depend on the folder's name"
    declared = set(compose["volumes"])
    used = re.findall(r"-v (\S+?):/", README.read_text())
    named = [v for v in used if not v.startswith(("$", "/", ".", '"'))]
    assert named, "the README shows no command that mounts the volumes"
    for volume in named:
        assert volume.removeprefix(f"{project}_") in declared, f"README mounts {volume}"
        assert volume.startswith(f"{project}_"), f"README mounts {volume}"


# --- compose.scale.yaml: PostgreSQL, a Qdrant server, API and worker replicas ---------------

SCALE = REPO / "compose.scale.yaml"
CADDYFILE = REPO / "deploy" / "Caddyfile"
APP_IMAGE = "pitchcraft:latest"
# What an operator must set on the host (compose refuses to start without it).
SCALE_HOST = {"POSTGRES_PASSWORD": "pg-pass-0123"}
SETTING_NAMES = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="module")
def scale() -> dict[str, Any]:
    data = yaml.safe_load(SCALE.read_text())
    assert isinstance(data, dict)
    return data


def app_services(compose_file: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the Pitchcraft image."""
    return {
        name: service
        for name, service in compose_file["services"].items()
        if service.get("image") == APP_IMAGE or "build" in service
    }


def settings_of(
    service: dict[str, Any],
    image_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    host: dict[str, str] = SCALE_HOST,
) -> Settings:
    """The Settings a container of this service starts with (image ENV, then compose's)."""
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    for key, value in {**image_env, **compose_environment(service, host)}.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)


def healthcheck_of(service: dict[str, Any]) -> dict[str, Any] | None:
    """The service's own healthcheck, {} when it inherits the image's, None when disabled."""
    check = service.get("healthcheck")
    if check is None:
        return {}
    if check.get("disable") or check.get("test") in (["NONE"], "NONE"):
        return None
    assert isinstance(check, dict)
    return check


def parse_command(name: str, argv: list[str]) -> dict[str, Any]:
    """The parameters `pitchcraft <name>` gets from argv (fails on an unknown option)."""
    assert argv[:2] == ["pitchcraft", name], argv
    command = typer.main.get_command(cli_app)
    assert isinstance(command, typer.core.TyperGroup)
    return dict(command.commands[name].make_context(name, list(argv[2:])).params)


def test_environment_names_are_real_settings(
    compose: dict[str, Any], scale: dict[str, Any]
) -> None:
    """Settings ignores unknown variables, so a misspelt name would silently do nothing."""
    for compose_file in (compose, scale):
        for name, service in app_services(compose_file).items():
            unknown = set(compose_environment(service, {**SCALE_HOST})) - SETTING_NAMES
            raw = service.get("environment", {})
            names = {str(e).partition("=")[0] for e in raw} if isinstance(raw, list) else set(raw)
            unknown |= names - SETTING_NAMES
            assert not unknown, f"{name} sets {sorted(unknown)}, which are not settings"


def test_scale_builds_the_same_image_under_the_same_project(
    compose: dict[str, Any], scale: dict[str, Any]
) -> None:
    # The same project name: backend_storage is the single-machine install's volume.
    assert scale.get("name") == compose.get("name")
    apps = app_services(scale)
    assert {"api", "worker", "migrate", "migrate-vectors"} <= set(apps)
    for name, service in apps.items():
        assert service.get("image") == APP_IMAGE, name
        build = service.get("build")
        context = build if isinstance(build, str) else (build or {}).get("context")
        assert context in {".", "./"}, name
        if isinstance(build, dict):
            assert (REPO / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def test_scale_volumes_are_declared_used_and_kept_apart(
    compose: dict[str, Any], scale: dict[str, Any]
) -> None:
    declared = set(scale.get("volumes") or {})
    used: set[str] = set()
    for name, service in scale["services"].items():
        for m in volume_mounts(service):
            if m.named:
                assert m.source in declared, f"{name} uses volume {m.source}, never declared"
                used.add(m.source)
            else:
                assert (REPO / m.source).resolve().exists(), f"{name} mounts {m.source}: missing"
    assert declared == used, f"declared but never mounted: {declared - used}"
    # The Qdrant server's files and the embedded shards are different formats: the server
    # never gets the single-machine index's volume.
    qdrant_volumes = {m.source for m in volume_mounts(scale["services"]["qdrant"])}
    assert COMPOSE_VOLUMES["QDRANT_PATH"] not in qdrant_volumes
    assert COMPOSE_VOLUMES["STORAGE_PATH"] in declared


def test_api_and_worker_share_the_storage_volume_at_storage_path(
    scale: dict[str, Any], image_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads are written by an api replica and read by whichever worker takes the job."""
    seen = {}
    for name in ("api", "worker"):
        service = scale["services"][name]
        storage = settings_of(service, image_env, monkeypatch).storage_dir
        by_target = {Path(m.target): m for m in volume_mounts(service)}
        mount = by_target.get(storage)
        assert mount is not None, f"{name}: STORAGE_PATH={storage} is not a volume"
        assert mount.named and mount.source == COMPOSE_VOLUMES["STORAGE_PATH"], name
        seen[name] = (mount.source, storage)
    assert seen["api"] == seen["worker"]


def test_api_and_worker_use_postgresql_and_the_qdrant_server(
    scale: dict[str, Any], image_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.engine import make_url

    services = scale["services"]
    pg_env = compose_environment(services["postgres"], SCALE_HOST)
    for name in ("api", "worker", "migrate"):
        settings = settings_of(services[name], image_env, monkeypatch)
        assert settings.database_url, f"{name} has no DATABASE_URL"
        url = make_url(settings.database_url)
        assert url.drivername == "postgresql+psycopg"
        assert (url.host, url.port or 5432) == ("postgres", 5432)
        assert url.username == pg_env["POSTGRES_USER"]
        assert url.password == pg_env["POSTGRES_PASSWORD"] == SCALE_HOST["POSTGRES_PASSWORD"]
        assert url.database == pg_env["POSTGRES_DB"]
        assert settings.qdrant_url == "http://qdrant:6333", name
    api = settings_of(services["api"], image_env, monkeypatch)
    assert api.worker_in_process is False, "the api replicas must leave jobs to the workers"
    assert api.rate_limit_storage_url.startswith("redis://redis:"), "one count for all replicas"
    for name in ("api", "worker"):
        # Only the migrate service changes the schema.
        assert settings_of(services[name], image_env, monkeypatch).auto_migrate is False


def test_no_running_service_uses_the_embedded_index(
    scale: dict[str, Any], image_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qdrant Edge shards can be opened by one process only: replicas must use the server."""
    for name, service in app_services(scale).items():
        settings = settings_of(service, image_env, monkeypatch)
        assert settings.qdrant_url, f"{name} would open the embedded index"
        targets = {Path(m.target) for m in volume_mounts(service)}
        sources = {m.source for m in volume_mounts(service)}
        if service.get("profiles"):
            continue  # a one-off tool, checked below
        assert settings.qdrant_dir not in targets, name
        assert COMPOSE_VOLUMES["QDRANT_PATH"] not in sources, name
    # The one service that reads the old shards copies them into the server, on demand.
    tool = scale["services"]["migrate-vectors"]
    assert tool.get("profiles"), "migrate-vectors must not start with `up`"
    assert tool.get("restart") == "no"
    assert parse_command("migrate-vectors", tool["command"]) is not None
    settings = settings_of(tool, image_env, monkeypatch)
    mounts = {Path(m.target): m.source for m in volume_mounts(tool)}
    assert mounts == {settings.qdrant_dir: COMPOSE_VOLUMES["QDRANT_PATH"]}


def test_scale_start_order(scale: dict[str, Any]) -> None:
    services = scale["services"]
    expected = {
        "migrate": {"postgres": "service_healthy"},
        "api": {
            "migrate": "service_completed_successfully",
            "postgres": "service_healthy",
            "qdrant": "service_healthy",
            "redis": "service_healthy",
        },
        "worker": {
            "migrate": "service_completed_successfully",
            "postgres": "service_healthy",
            "qdrant": "service_healthy",
        },
        "proxy": {"api": "service_healthy"},
        "migrate-vectors": {"qdrant": "service_healthy"},
    }
    for name, needs in expected.items():
        depends = services[name].get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        assert {k: v["condition"] for k, v in depends.items()} == needs, name
    for service in services.values():
        for target, spec in (service.get("depends_on") or {}).items():
            if spec["condition"] == "service_healthy":
                assert healthcheck_of(services[target]) is not None, f"{target} has no check"
            if spec["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not one-shot"


def test_scale_health_checks(scale: dict[str, Any], final: Stage, cmd_port: int) -> None:
    services = scale["services"]
    for name in ("postgres", "qdrant", "redis", "proxy"):
        check = healthcheck_of(services[name])
        assert check and check.get("test"), f"{name} has no health check"
    # api: the image's check (it asks :cmd_port/health) applies, and api serves there.
    assert healthcheck_of(services["api"]) == {}
    assert final.last("HEALTHCHECK") is not None
    assert parse_command("serve", services["api"]["command"])["port"] == cmd_port
    # The others run no HTTP server: inheriting the image's check would mark them unhealthy.
    for name in ("worker", "migrate", "migrate-vectors"):
        assert healthcheck_of(services[name]) is None, f"{name} inherits the HTTP check"


def test_scale_commands_replicas_and_ports(scale: dict[str, Any]) -> None:
    services = scale["services"]
    serve = parse_command("serve", services["api"]["command"])
    assert serve["host"] == ALL_INTERFACES
    assert serve["forwarded_allow_ips"], "behind the proxy, client addresses come forwarded"
    parse_command("worker", services["worker"]["command"])
    parse_command("migrate", services["migrate"]["command"])
    for name in ("api", "worker"):
        assert int(services[name]["deploy"]["replicas"]) >= 2, name
        assert "container_name" not in services[name], f"{name}: replicas need generated names"
    # Replicas cannot all publish one host port: only the proxy is reachable from outside.
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"proxy"}
    assert 80 in container_ports(services["proxy"])


def test_caddy_balances_over_every_api_replica(scale: dict[str, Any]) -> None:
    proxy = scale["services"]["proxy"]
    mounts = {m.target: m.source for m in volume_mounts(proxy)}
    assert (REPO / mounts["/etc/caddy/Caddyfile"]).resolve() == CADDYFILE
    text = "\n".join(
        line.split("#", 1)[0] for line in CADDYFILE.read_text().splitlines()
    )  # without comments
    dynamic = re.search(r"dynamic a \{([^}]*)\}", text)
    assert dynamic, "the proxy does not look the api replicas up"
    options = dict(line.split(None, 1) for line in dynamic[1].strip().splitlines())
    port = parse_command("serve", scale["services"]["api"]["command"])["port"]
    assert options["name"].strip() == "api" and "api" in scale["services"]
    assert int(options["port"]) == port
    # The proxy's health check asks the site the Caddyfile answers it on.
    health = re.search(r":(\d+) \{\s*respond (/\S+) \"ok\" 200", text)
    assert health, "no health endpoint in the Caddyfile"
    check = healthcheck_of(proxy)
    assert check is not None
    assert f"http://127.0.0.1:{health[1]}{health[2]}" in check["test"]


class _Ready(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()
        self.wfile.write(b"all shards are ready")

    def log_message(self, *args: object) -> None:
        pass


def test_qdrant_health_check_asks_readyz(scale: dict[str, Any]) -> None:
    """Run the check's own script (bash, no curl) against a stand-in: 200 passes, 503 fails."""
    check = healthcheck_of(scale["services"]["qdrant"])
    assert check is not None
    argv = check["test"]
    assert argv[:3] == ["CMD", "bash", "-c"]
    script = argv[3]
    assert "/dev/tcp/127.0.0.1/6333" in script and "/readyz" in script
    server = HTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    local = script.replace("/6333", f"/{server.server_address[1]}")
    try:
        for status, passes in ((200, True), (503, False)):
            _Ready.status = status
            done = subprocess.run(["bash", "-c", local], capture_output=True, timeout=30)
            assert (done.returncode == 0) == passes, (status, done.stderr)
    finally:
        _Ready.status = 200
        server.shutdown()
        server.server_close()


def test_qdrant_server_version_suits_the_client(scale: dict[str, Any]) -> None:
    """qdrant-client works with servers within one minor version of its own."""
    from importlib.metadata import version

    tag = scale["services"]["qdrant"]["image"].rsplit(":", 1)[1]
    server = re.fullmatch(r"v(\d+)\.(\d+)\.\d+", tag)
    assert server, f"pin the Qdrant server to a release, not {tag!r}"
    client = version("qdrant-client").split(".")
    assert int(server[1]) == int(client[0])
    assert abs(int(server[2]) - int(client[1])) <= 1, (tag, version("qdrant-client"))


def test_replicas_share_one_jwt_secret(
    scale: dict[str, Any], image_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set on the host, every replica gets it; unset, none has one of its own: the first to
    start would generate one into its own JWT_SECRET_FILE, so the scale file passes the host's."""
    services = scale["services"]
    secret = "Kq7vX2pLm9RtW4zYb8NcD3fHj6GsA1eU"
    for name in ("api", "worker"):
        host = {**SCALE_HOST, "JWT_SECRET": secret}
        assert settings_of(services[name], image_env, monkeypatch, host).jwt_secret == secret
        assert settings_of(services[name], image_env, monkeypatch).jwt_secret is None


def test_every_path_the_guard_checks_is_a_volume(
    scale: dict[str, Any], image_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("api", "worker", "migrate"):
        service = scale["services"][name]
        paths = settings_of(service, image_env, monkeypatch).data_paths()
        targets = {Path(m.target) for m in volume_mounts(service) if m.named}
        for setting, path in paths.items():
            assert path in targets, f"{name}: {setting}={path} is not a volume"


def test_the_image_has_the_redis_client_the_scale_file_needs(
    scale: dict[str, Any], stages: list[Stage]
) -> None:
    uses_redis = any(
        str(s.get("environment", {}).get("RATE_LIMIT_STORAGE_URL", "")).startswith("redis")
        for s in app_services(scale).values()
    )
    assert uses_redis
    runs = " ".join(args for stage in stages for args in stage.all("RUN"))
    assert re.search(r"pip install (--\S+ )*[\"']?\.\[[^\]]*\bredis\b", runs), runs
