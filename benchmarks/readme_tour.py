"""Runs every example in README.md, top to bottom, as someone on a fresh clone would.

    python benchmarks/readme_tour.py                 # every block; prints each block's status and time
    python benchmarks/readme_tour.py --only-cheap    # only the blocks marked cheap (what tests/test_readme.py runs)
    python benchmarks/readme_tour.py --list          # the blocks, their markers and commands; runs nothing

The README's ```bash, ```sh, ```shell and ```console blocks and its ```python blocks are taken in
order and run in a fresh temporary copy of the repository (the files `git ls-files` lists, tracked
or new but not ignored: what a clone of the next commit holds), from its root, with the virtual
environment's `gen` first on PATH:

- a shell block runs as one script under `bash -euo pipefail`; `\\` continues a line. In a block
  with `$ ` prompts only the prompted lines (and their continuations) are commands; the other
  lines are output shown for illustration, not compared;
- a python block runs as one script fed to the environment's `python -`, so the copy's root is on
  `sys.path` as it is for someone typing at a prompt there.

An HTML comment on the line directly before a block's opening fence (blank lines between are
allowed) says how the tour treats it:

    <!-- tour: skip: REASON -->    never run (needs ../shared, trains for hours, installs ...); REASON printed
    <!-- tour: cheap -->           a few seconds: run also by --only-cheap and by tests/test_readme.py

A block with neither runs in a full tour only. The rule for `cheap`: the block takes at most about
15 s on the project's 2-core CPU when the machine is quiet (no training beyond loading a model,
no dataset preparation), and its inputs are committed files or outputs of earlier cheap blocks, so
that the cheap blocks alone run as a tour of their own in well under a minute (tests/test_readme.py
checks the inputs statically and runs them).

Each block prints its README line, language, status (pass, FAIL, skip), seconds and first command;
a failing block prints the tail of its output. The last line is `N passed, N failed, N skipped`,
and the exit status is 1 when any block failed.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
PYTHON_LANGUAGES = {"python", "py", "python3"}
FENCE = re.compile(r"^```\s*([\w+-]*)\s*$")
MARKER = re.compile(r"^<!--\s*tour:\s*(?P<kind>[\w-]+)\s*(?::\s*(?P<reason>.*?))?\s*-->\s*$")
MARKER_KINDS = {"skip", "cheap"}
PROMPT = "$ "

# Options of `gen` (and of the README's other commands) whose value is a path the command writes.
OUTPUT_OPTIONS = {"-o", "--output", "--output-dir", "--run-dir", "--out", "--report"}
# Tokens that look like paths: a slash, or one of these endings.
PATH_ENDINGS = (".mid", ".midi", ".tfrecord", ".csv", ".json", ".abc", ".xml", ".mxl", ".musicxml",
                ".krn", ".safetensors", ".py", ".zip")
# Python calls whose string arguments are files they write, not read.
PYTHON_WRITERS = re.compile(r"write|to_midi_file|Writer$|save")


@dataclass
class Block:
    """One fenced code block of the README that the tour knows how to run."""

    number: int          # 1, 2, ... in README order, counting runnable languages only
    line: int            # README line of the opening fence (1-based)
    language: str        # "shell" or "python"
    fence: str           # the fence's own word: bash, console, python ...
    text: str            # the block's content
    marker: str | None = None   # "skip", "cheap" or None
    reason: str = ""

    @property
    def prompted(self) -> bool:
        return self.language == "shell" and any(line.startswith(PROMPT) for line in self.text.splitlines())

    @property
    def commands(self) -> list[str]:
        """The block's commands, one per logical line (continuations joined), comments and output left out."""
        if self.language != "shell":
            return [self.text]
        lines, commands = self.text.splitlines(), []
        prompted, index = self.prompted, 0
        while index < len(lines):
            line = lines[index]
            index += 1
            if prompted:
                if not line.startswith(PROMPT):
                    continue  # output, for illustration
                line = line[len(PROMPT):]
            command = line
            while command.rstrip().endswith("\\") and index < len(lines):
                command = command.rstrip()[:-1] + " " + lines[index].strip()
                index += 1
            if command.strip() and not command.strip().startswith("#"):
                commands.append(command.strip())
        return commands

    @property
    def script(self) -> str:
        return "\n".join(self.commands) + "\n" if self.language == "shell" else self.text

    @property
    def cheap(self) -> bool:
        return self.marker == "cheap"

    @property
    def skipped(self) -> bool:
        return self.marker == "skip"

    @property
    def summary(self) -> str:
        first = self.commands[0].splitlines()[0] if self.commands else ""
        return first if len(first) <= 90 else first[:87] + "..."


