"""The README opens with the two commands, and .ci/run runs exactly the test command."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("```bash\n"), "README.md must open with the two commands"
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines()]


def test_readme_opens_with_exactly_two_commands():
    cmds = _readme_commands()
    assert len(cmds) == 2
    assert "gridmap run" in cmds[0] and "out/" in cmds[0]
    assert "pytest" in cmds[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    body = [line.strip() for line in ci if line.strip() and not line.lstrip().startswith("#")]
    assert body[-1] == _readme_commands()[1]
