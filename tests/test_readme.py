"""The README's configuration table documents every setting, and only real ones; its smoke
test works when pasted."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from pitchcraft.settings import Settings
from tests.conftest import REPO, ServerProcess


def test_every_setting_is_in_the_configuration_table() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - documented == set(), "settings missing from the README"
    assert documented - settings == set(), "README documents settings that do not exist"


def smoke_test_block() -> str:
    """The shell block after `<!-- smoke-test -->` in the README."""
    readme = (REPO / "README.md").read_text()
    after = readme.split("<!-- smoke-test -->", 1)[1]
    match = re.match(r"\s*```sh\n(.*?)\n```", after, flags=re.DOTALL)
    assert match, "the smoke test's code block must follow its marker"
    return match.group(1)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_smoke_test_works_when_pasted(
    server_env: dict[str, str],
    start_server: Callable[[dict[str, str]], ServerProcess],
    tmp_path: Path,
) -> None:
    """The README's smoke test, run as it stands by bash against a started server."""
    env = {**server_env}
    env.pop("LLM_BASE_URL", None)
    server = start_server(env)
    script = smoke_test_block()
    assert "TOKEN=$(" in script  # the token comes from the sign-in answer, not from thin air
    done = subprocess.run(
        ["bash", "-c", "set -eu -o pipefail\n" + script],
        env={**os.environ, "BASE": server.url},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=500,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.strip().splitlines()
    assert '"email":"test@example.com"' in lines[1], lines  # /auth/me with the token
    assert "succeeded" in lines, lines
    verdicts = [line.split(" - ", 1)[0] for line in lines if " - " in line]
    assert len(verdicts) == 6 and "supported" in verdicts, lines
