"""The README's examples run as written from a fresh clone (benchmarks/readme_tour.py runs them all).

Here: a static check that every runnable block reads only files a clone holds or an earlier block
writes, that the python blocks define every name they use, and a run of the blocks marked
`<!-- tour: cheap -->` (seconds each on the project's 2-core CPU) in a fresh copy of the
repository. The other blocks (trainings, whole-dataset commands) run in `python
benchmarks/readme_tour.py`; blocks marked `<!-- tour: skip: REASON -->` never run.
"""

from __future__ import annotations

import ast
import builtins
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[1]
SHARED = REPOSITORY.parent / "shared"


def load_tour():
    spec = importlib.util.spec_from_file_location("readme_tour", REPOSITORY / "benchmarks" / "readme_tour.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("readme_tour", module)
    spec.loader.exec_module(module)
    return module


tour = load_tour()
BLOCKS = tour.read_blocks(REPOSITORY / "README.md")


def where(block) -> str:
    return f"README.md:{block.line}"


def test_the_readme_has_runnable_blocks_and_every_marker_is_known() -> None:
    assert len(BLOCKS) >= 10
    assert any(block.cheap for block in BLOCKS) and any(not block.marker for block in BLOCKS)
    for block in BLOCKS:
        if block.skipped:
            assert block.reason, where(block)
    # the first two commands stay as they are: install and test in a fresh venv
    first = BLOCKS[0]
    assert first.skipped and first.commands[0].startswith("python3 -m venv .venv") and "python -m pytest" in first.commands[1]


def test_every_input_is_in_a_clone_or_written_by_an_earlier_block() -> None:
    missing = [f"{where(block)}: {path}" for block, path in tour.missing_inputs(BLOCKS, REPOSITORY)]
    assert not missing, "inputs a fresh clone lacks:\n" + "\n".join(missing)


def test_the_cheap_blocks_alone_have_their_inputs() -> None:
    missing = [f"{where(block)}: {path}" for block, path in tour.missing_inputs(BLOCKS, REPOSITORY, only_cheap=True)]
    assert not missing, "cheap blocks reading what only other blocks write:\n" + "\n".join(missing)


def test_no_two_blocks_write_the_same_output() -> None:
    repeated = [f"{where(block)}: {path}" for block, path in tour.repeated_outputs(BLOCKS)]
    assert not repeated, "outputs written twice (gen refuses to replace them):\n" + "\n".join(repeated)


def test_no_runnable_block_reads_outside_the_repository() -> None:
    for block in BLOCKS:
        if not block.skipped:
            assert "../" not in block.script, f"{where(block)} reads outside the repository; mark it skip"


def undefined_names(source: str) -> set[str]:
    """Names a python block loads but neither assigns, imports nor gets from builtins (crude but enough here)."""
    tree = ast.parse(source)
    defined = set(dir(builtins))
    loaded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (defined.add if isinstance(node.ctx, (ast.Store, ast.Del)) else loaded.add)(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
    return loaded - defined


@pytest.mark.parametrize("block", [block for block in BLOCKS if block.language == "python"], ids=where)
def test_python_blocks_are_self_contained(block) -> None:
    compile(block.text, where(block), "exec")
    assert not undefined_names(block.text), f"{where(block)} uses names it does not define"


def test_the_parser_reads_prompts_continuations_and_markers() -> None:
    text = "\n".join([
        "<!-- tour: skip: needs a GPU -->", "```bash", "gen train --gpu", "```", "",
        "<!-- tour: cheap -->", "", "```console", "$ gen inspect a.tfrecord \\", "    --json", "{\"sequences\": 1}",
        "  a line of output", "$ gen models", "```",
        "```", "$ not a runnable block", "```",
        "```python", "print('hi')", "```",
        "```bash", "# a comment", "gen a \\", "  b  # c", "```",
    ])
    blocks = tour.parse_readme(text)
    assert [(b.language, b.marker, b.reason) for b in blocks] == [
        ("shell", "skip", "needs a GPU"), ("shell", "cheap", ""), ("python", None, ""), ("shell", None, "")]
    assert blocks[1].commands == ["gen inspect a.tfrecord  --json", "gen models"]
    assert blocks[3].commands == ["gen a  b  # c"]
    assert tour.shell_paths("gen sample runs/x -o out/ --primer song.mid") == (["runs/x", "song.mid"], ["out"])
    assert tour.python_paths("w.write_midi(s, 'out.mid')\nread('in.mid')") == (["in.mid"], ["out.mid"])
    with pytest.raises(ValueError, match="reason"):
        tour.parse_readme("<!-- tour: skip -->\n```bash\ngen\n```\n")
    with pytest.raises(ValueError, match="unknown tour marker"):
        tour.parse_readme("<!-- tour: cheapish -->\n```bash\ngen\n```\n")


@pytest.mark.skipif(not (SHARED / "datasets" / "groove" / "info.csv").is_file(),
                    reason="needs ../shared/datasets/groove, which a fresh clone has no copy of")
def test_the_skipped_blocks_name_files_that_the_shared_folder_has() -> None:
    for block in BLOCKS:
        for command in block.commands if block.skipped else ():
            for path in tour.shell_paths(command)[0]:
                if path.startswith("../shared/"):
                    assert (REPOSITORY / path).exists(), f"{where(block)}: {path}"


@pytest.mark.skipif(shutil.which("git") is None or not (REPOSITORY / ".git").exists(),
                    reason="the tour copies the files git lists; not a git checkout")
def test_the_cheap_blocks_run_in_a_fresh_copy(tmp_path: Path) -> None:
    if not (tour.environment_bin() / "gen").exists():
        pytest.skip("no `gen` installed beside this interpreter or in .venv")
    lines: list[str] = []
    # budget: well over what the cheap blocks take (about 25 s on the project's 2-core CPU, 40 s with
    # other work on both cores), so that
    # only a block marked cheap that is not, or a machine far busier than usual, runs into it
    result = tour.run_tour(BLOCKS, only_cheap=True, budget=240.0, timeout=300.0, workdir=tmp_path, report=lines.append)
    report = "\n".join(lines)
    print(report)
    assert not result.failed, report
    assert result.count("pass") == sum(block.cheap for block in BLOCKS), report  # none cut by the budget
