"""The built wheel works on its own: installed (not editable) into a fresh venv, `netreconcile`
validates a spec from a directory outside the checkout, so everything it reads (the JSON
Schema included) ships inside the package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_the_installed_wheel_validates_a_spec_from_another_directory(tmp_path):
    wheels, venv, elsewhere = tmp_path / "wheels", tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    built = run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                 "--disable-pip-version-check", "-w", str(wheels), str(REPO)], cwd=elsewhere)
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("netreconcile-*.whl")
    # the dependencies come from this interpreter (no package index needed); the package from the wheel only
    made = run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=elsewhere)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                     "--disable-pip-version-check", str(wheel)], cwd=elsewhere)
    assert installed.returncode == 0, installed.stderr
    where = run([str(python), "-c", "import reconciler; print(reconciler.__file__)"], cwd=elsewhere)
    assert where.stdout.startswith(str(venv)), f"the test ran {where.stdout.strip()}, not the installed wheel"
    spec = elsewhere / "quickstart.yaml"
    spec.write_text((REPO / "specs" / "quickstart.yaml").read_text())
    result = run([str(venv / "bin" / "netreconcile"), "validate", spec.name], cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "quickstart.yaml: valid (1 network(s), 3 container(s))\n"