def parse_readme(text: str) -> list[Block]:
    """The README's shell and python blocks, in order, with the marker before each."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        start, word = index, match.group(1).lower()
        end = start + 1
        while end < len(lines) and not re.match(r"^```\s*$", lines[end]):
            end += 1
        if end == len(lines):
            raise ValueError(f"README.md:{start + 1}: a code block that is never closed")
        body = "\n".join(lines[start + 1:end]) + "\n"
        language = "shell" if word in SHELL_LANGUAGES else "python" if word in PYTHON_LANGUAGES else None
        if language:
            marker, reason = None, ""
            before = start - 1
            while before >= 0 and not lines[before].strip():
                before -= 1
            found = MARKER.match(lines[before].strip()) if before >= 0 else None
            if found:
                marker, reason = found.group("kind"), (found.group("reason") or "").strip()
                if marker not in MARKER_KINDS:
                    raise ValueError(f"README.md:{before + 1}: unknown tour marker {marker!r} "
                                     f"(known: {', '.join(sorted(MARKER_KINDS))})")
                if marker == "skip" and not reason:
                    raise ValueError(f"README.md:{before + 1}: a skip marker states its reason")
            blocks.append(Block(len(blocks) + 1, start + 1, language, word, body, marker, reason))
        index = end + 1
    return blocks


def read_blocks(readme: Path = REPOSITORY / "README.md") -> list[Block]:
    return parse_readme(readme.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Static check: which local files each block reads and writes.

def looks_like_path(token: str) -> bool:
    if not token or token.startswith("-") or "=" in token or "://" in token or token.startswith("$"):
        return False
    if token.startswith("[") or token.startswith("{"):
        return False
    return "/" in token or token.lower().endswith(PATH_ENDINGS)


def shell_paths(command: str) -> tuple[list[str], list[str]]:
    """(inputs, outputs) of one shell command line: path-like arguments, split by the option before them."""
    inputs, outputs = [], []
    for part in re.split(r"&&|\|\||;|\|", command):
        try:
            tokens = shlex.split(part, comments=True)
        except ValueError:
            continue
        while tokens and re.match(r"^\w+=", tokens[0]):  # VAR=value before the command
            tokens = tokens[1:]
        if not tokens or tokens[0] in {"cd", "export", "echo", "pip", "python3", "source", "."}:
            continue
        previous = None
        for token in tokens[1:]:
            if previous in OUTPUT_OPTIONS:
                outputs.append(token.rstrip("/"))
            elif looks_like_path(token):
                # --model ROLE=RUN is filtered by '='; a value after another option is an input
                inputs.append(token.rstrip("/"))
            if token.startswith("--") and "=" in token and token.split("=", 1)[0] in OUTPUT_OPTIONS:
                outputs.append(token.split("=", 1)[1].rstrip("/"))
            previous = token
    return inputs, outputs


def python_paths(source: str) -> tuple[list[str], list[str]]:
    """(inputs, outputs) of a python block: path-like string constants, outputs being those given to a writer."""
    tree = ast.parse(source)
    outputs: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if PYTHON_WRITERS.search(name or ""):
                for argument in list(node.args) + [keyword.value for keyword in node.keywords]:
                    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                        outputs.add(id(argument))
    inputs, written = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and looks_like_path(node.value):
            (written if id(node) in outputs else inputs).append(node.value.rstrip("/"))
    return inputs, written


def block_paths(block: Block) -> tuple[list[str], list[str]]:
    if block.language == "python":
        read, wrote = python_paths(block.text)  # a file the block writes may be read back in it
        return [path for path in read if not covered(path, wrote)], wrote
    inputs, outputs = [], []
    for command in block.commands:
        read, wrote = shell_paths(command)
        # within a block, a command may read what an earlier one in it wrote
        inputs += [path for path in read if not covered(path, outputs)]
        outputs += wrote
    return inputs, outputs


def covered(path: str, outputs: list[str]) -> bool:
    """Whether `path` is (or lies under, or is named after) one of `outputs`, or matches one as a glob."""
    for output in outputs:
        if path == output or path.startswith(output):  # runs/x/..., data/groove-train.tfrecord from data/groove
            return True
        if any(ch in path for ch in "*?[") and fnmatch.fnmatch(output + "-x.tfrecord", path):
            return True
    return False


def exists_in(root: Path, path: str) -> bool:
    if any(ch in path for ch in "*?["):
        return any(root.glob(path))
    return (root / path).exists()


def missing_inputs(blocks: list[Block], root: Path = REPOSITORY, only_cheap: bool = False
                   ) -> list[tuple[Block, str]]:
    """Inputs of the blocks that would run which neither exist under `root` nor are written by an earlier block that runs.

    A name with no slash and no file ending (a bundled model such as groove-4bar) is not a path here."""
    outputs: list[str] = []
    missing = []
    for block in blocks:
        if block.skipped or (only_cheap and not block.cheap):
            continue
        inputs, wrote = block_paths(block)
        for path in inputs:
            if path.startswith("../") or path.startswith("/"):
                missing.append((block, path))  # outside the repository: not in a clone
            elif not exists_in(root, path) and not covered(path, outputs):
                missing.append((block, path))
        outputs += wrote
    return missing


# Options naming a file or folder of new music: gen refuses to write over an earlier one.
FRESH_OUTPUT_OPTIONS = {"-o", "--output", "--output-dir"}


def repeated_outputs(blocks: list[Block]) -> list[tuple[Block, str]]:
    """Outputs (-o, --output, --output-dir) that a later block that runs writes again, which `gen`
    refuses (it does not replace earlier music). The first block counts: everyone runs it."""
    seen: dict[str, Block] = {}
    repeated = []
    for block in blocks:
        if block.language != "shell" or (block.skipped and block.number != 1):
            continue
        for command in block.commands:
            for part in re.split(r"&&|\|\||;|\|", command):
                try:
                    tokens = shlex.split(part, comments=True)
                except ValueError:
                    continue
                for option, value in zip(tokens, tokens[1:]):
                    if option in FRESH_OUTPUT_OPTIONS:
                        value = value.rstrip("/")
                        if value in seen:
                            repeated.append((block, value))
                        seen[value] = block
    return repeated


# ---------------------------------------------------------------------------------------------
# Running.

def repository_files(root: Path = REPOSITORY) -> list[str]:
    """Tracked files and new ones git does not ignore, as a clone of the next commit would hold them."""
    result = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=root, capture_output=True, check=True)
    return sorted({name for name in result.stdout.decode().split("\0") if name and (root / name).is_file()})


def fresh_copy(destination: Path, root: Path = REPOSITORY) -> Path:
    for name in repository_files(root):
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target)
    return destination


def environment_bin() -> Path:
    """The folder of the virtual environment's `gen` and `python`: this interpreter's, else REPOSITORY/.venv."""
    here = Path(sys.executable).parent
    if (here / "gen").exists():
        return here
    return REPOSITORY / ".venv" / "bin"


def tour_environment() -> dict[str, str]:
    bin_dir = environment_bin()
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(bin_dir.parent)
    env.pop("PYTHONPATH", None)
    env.pop("GEN_DATA_HOME", None)  # prepared data goes where the README says
    env.setdefault("MPLBACKEND", "Agg")
    return env


@dataclass
class Outcome:
    block: Block
    status: str           # "pass", "fail", "skip"
    seconds: float = 0.0
    reason: str = ""
    output: str = ""


@dataclass
class Tour:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(outcome.status == status for outcome in self.outcomes)

    @property
    def summary(self) -> str:
        return f"{self.count('pass')} passed, {self.count('fail')} failed, {self.count('skip')} skipped"

    @property
    def failed(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status == "fail"]


def run_block(block: Block, cwd: Path, env: dict[str, str], timeout: float) -> tuple[bool, str]:
    if block.language == "shell":
        command = ["bash", "-euo", "pipefail", "-c", block.script, f"README.md:{block.line}"]
        stdin = None
    else:
        command = [str(environment_bin() / "python"), "-"]
        stdin = block.text
    try:
        result = subprocess.run(command, cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired as error:
        def text(value) -> str:
            return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")
        return False, text(error.stdout) + text(error.stderr) + f"\n(timed out after {timeout:.0f} s)"
    return result.returncode == 0, result.stdout + result.stderr + (
        f"\n(exit status {result.returncode})" if result.returncode else "")


def run_tour(blocks: list[Block], *, only_cheap: bool = False, budget: float | None = None,
             timeout: float = 3600.0, workdir: Path | None = None, verbose: bool = False,
             report=print) -> Tour:
    """Runs `blocks` in order in a fresh copy of the repository (in `workdir`, else a temporary folder)."""
    tour = Tour()
    temporary = None
    if workdir is None:
        temporary = tempfile.TemporaryDirectory(prefix="readme-tour-")
        workdir = Path(temporary.name)
    try:
        root = fresh_copy(Path(workdir) / "repo")
        env = tour_environment()
        report(f"README tour in {root} (gen from {environment_bin()})")
        started = time.monotonic()
        for block in blocks:
            if block.skipped:
                outcome = Outcome(block, "skip", reason=block.reason)
            elif only_cheap and not block.cheap:
                outcome = Outcome(block, "skip", reason="not marked cheap")
            elif budget is not None and time.monotonic() - started > budget:
                outcome = Outcome(block, "skip", reason=f"over the {budget:.0f} s budget")
            else:
                begin = time.monotonic()
                ok, output = run_block(block, root, env, timeout)
                outcome = Outcome(block, "pass" if ok else "fail", time.monotonic() - begin, output=output)
            tour.outcomes.append(outcome)
            report(format_outcome(outcome, verbose))
        report(f"{tour.summary} ({time.monotonic() - started:.1f} s)")
    finally:
        if temporary is not None:
            temporary.cleanup()
    return tour


def format_outcome(outcome: Outcome, verbose: bool = False) -> str:
    block = outcome.block
    status = {"pass": "pass", "fail": "FAIL", "skip": "skip"}[outcome.status]
    kind = f"{block.fence}{' cheap' if block.cheap else ''}"
    line = f"[{block.number:2d}] README.md:{block.line:<4d} {kind:<14s} {status}  {outcome.seconds:6.1f} s  {block.summary}"
    if outcome.status == "skip":
        line += f"\n       skipped: {outcome.reason}"
    if outcome.status == "fail" or (verbose and outcome.output):
        tail = outcome.output.rstrip().splitlines()[-40 if outcome.status == "fail" else -10:]
        line += "\n" + "\n".join("       | " + text for text in tail)
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", type=Path, default=REPOSITORY / "README.md")
    parser.add_argument("--only-cheap", action="store_true", help="run only the blocks marked <!-- tour: cheap -->")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds: blocks not yet started when the tour has run this long are skipped "
                             "(default: none; 120 with --only-cheap)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds one block may run [3600]")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="run (and leave the copy) here instead of a temporary folder")
    parser.add_argument("--list", action="store_true", help="print the blocks and their commands; run nothing")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the end of every block's output")
    args = parser.parse_args(argv)
    blocks = read_blocks(args.readme)
    if args.list:
        for block in blocks:
            marker = f"  <!-- tour: {block.marker}{': ' + block.reason if block.reason else ''} -->" if block.marker else ""
            print(f"[{block.number:2d}] README.md:{block.line} {block.fence}{marker}")
            for command in block.commands:
                print("       " + command.replace("\n", "\n       "))
        return 0
    missing = missing_inputs(blocks, only_cheap=args.only_cheap)
    for block, path in missing:
        print(f"warning: README.md:{block.line}: {path} is neither in the repository nor written by an earlier block")
    for block, path in repeated_outputs(blocks):
        print(f"warning: README.md:{block.line}: {path} is written by an earlier block too")
    budget = args.budget if args.budget is not None else (120.0 if args.only_cheap else None)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    tour = run_tour(blocks, only_cheap=args.only_cheap, budget=budget, timeout=args.timeout,
                    workdir=args.workdir, verbose=args.verbose, report=lambda text: print(text, flush=True))
    return 1 if tour.failed else 0


if __name__ == "__main__":
    sys.exit(main())
