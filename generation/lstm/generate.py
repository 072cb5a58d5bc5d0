"""Generation from a trained LSTM note model: sampling, continuation of a primer, beam search, scoring.

    from generation.lstm import LSTMModel
    model = LSTMModel("runs/melody")                         # a run directory or a checkpoint file
    piece = model.generate(primer=None, num_steps=64, temperature=1.0, seed=7)
    continued = model.generate(primer=song, bars=8, top_p=0.95, seed=7)
    scores = model.log_likelihood(song)                      # per event, natural log

With a primer, the result holds every primer note unchanged, then the continuation from the
primer's last step on, in the primer's tempo and time signature (quantized models use the primer's
final tempo for the grid). Lengths count model steps: a 16th note for the quantized encodings,
10 ms for performance models; `bars` and `seconds` are converted to steps.
"""

from __future__ import annotations

import copy
import math
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from generation.errors import DamagedCheckpoint, GenError
from generation.protos import NoteSequence

# A generous bound on events per time step, so a model that never moves time on still stops.
MAX_EVENTS_PER_STEP = 8


@dataclass
class SamplingOptions:
    temperature: float = 1.0
    top_k: int = 0  # 0: no limit
    top_p: float = 1.0  # 1.0: no nucleus cut
    beam_size: int = 1
    branch_factor: int = 1
    steps_per_iteration: int = 1
    allow_end: bool = False  # True: a piece may end (END) before the length asked for

    def check(self) -> None:
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise GenError(f"temperature must be a finite number > 0; got {self.temperature!r}")
        if self.top_k < 0:
            raise GenError(f"top_k must be >= 0 (0: no limit); got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise GenError(f"top_p must be in (0, 1]; got {self.top_p}")
        for name in ("beam_size", "branch_factor", "steps_per_iteration"):
            if getattr(self, name) < 1:
                raise GenError(f"{name} must be >= 1; got {getattr(self, name)}")


class LSTMModel:
    """A trained LSTM note model loaded from a run directory (or one of its checkpoint files)."""

    def __init__(self, run_dir_or_checkpoint: str | os.PathLike[str], device: str = "cpu") -> None:
        import torch

        from generation.checkpoint import load_weights, read_run_config, resolve_checkpoint
        from generation.lstm.configs import LSTMRunConfig
        from generation.lstm.model import EventLSTM, EventLSTMConfig, Stepper

        run_dir, checkpoint = resolve_checkpoint(run_dir_or_checkpoint)
        self.run_dir, self.checkpoint = run_dir, checkpoint
        self.config = LSTMRunConfig.from_json(read_run_config(run_dir), str(run_dir / "config.json"))
        self.encoding = self.config.encoding
        self.device = torch.device(device)
        if self.device.type == "cpu":
            from generation.threads import use_inference_threads

            use_inference_threads()  # small models stepped one token at a time: 1 thread unless the user chose
        self.model = EventLSTM(EventLSTMConfig.from_hparams(self.config.hparams, self.encoding.vocab_size))
        try:
            self.model.load_state_dict(load_weights(checkpoint))
        except RuntimeError as error:
            lines = str(error).splitlines()
            raise DamagedCheckpoint(f"{checkpoint}: weights do not fit config {self.config.name!r}: "
                                    f"{(lines[1] if len(lines) > 1 else lines[0]).strip()}") from None
        self.model.to(self.device).eval()
        self.token_steps = torch.from_numpy(self.encoding.token_steps).to(self.device)
        self.stepper = Stepper(self.model, self.token_steps)

    # -- lengths ----------------------------------------------------------------------------------

    def steps_for(self, *, num_steps: int | None = None, bars: float | None = None, seconds: float | None = None,
                  primer: NoteSequence | None = None, seconds_per_step: float | None = None) -> int:
        """Model steps for a length given in steps, bars (quantized models) or seconds (on the grid of
        `primer`, or `seconds_per_step` when the caller has encoded the primer already)."""
        given = [v for v in (num_steps, bars, seconds) if v is not None]
        if len(given) != 1:
            raise GenError("give exactly one of num_steps, bars and seconds")
        if num_steps is not None:
            steps = int(num_steps)
        elif bars is not None:
            if not self.encoding.metric:
                raise GenError(f"{self.config.name} counts time in seconds (a performance model); use seconds")
            steps = round(bars * _steps_per_bar(primer))
        else:
            assert seconds is not None
            if seconds_per_step is None:
                seconds_per_step = (self.encoding.prime(primer).seconds_per_step if primer is not None and primer.notes
                                    else self.encoding.seconds_per_step_default)
            steps = round(seconds / seconds_per_step)
        if steps < 1:
            raise GenError(f"the length must be at least one model step; got {steps}")
        return steps

    # -- generation -------------------------------------------------------------------------------

    def generate(self, primer: NoteSequence | None = None, *, num_steps: int | None = None, bars: float | None = None,
                 seconds: float | None = None, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 beam_size: int = 1, branch_factor: int = 1, steps_per_iteration: int = 1,
                 seed: int | None = None, start_time: float | None = None) -> NoteSequence:
        """One piece: `primer` (or nothing) continued by `num_steps` / `bars` / `seconds`."""
        return self.sample(1, primer, num_steps=num_steps, bars=bars, seconds=seconds, temperature=temperature,
                           top_k=top_k, top_p=top_p, beam_size=beam_size, branch_factor=branch_factor,
                           steps_per_iteration=steps_per_iteration, seed=seed, start_time=start_time)[0]

    def sample(self, n: int, primer: NoteSequence | None = None, *, num_steps: int | None = None,
               bars: float | None = None, seconds: float | None = None, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, beam_size: int = 1, branch_factor: int = 1, steps_per_iteration: int = 1,
               seed: int | None = None, start_time: float | None = None) -> list[NoteSequence]:
        """`n` pieces at once (one batch; beam search runs one beam per piece). With a primer, the
        continuation starts at `start_time` seconds (default: where the primer ends)."""
        import torch

        options = SamplingOptions(temperature, top_k, top_p, beam_size, branch_factor, steps_per_iteration)
        options.check()
        if primer is not None and primer.notes:
            primed = self.encoding.prime(primer, start_time)
        else:
            from generation.lstm.encodings import Primed

            primer = None
            primed = Primed([self.encoding.start_token], 0, 0, self.encoding.seconds_per_step_default)
        steps = self.steps_for(num_steps=num_steps, bars=bars, seconds=seconds, primer=primer,
                               seconds_per_step=primed.seconds_per_step)
        generator = torch.Generator(device="cpu")
        generator.manual_seed(int(seed) if seed is not None else int(torch.seed() % 2**63))
        if beam_size > 1 or branch_factor > 1:
            generated = [self._beam_search(primed, steps, options, generator) for _ in range(n)]
        else:
            generated = self.sample_tokens(primed.tokens, primed.first_step, n, steps, options, generator)
        return [self._to_sequence(primed, tokens, steps, primer) for tokens in generated]

    def sample_tokens(self, primer_tokens: list[int], first_step: int, batch: int, num_steps: int,
                      options: SamplingOptions, generator: Any,
                      on_steps: Callable[[int], object] | None = None) -> list[list[int]]:
        """Tokens [batch][<= steps] after the primer, until each row has advanced `num_steps` steps or
        ended. The uniforms are drawn up front ([max events, batch] from `generator`).

        `on_steps(k)` is told after each event how many of the `num_steps` steps every row has
        completed (a row that has ended counts as complete): progress."""
        import torch

        from generation.lstm.model import choose

        limit = num_steps * MAX_EVENTS_PER_STEP + 16
        u = torch.rand((limit, batch), generator=generator).to(self.device)
        with torch.inference_mode():
            # Every row shares the primer: it is fed once and its state copied to each row.
            state = self.stepper.initial_state(1)
            primer = torch.tensor(primer_tokens, dtype=torch.long, device=self.device)[None]
            first = torch.full((1,), first_step, dtype=torch.long, device=self.device)
            logits = self.stepper.feed(state, primer, first)
            rows = torch.zeros(batch, dtype=torch.long, device=self.device)
            state, logits = state.select(rows), logits.index_select(0, rows)
            position = state.position
            advanced = torch.zeros(batch, dtype=torch.long, device=self.device)
            done = torch.zeros(batch, dtype=torch.bool, device=self.device)
            chosen = []
            banned = self._banned(options)
            for t in range(limit):
                logits[:, banned] = float("-inf")
                token, _ = choose(logits, u[t], options.temperature, options.top_k, options.top_p)
                chosen.append(torch.where(done, -1, token))
                moved = self.token_steps[token]
                advanced += moved
                done |= (token == self.encoding.end_token) | (advanced >= num_steps)
                if on_steps is not None:
                    on_steps(int(torch.where(done, num_steps, advanced).min()))
                if bool(done.all()):
                    break
                position = position + moved
                logits = self.stepper.step(state, token, position)
            rows = torch.stack(chosen, dim=1).tolist()  # [batch, events]
        return [[t for t in row if t >= 0] for row in rows]

    def _banned(self, options: SamplingOptions) -> list[int]:
        """Tokens never sampled: START (a piece starts once) and, unless allowed, END (the length
        asked for is the length written; a model trained on whole pieces would otherwise stop early)."""
        return [self.encoding.start_token] + ([] if options.allow_end else [self.encoding.end_token])

    def _beam_search(self, primed: Any, num_steps: int, options: SamplingOptions, generator: Any) -> list[int]:
        """Magenta's beam search: `beam_size` sequences, each branched `branch_factor` ways and
        extended by `steps_per_iteration` sampled events per iteration; the most likely survive."""
        import torch

        from generation.lstm.model import choose

        beam, branches = options.beam_size, options.branch_factor
        with torch.inference_mode():
            state = self.stepper.initial_state(1)
            primer = torch.tensor(primed.tokens, dtype=torch.long, device=self.device)[None]
            logits = self.stepper.feed(state, primer, torch.tensor([primed.first_step], device=self.device))
            rows = torch.zeros(1, dtype=torch.long, device=self.device)
            scores = torch.zeros(1, device=self.device)
            advanced = torch.zeros(1, dtype=torch.long, device=self.device)
            done = torch.zeros(1, dtype=torch.bool, device=self.device)
            history = torch.zeros(1, 0, dtype=torch.long, device=self.device)
            limit = num_steps * MAX_EVENTS_PER_STEP + 16
            while not bool(done.all()) and history.shape[1] < limit:
                rows = torch.arange(logits.shape[0], device=self.device).repeat_interleave(branches if history.shape[1] else beam * branches)
                state, logits = state.select(rows), logits.index_select(0, rows)
                scores, advanced, done, history = scores[rows], advanced[rows], done[rows], history[rows]
                for _ in range(options.steps_per_iteration):
                    logits[:, self._banned(options)] = float("-inf")
                    u = torch.rand(logits.shape[0], generator=generator).to(self.device)
                    token, log_prob = choose(logits, u, options.temperature, options.top_k, options.top_p,
                                             with_log_prob=True)
                    scores = scores + torch.where(done, 0.0, log_prob)
                    history = torch.cat([history, torch.where(done, -1, token)[:, None]], dim=1)
                    moved = self.token_steps[token]
                    advanced = advanced + torch.where(done, 0, moved)
                    done = done | (token == self.encoding.end_token) | (advanced >= num_steps)
                    if bool(done.all()):
                        break
                    logits = self.stepper.step(state, token, state.position + moved)
                keep = scores.topk(min(beam, scores.shape[0])).indices
                state, logits = state.select(keep), logits.index_select(0, keep)
                scores, advanced, done, history = scores[keep], advanced[keep], done[keep], history[keep]
            best = history[int(scores.argmax())].tolist()
        return [t for t in best if t >= 0]

    def _to_sequence(self, primed: Any, tokens: list[int], num_steps: int, primer: NoteSequence | None) -> NoteSequence:
        """The primer (unchanged) and the notes of `tokens` from the continuation's first step on."""
        sps = primed.seconds_per_step
        decoded = self.encoding.decode(primed.tokens + tokens, first_step=primed.first_step, seconds_per_step=sps)
        start = primed.continuation_step * sps
        end = (primed.continuation_step + num_steps) * sps
        output = copy.deepcopy(primer) if primer is not None else _empty_sequence(self.encoding, sps)
        # A single-tempo primer's grid is exact; after tempo changes, continue from where it ends.
        shift = 0.0 if primer is None or len(primer.tempos) <= 1 else max(primer.total_time, start) - start
        velocity, instrument, program, is_drum = _voice_for(primer, self.encoding.kind)
        for note in decoded.notes:
            if note.start_time >= end - 1e-9 or note.end_time <= start + 1e-9:
                continue
            added = output.notes.add()
            added.CopyFrom(note)
            added.pitch = note.pitch - primed.transpose
            # A note the model holds on from the primer is struck again where the continuation begins
            # (the primer's own note stays as it was, ending where it ended).
            added.start_time = max(note.start_time, start) + shift
            added.end_time = min(note.end_time, end) + shift
            added.instrument, added.program, added.is_drum = instrument, program, is_drum
            if not (self.encoding.kind == "performance" and self.encoding.num_velocity_bins):
                added.velocity = velocity
        output.total_time = max([output.total_time, end + shift] + [n.end_time for n in output.notes])
        return output

    # -- scoring ----------------------------------------------------------------------------------

    def log_likelihood(self, sequence: NoteSequence) -> np.ndarray:
        """The model's log-likelihood (natural log) of each event of `sequence` after START, END included:
        [events] float64. The sequence is encoded as a primer is (all voices as one part)."""
        import torch

        from generation.lstm.family import next_event_steps

        primed = self.encoding.prime(sequence)
        tokens = primed.tokens + [self.encoding.end_token]
        positions = next_event_steps(tokens, self.encoding.token_steps, primed.first_step)
        with torch.inference_mode():
            inputs = torch.tensor(tokens[:-1], device=self.device)[None]
            logits = self.model(inputs, torch.from_numpy(positions[:-1]).to(self.device)[None])[0]
            log_probs = logits.float().log_softmax(-1).gather(-1, torch.tensor(tokens[1:], device=self.device)[:, None])
        return log_probs.squeeze(-1).double().cpu().numpy()


def _steps_per_bar(primer: NoteSequence | None) -> float:
    from generation.lstm.encodings import STEPS_PER_QUARTER

    if primer is None or not primer.time_signatures:
        return 4 * STEPS_PER_QUARTER
    signature = max(primer.time_signatures, key=lambda s: s.time)
    return signature.numerator * 4 / signature.denominator * STEPS_PER_QUARTER


def _empty_sequence(encoding: Any, seconds_per_step: float) -> NoteSequence:
    from generation.lstm.encodings import STEPS_PER_QUARTER

    sequence = NoteSequence()
    sequence.ticks_per_quarter = 220
    qpm = 60.0 / seconds_per_step / STEPS_PER_QUARTER if encoding.metric else 120.0
    sequence.tempos.add(qpm=qpm)
    sequence.time_signatures.add(numerator=4, denominator=4)
    return sequence


def _voice_for(primer: NoteSequence | None, kind: str) -> tuple[int, int, int, bool]:
    """(velocity, instrument, program, is_drum) for continuation notes: the primer's own, so the
    continuation sounds like the part it continues (its median velocity, its commonest instrument)."""
    drums = kind == "drums"
    if primer is None:
        return 100, 9 if drums else 0, 0, drums
    notes = [n for n in primer.notes if n.is_drum == drums and n.velocity > 0]
    if not notes:
        return 100, 9 if drums else 0, 0, drums
    velocity = int(statistics.median(n.velocity for n in notes))
    (instrument, program), _ = max(
        ((key, sum(1 for n in notes if (n.instrument, n.program) == key)) for key in {(n.instrument, n.program) for n in notes}),
        key=lambda item: (item[1], -item[0][0]),
    )
    return velocity, instrument, program, drums
