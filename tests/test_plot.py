"""`gen plot` and `gen continue --plot`: a PNG piano roll, the new notes told from the original's."""

from __future__ import annotations

from pathlib import Path

from generation.io.readers import read_music_file
from generation.plot import new_notes

from .test_cli import run

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "bantry_lasses.mid"


def test_continue_draws_a_roll_and_plot_tells_new_notes_from_old(tmp_path: Path) -> None:
    out, roll = tmp_path / "c.mid", tmp_path / "roll.png"
    result = run("continue", str(EXAMPLE), "-o", str(out), "--bars", "2", "--plot", str(roll))
    assert result.exit_code == 0, result.output
    assert roll.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and roll.stat().st_size > 10_000
    original, continued = (read_music_file(p).sequences[0] for p in (EXAMPLE, out))
    flags = new_notes(continued, original)
    start = max(n.end_time for n in original.notes) - 0.1
    assert sum(flags) == len(continued.notes) - len(original.notes) > 0
    assert all(n.start_time >= start for n, new in zip(continued.notes, flags) if new)
    again = run("plot", str(out), "--original", str(EXAMPLE), "-o", str(tmp_path / "again.png"))
    assert again.exit_code == 0 and (tmp_path / "again.png").is_file()
    bad = run("plot", str(tmp_path / "roll.png"), "-o", str(tmp_path / "x.png"))
    assert bad.exit_code != 0 and "unsupported file type" in bad.stderr and not (tmp_path / "x.png").exists()
