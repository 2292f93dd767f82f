"""The documentation's code, run: every ```python block of the README executes, and every
``ditbench …`` command line in the README and docs/ parses with the real CLI parser (perfplot's tox
runs its README the same way). A synopsis line (``[--flag A|B]``) is expanded into one invocation
per flag and per listed choice, so a renamed flag or a dropped choice fails here."""
from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from ditbench.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def fenced(path: Path, language: str) -> list[tuple[int, str]]:
    """(line number, body) of every fenced block in ``language``."""
    text = path.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(2)) for m in FENCE.finditer(text) if m.group(1) == language]


def command_lines(path: Path) -> list[tuple[str, str]]:
    """(where, command) for each ``ditbench`` command: lines of bash or plain blocks (a line that starts with
    spaces and '[' continues a synopsis) and inline code spans. ``tox -e run -- ARGS`` is the
    ``ditbench run ARGS`` it runs (tox.ini), ``python -m ditbench`` is ``ditbench``."""
    found: list[tuple[str, str]] = []
    for start, body in fenced(path, "bash") + fenced(path, ""):
        block: list[tuple[str, str]] = []
        for i, line in enumerate(body.splitlines()):
            if block and re.match(r"\s+\[", line):  # a synopsis continued on the next line
                block[-1] = (block[-1][0], f"{block[-1][1]} {line.strip()}")
            else:
                block.append((f"{path.name}:{start + i + 1}", line))
        found += block
    text = FENCE.sub("", path.read_text())
    inline = re.findall(r"`((?:python -m )?ditbench [^`]+|tox -e run -- [^`]+)`", text)
    found += [(f"{path.name} (inline)", m) for m in inline]
    out = []
    for where, line in found:
        line = re.sub(r"^\s*(?:OMP_\w+=\S+\s+)*", "", line)
        line = re.sub(r"^python3? -m ditbench\b", "ditbench", line)
        line = re.sub(r"^tox -e run --", "ditbench run", line)
        for part in re.split(r"&&|;", line):
            part = part.strip()
            if part.startswith("ditbench ") and not ("inline" in where and len(part.split()) <= 2):
                out.append((where, part))  # (an inline `ditbench fit` names the command: nothing to parse)
    return out


def _words(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    for i, w in enumerate(words):
        if w in {">", "|", ">>", "2>"}:
            return words[:i]
    return words


PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*(\.\.\.)?$")


def _sample(action: argparse.Action) -> str:
    if action.choices:
        return str(next(iter(action.choices)))
    return {int: "1", float: "0.5"}.get(action.type, "x")  # type: ignore[arg-type]


def invocations(command: str) -> list[list[str]]:
    """Concrete argument lists for one documented command: itself when it is concrete; for a
    synopsis, the required part plus each optional flag (and each of its listed choices) in turn."""
    groups = re.findall(r"\[([^\[\]]*)\]", command)
    required = re.sub(r"\[[^\[\]]*\]", " ", command)
    words = [("x" if PLACEHOLDER.match(w) else w) for w in _words(required)][1:]  # drop "ditbench"
    if not groups:
        return [words]
    parser = _subparser(words)
    runs = []
    for group in groups:
        for alternative in re.split(r"\s\|\s", group):
            flag, *value = alternative.split()
            assert flag.startswith("--"), f"{command!r}: cannot read option {alternative!r}"
            action = parser._option_string_actions.get(flag)
            assert action is not None, f"{command!r}: {flag} is not an option of `ditbench {words[0]}`"
            if not value:
                runs.append(words + [flag])
            elif PLACEHOLDER.match(value[0]):
                runs.append(words + [flag, _sample(action)])
            else:
                runs += [words + [flag, choice] for choice in value[0].split("|")]
    return runs


def _subparser(words: list[str]) -> argparse.ArgumentParser:
    parser = build_parser(words)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[words[0]]


def _parse(words: list[str]) -> argparse.Namespace:
    try:
        return build_parser(words).parse_args(words)
    except SystemExit as err:  # argparse reports on stderr and exits 2
        raise AssertionError(f"`ditbench {' '.join(words)}` does not parse (exit {err.code})") from None


def _all_commands() -> list[tuple[str, str]]:
    return [c for path in DOCS for c in command_lines(path)]


COMMANDS = _all_commands()


def test_the_docs_show_commands_of_every_subcommand():
    shown = {cmd.split()[1] for _, cmd in COMMANDS}
    assert shown >= {"run", "fit", "report", "criteria"}, shown


@pytest.mark.parametrize("where, command", COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_parses_with_the_real_parser(where, command):
    for words in invocations(command):
        _parse(words)


def test_synopsis_expansion_catches_a_wrong_flag_and_a_wrong_choice():
    with pytest.raises(AssertionError, match="--no-such-flag is not an option"):
        invocations("ditbench run [--no-such-flag]")
    with pytest.raises(AssertionError, match="does not parse"):
        for words in invocations("ditbench run [--preset smoke|no-such-preset]"):
            _parse(words)


@pytest.mark.parametrize("line, block", fenced(README, "python"),
                         ids=lambda x: f"README.md:{x}" if isinstance(x, int) else None)
def test_readme_python_block_runs(line, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a block that writes files writes them here
    exec(compile(block, f"README.md:{line}", "exec"), {"__name__": "__readme__"})
