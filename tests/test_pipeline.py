"""The run loop: batching, pooling, events on pts, errors isolated per input and frame, gates, resume."""

from __future__ import annotations

import json
import os
import threading

import pytest

from qplug.errors import UsageError
from qplug.events import EventRule
from qplug.gates import Gate
from qplug.hookspecs import hookimpl
from qplug.pipeline import Run, RunOptions
from qplug.plugins import new_host
from qplug.resume import load_resume_state
from qplug.types import FrameResult, Sampling, SourceSummary

from . import synthetic_plugin


@pytest.fixture
def host():
    h = new_host()
    h.add_plugin(synthetic_plugin, name="synthetic")
    return h


def write_synth(path, levels, **extra):
    path.write_text(json.dumps(dict(levels=levels, **extra)))
    return str(path)


def collect(run):
    frames, sources = [], []
    for item in run:
        (frames if isinstance(item, FrameResult) else sources).append(item)
    return frames, sources


def test_frames_are_scored_in_order_and_pooled(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [0, 51, 102, 153, 204, 255])
    frames, sources = collect(Run([clip], RunOptions(scorers=["brightness", "change"]), host))
    assert [f.index for f in frames] == list(range(6))
    assert frames[0].scores["brightness"] == 0.0 and frames[-1].scores["brightness"] == 1.0
    assert frames[0].scores["change"] is None
    assert frames[1].scores["change"] == pytest.approx(0.2)
    (summary,) = sources
    assert summary.frames == 6 and summary.errors == []
    pooled = summary.pooled["brightness"]
    assert pooled["mean"] == pytest.approx(0.5)
    assert pooled["min"] == 0.0 and pooled["max"] == 1.0
    assert pooled["hmean"] is None  # a zero makes the harmonic mean undefined, not 0 or inf
    assert summary.pooled["change"]["count"] == 5  # the first frame has no change value


def test_batches_follow_each_scorer_preference(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [10] * 10)
    run = Run([clip], RunOptions(scorers=["brightness"], batch_size=8), host)
    collect(run)
    assert run._scorers["brightness"].batches == [4, 4, 2]


def test_temporal_scorer_is_reset_between_sources(tmp_path, host):
    a = write_synth(tmp_path / "a.synth", [0, 255])
    b = write_synth(tmp_path / "b.synth", [0, 0])
    frames, _ = collect(Run([a, b], RunOptions(scorers=["change"]), host))
    assert [f.scores["change"] for f in frames] == [None, 1.0, None, 0.0]


def test_events_are_keyed_on_pts_under_variable_frame_rate(tmp_path, host):
    # Dark frames at pts 1.0, 1.1 and 2.0 (a long frame): the segment runs from 1.0 to 2.5, when a
    # bright frame is next shown; a frame index would have said "3 frames".
    pts = [0.0, 0.5, 1.0, 1.1, 2.0, 2.5, 3.0]
    levels = [200, 200, 5, 5, 5, 200, 200]
    clip = write_synth(tmp_path / "vfr.synth", levels, pts=pts)
    _, (summary,) = collect(Run([clip], RunOptions(scorers=["brightness"]), host))
    (event,) = summary.events
    assert (event.start, event.end, event.frames) == (1.0, 2.5, 3)
    assert event.duration == pytest.approx(1.5)
    assert event.peak == pytest.approx(5 / 255)


def test_short_dips_do_not_make_events_and_open_segment_closes_at_end(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [200, 5, 200, 200, 5, 5, 5, 5, 5], fps=10)
    _, (summary,) = collect(Run([clip], RunOptions(scorers=["brightness"]), host))
    (event,) = summary.events  # the single dark frame (0.1 s) is under the 0.5 s minimum
    assert event.start == pytest.approx(0.4) and event.end == pytest.approx(0.9)
    assert event.start_timecode == "00:00:00:04"


def test_event_rules_can_be_overridden(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [200, 5, 200], fps=10)
    opts = RunOptions(scorers=["brightness"], events={"brightness": EventRule(0.5, 0.0)})
    _, (summary,) = collect(Run([clip], opts, host))
    assert len(summary.events) == 1
    opts = RunOptions(scorers=["brightness"], events={"brightness": None})
    _, (summary,) = collect(Run([clip], opts, host))
    assert summary.events == []


def test_a_broken_input_is_recorded_and_the_rest_is_scored(tmp_path, host):
    good = write_synth(tmp_path / "good.synth", [100, 100])
    bad = tmp_path / "bad.synth"
    bad.write_text("{not json")
    missing = str(tmp_path / "missing.synth")
    run = Run([str(bad), good, missing], RunOptions(scorers=["brightness"]), host)
    frames, sources = collect(run)
    assert len(frames) == 2
    by_source = {s.source_id: s for s in sources}
    assert "not a synth file" in by_source[str(bad)].errors[0].reason
    assert "no such file" in by_source[missing].errors[0].reason
    assert by_source[good].errors == []
    assert run.summary.exit_code == 2


def test_frames_before_a_decode_error_are_kept(tmp_path, host):
    clip = write_synth(tmp_path / "cut.synth", [100] * 6, fail_at=4)
    frames, (summary,) = collect(Run([clip], RunOptions(scorers=["brightness"]), host))
    assert [f.index for f in frames] == [0, 1, 2, 3]
    assert summary.frames == 4 and summary.pooled["brightness"]["mean"] == pytest.approx(100 / 255)
    assert summary.errors[0].index is None and "decode error at frame 4" in summary.errors[0].reason


def test_a_scorer_exception_marks_only_the_frame_it_belongs_to(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [100] * 8)
    opts = RunOptions(scorers=["brightness", "change"], scorer_options={"brightness": {"fail_on": 5}})
    run = Run([clip], opts, host)
    frames, (summary,) = collect(run)
    assert len(frames) == 8
    failed = [f.index for f in frames if f.scores["brightness"] is None]
    assert failed == [5]  # its batch of 4 failed, and was retried frame by frame
    assert "scorer exploded" in frames[5].errors[0].reason and frames[5].errors[0].stage == "score:brightness"
    assert [f.scores["brightness"] for f in frames[4:]] == [pytest.approx(100 / 255), None] + [pytest.approx(100 / 255)] * 2
    assert run._scorers["brightness"].batches == [4, 4, 1, 1, 1, 1]
    assert all(f.scores["change"] is not None for f in frames[1:])
    assert summary.frame_errors == 1
    # Frames that were not all scored are no pass: the run's outcome is "errors" (exit 2)...
    assert run.summary.frame_errors == 1 and run.summary.outcome == "errors" and run.summary.exit_code == 2
    # ...unless the run tolerates that many.
    for tolerated, code in ((1, 0), (0, 2)):
        run = Run([clip], RunOptions(scorers=["brightness"], scorer_options={"brightness": {"fail_on": 5}},
                                     max_frame_errors=tolerated), host)
        collect(run)
        assert run.summary.exit_code == code, tolerated


def test_a_component_that_fails_every_frame_is_not_retried_frame_by_frame_for_long(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [100] * 8)
    run = Run([clip], RunOptions(scorers=["brightness"], scorer_options={"brightness": {"broken": True}}), host)
    frames, (summary,) = collect(run)
    assert all(f.scores["brightness"] is None and f.errors[0].reason == "RuntimeError: out of memory" for f in frames)
    assert summary.frame_errors == 8
    # Each batch of 4: the batch, then three single frames failing for the batch's reason, then no more.
    assert run._scorers["brightness"].batches == [4, 1, 1, 1, 4, 1, 1, 1]


def test_a_temporal_scorers_failed_batch_is_not_retried(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [100] * 4)
    calls = []

    class Failing:
        @hookimpl(wrapper=True)
        def score_batch(self, scorer_name, scorer, frames):
            calls.append((scorer_name, len(frames)))
            if any(f.index == 1 for f in frames):
                raise RuntimeError("lost its previous frame")
            return (yield)

    host.add_plugin(Failing(), name="failing")
    frames, (summary,) = collect(Run([clip], RunOptions(scorers=["change"]), host))
    assert [f.index for f in frames if f.errors] == [0, 1, 2]  # the batch of 3 holding frame 1, whole
    assert calls == [("change", 3), ("change", 1)]


def test_a_describer_or_asker_failure_marks_only_its_frame(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [10, 240, 240, 10])
    opts = RunOptions(scorers=[], describers=["words"], askers=["bright"], question="Is it bright?",
                      choices=["yes", "no"], scorer_options={"words": {"fail_on": 2}})
    frames, (summary,) = collect(Run([clip], opts, host))
    assert [f.descriptions.get("words") for f in frames] == ["dark", "bright", None, "dark"]
    assert [(e.stage, e.reason) for e in frames[2].errors] == [("describe:words", "RuntimeError: server refused frame 2")]
    assert all(not f.errors for f in frames if f.index != 2)
    assert [f.answers["bright"]["choice"] for f in frames] == ["no", "yes", "yes", "no"]


def test_a_scorer_gives_a_whole_source_verdict_that_gates_can_read(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [50, 100, 200, 150, 100])
    flat = write_synth(tmp_path / "b.synth", [100] * 4)
    run = Run([clip, flat], RunOptions(scorers=["span", "brightness"], gates=[Gate.parse("span.source=0.2")]), host)
    frames, summaries = collect(run)
    by_source = {s.source_id: s for s in summaries}
    assert by_source[clip].source_scores == {"span": {"value": pytest.approx(150 / 255), "extra": {"frames": 5}}}
    assert by_source[clip].pooled["span"]["source"] == pytest.approx(150 / 255)
    assert by_source[clip].pooled["span"]["mean"] == pytest.approx(120 / 255)  # the frames' own values
    assert "source" not in by_source[clip].pooled["brightness"]  # a scorer without score_source()
    assert by_source[flat].pooled["span"]["source"] == 0.0  # reset between sources
    assert by_source[flat].gate_failures == ["span.source = 0 is under 0.2"] and not by_source[clip].gate_failures
    record = json.loads(json.dumps(by_source[clip].to_dict()))
    assert SourceSummary.from_dict(record).source_scores == record["source_scores"]


def test_a_failing_source_verdict_fails_its_source_only(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [50, 100])
    run = Run([clip], RunOptions(scorers=["span"], scorer_options={"span": {"fail": True}}), host)
    frames, (summary,) = collect(run)
    assert [f.scores["span"] for f in frames] == [pytest.approx(50 / 255), pytest.approx(100 / 255)]
    (error,) = summary.errors
    assert error.index is None and error.stage == "score_source:span" and "no verdict" in error.reason
    assert "source" not in summary.pooled["span"] and run.summary.exit_code == 2


def test_no_source_verdict_on_a_source_resumed_part_way(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [50, 100, 200, 150])
    first, _ = collect(Run([clip], RunOptions(scorers=["span"]), host))
    report = tmp_path / "run.jsonl"
    report.write_text("".join(json.dumps(f.to_dict()) + "\n" for f in first[:2]))
    run = Run([clip], RunOptions(scorers=["span"], resume=load_resume_state(str(report))), host)
    _, (summary,) = collect(run)
    assert summary.frames == 4 and summary.source_scores == {} and "source" not in summary.pooled["span"]


def test_frame_errors_survive_a_resume(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [100] * 8)
    finished = write_synth(tmp_path / "b.synth", [100] * 8)
    failing = RunOptions(scorers=["brightness"], scorer_options={"brightness": {"fail_on": 1}}, batch_size=2)
    first, sources = collect(Run([clip, finished], failing, host))
    assert [f.index for f in first if f.errors] == [1, 1]
    report = tmp_path / "run.jsonl"
    # The first input was cut after 4 frames (1 failed); the second finished, with its failure.
    kept = [f.to_dict() for f in first if f.source_id == clip][:4] + [s.to_dict() for s in sources if s.source_id == finished]
    report.write_text("".join(json.dumps(r) + "\n" for r in kept))
    resumed = Run([clip, finished], RunOptions(scorers=["brightness"], resume=load_resume_state(str(report))), host)
    _, summaries = collect(resumed)
    assert {s.source_id: s.frame_errors for s in summaries} == {clip: 1, finished: 1}
    assert resumed.summary.exit_code == 2  # the resumed run is not a pass: 2 frames were never scored


def test_gates_fail_the_run_with_exit_code_1(tmp_path, host):
    clip = write_synth(tmp_path / "dim.synth", [20, 30, 40])
    run = Run([clip], RunOptions(scorers=["brightness"], gates=[Gate.parse("brightness=0.5")]), host)
    _, (summary,) = collect(run)
    assert summary.gate_failures and "under 0.5" in summary.gate_failures[0]
    assert run.summary.exit_code == 1
    run = Run([clip], RunOptions(scorers=["brightness"], gates=[Gate.parse("brightness.max=0.5", under=False)]), host)
    collect(run)
    assert run.summary.exit_code == 0


def test_unknown_names_are_usage_errors(tmp_path, host):
    with pytest.raises(UsageError, match="unknown scorer 'nope'.*brightness"):
        Run([], RunOptions(scorers=["nope"]), host)
    with pytest.raises(UsageError, match="not among the scorers"):
        Run([], RunOptions(scorers=["brightness"], gates=[Gate.parse("change=1")]), host)
    with pytest.raises(UsageError, match="unknown pooling 'p7'"):
        Run([], RunOptions(scorers=["brightness"], gates=[Gate.parse("brightness.p7=1")]), host)
    with pytest.raises(UsageError, match="bad options"):
        list(Run([], RunOptions(scorers=["brightness"], scorer_options={"brightness": {"nope": 1}}), host))


def test_directories_globs_and_unsupported_files(tmp_path, host):
    (tmp_path / "sub").mkdir()
    write_synth(tmp_path / "sub" / "b.synth", [1])
    write_synth(tmp_path / "a.synth", [1])
    (tmp_path / "notes.txt").write_text("ignored inside a directory")
    frames, sources = collect(Run([str(tmp_path)], RunOptions(scorers=["brightness"]), host))
    assert sorted(os.path.basename(s.source_id) for s in sources) == ["a.synth", "b.synth"]
    frames, sources = collect(Run([str(tmp_path / "**" / "*.synth")], RunOptions(scorers=["brightness"]), host))
    assert len(sources) == 2
    run = Run([str(tmp_path / "notes.txt")], RunOptions(scorers=["brightness"]), host)
    _, (summary,) = collect(run)
    assert "unsupported file type" in summary.errors[0].reason and ".synth" in summary.errors[0].reason


def test_score_batch_wrappers_see_every_batch(tmp_path, host):
    seen = []

    class Timing:
        @hookimpl(wrapper=True)
        def score_batch(self, scorer_name, scorer, frames):
            result = yield
            seen.append((scorer_name, len(frames), len(result)))
            return result

    host.add_plugin(Timing(), name="timing")
    clip = write_synth(tmp_path / "a.synth", [1] * 5)
    collect(Run([clip], RunOptions(scorers=["brightness"]), host))
    assert seen == [("brightness", 4, 4), ("brightness", 1, 1)]


def test_a_cache_plugin_can_answer_instead_of_the_scorer(tmp_path, host):
    class Cache:
        @hookimpl(tryfirst=True)
        def score_batch(self, scorer_name, scorer, frames):
            return [0.25] * len(frames)

    host.add_plugin(Cache(), name="cache")
    clip = write_synth(tmp_path / "a.synth", [200] * 3)
    frames, _ = collect(Run([clip], RunOptions(scorers=["brightness"]), host))
    assert [f.scores["brightness"] for f in frames] == [0.25] * 3


def test_stopping_early_ends_the_decoding_thread(tmp_path, host):
    clip = write_synth(tmp_path / "long.synth", [1] * 500)
    run = Run([clip], RunOptions(scorers=["brightness"], prefetch=4), host)
    iterator = iter(run)
    next(iterator)
    iterator.close()
    assert not any(t.name == "qplug-decode" and t.is_alive() for t in threading.enumerate())


def test_pixels_are_released_after_each_result(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [1] * 6)
    kept = []
    for item in Run([clip], RunOptions(scorers=["brightness"]), host):
        if isinstance(item, FrameResult):
            assert item.frame is not None and item.frame.rgb is not None  # writers may read pixels now
            kept.append(item)
    assert all(r.frame is None for r in kept)


def test_resume_skips_done_frames_and_keeps_pooled_scores_whole(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [0, 51, 102, 153, 204, 255])
    done = write_synth(tmp_path / "done.synth", [10])
    report = tmp_path / "run.jsonl"
    first, _ = collect(Run([clip], RunOptions(scorers=["brightness"]), host))
    lines = [json.dumps(f.to_dict()) for f in first[:3]]
    lines.append(json.dumps({"type": "source", "source": done, "frames": 1, "pooled": {"brightness": {"mean": 0.04}},
                             "events": [], "errors": []}))
    report.write_text("\n".join(lines) + "\n" + '{"type": "frame", "sour')  # killed mid-line
    state = load_resume_state(str(report))
    assert state.done_indices[clip] == {0, 1, 2} and done in state.finished
    frames, sources = collect(Run([clip, done], RunOptions(scorers=["brightness"], resume=state), host))
    assert [f.index for f in frames] == [3, 4, 5]
    by_source = {s.source_id: s for s in sources}
    assert by_source[clip].frames == 6
    assert by_source[clip].pooled["brightness"]["mean"] == pytest.approx(0.5)
    assert by_source[done].resumed and by_source[done].pooled["brightness"]["mean"] == 0.04


def test_results_serialise_to_json(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [0, 255, 0], fps=10)
    for item in Run([clip], RunOptions(scorers=["brightness"], events={"brightness": EventRule(0.5)}), host):
        assert isinstance(item, (FrameResult, SourceSummary))
        json.loads(json.dumps(item.to_dict(), allow_nan=False))


def test_describers_and_askers_fill_their_fields(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [10, 240, 240])
    opts = RunOptions(scorers=[], describers=["words"], askers=["bright"], question="Is it bright?",
                      choices=["yes", "no"])
    frames, (summary,) = collect(Run([clip], opts, host))
    assert [f.descriptions["words"] for f in frames] == ["dark", "bright", "bright"]
    answers = [f.answers["bright"] for f in frames]
    assert [a["choice"] for a in answers] == ["no", "yes", "yes"]
    assert all(a["question"] == "Is it bright?" and sum(a["probabilities"].values()) == pytest.approx(1) for a in answers)
    assert summary.pooled == {} or all(not v for v in summary.pooled.values())
    with pytest.raises(UsageError, match="need a question"):
        Run([clip], RunOptions(scorers=[], askers=["bright"]), host)
    with pytest.raises(UsageError, match="two different choices"):
        Run([clip], RunOptions(scorers=[], askers=["bright"], question="q", choices=["yes"]), host)


def test_a_folder_or_pattern_with_nothing_to_score_is_an_error(tmp_path, host):
    (tmp_path / "notes.txt").write_text("x")
    run = Run([str(tmp_path), str(tmp_path / "*.synth")], RunOptions(scorers=["brightness"]), host)
    _, sources = collect(run)
    assert [s.errors[0].reason for s in sources] == ["directory holds no file of a supported type",
                                                     "pattern matched no file of a supported type"]
    assert run.summary.exit_code == 2


def test_two_sided_scorers_flag_both_sides_of_their_ideal(tmp_path):
    from qplug.registry import ScorerInfo

    class TwoSided:
        @hookimpl
        def register_scorers(self, register):
            register(ScorerInfo(name="level", factory=synthetic_plugin.Brightness, description="grey level",
                                range=(0.0, 1.0), higher_is_better=None, ideal=0.5, event_threshold=0.3))

    host = new_host()
    host.add_plugin(synthetic_plugin, name="synthetic")
    host.add_plugin(TwoSided(), name="two-sided")
    clip = write_synth(tmp_path / "a.synth", [128, 5, 5, 128, 250, 250, 128], fps=1)
    _, (summary,) = collect(Run([clip], RunOptions(scorers=["level"]), host))
    assert [(e.start, e.end) for e in summary.events] == [(1.0, 3.0), (4.0, 6.0)]
    info = host.catalog().scorer("level")
    assert info.direction == "closer to 0.5 is better" and info.badness(0.9) > info.badness(0.6)
    with pytest.raises(Exception, match="either higher_is_better or an ideal"):
        ScorerInfo(name="x", factory="m:a", description="", range=(0, 1), higher_is_better=True, ideal=0.5)


def test_a_bad_option_error_never_shows_a_secret():
    from qplug.pipeline import _construct

    def factory(threshold: int = 1) -> object:
        return object()

    with pytest.raises(UsageError) as caught:
        _construct("example.remote", factory, {"api_key": "sk-very-secret", "thresh": 3})
    message = str(caught.value)
    assert "sk-very-secret" not in message and "'api_key': '***'" in message and "'thresh': 3" in message


def test_read_ahead_is_bounded_in_bytes_not_frames(tmp_path):
    """Big frames: 16 frames of read-ahead plus a batch of 8 would hold 24 of them; the budget holds 2."""
    import numpy as np

    from qplug.registry import ScorerInfo, SourceInfo
    from qplug.types import Frame, MediaInfo

    side = 1000  # 3 MB of RGB per frame
    seen: list[int] = []

    class BigReader:
        def __init__(self, path):
            self.info = MediaInfo(source_id=path, kind="image", width=side, height=side)
            self.path = path

        def __iter__(self):
            for index in range(20):
                yield Frame(source_id=self.path, index=index, width=side, height=side,
                            rgb_loader=lambda: np.zeros((side, side, 3), np.uint8))

        def close(self):
            pass

    class BigSource:
        def open(self, path, sampling):
            return BigReader(path)

    class Probe:
        def score(self, frames):
            seen.append(run._budget.held)
            return [1.0 for _ in frames]

    class Plugin:
        @hookimpl
        def register_sources(self, register):
            register(SourceInfo(name="big", factory=BigSource, description="", extensions=(".big",)))

        @hookimpl
        def register_scorers(self, register):
            register(ScorerInfo(name="probe", factory=Probe, description="", range=(0, 1), higher_is_better=True,
                                batch_size=8))

    host = new_host()
    host.add_plugin(Plugin(), name="big")
    path = tmp_path / "huge.big"
    path.write_bytes(b"x")
    paths = [str(path)]
    budget = 7 * 1024 * 1024
    run = Run(paths, RunOptions(scorers=["probe"], prefetch_bytes=budget), host)
    frames, sources = collect(run)
    assert len(frames) == 20 and all(f.scores["probe"] == 1.0 for f in frames)
    assert max(seen) <= budget  # 2 frames of 3 MB fit in 7 MB; counted in frames, a batch alone held 24 MB
    assert run._budget.held == 0


def test_events_a_source_reports_join_the_summary(tmp_path, host):
    clip = write_synth(tmp_path / "a.synth", [200] * 10, gap=[0.1, 0.2])
    _, (summary,) = collect(Run([clip], RunOptions(scorers=["brightness"]), host))
    assert [(e.scorer, e.start, e.end) for e in summary.events] == [("decode_gap", 0.1, 0.2)]


def test_event_gates_fail_a_source_with_a_long_enough_event(tmp_path, host):
    from qplug.gates import EventGate

    # 25 fps: frames 10..34 are dark (1 s), the brightness scorer's events need 0.5 s below 0.1.
    clip = write_synth(tmp_path / "a.synth", [200] * 10 + [5] * 25 + [200] * 10, gap=[1.6, 1.7])
    run = Run([clip], RunOptions(scorers=["brightness"], event_gates=[EventGate.parse("brightness=0.9")]), host)
    _, (summary,) = collect(run)
    assert summary.gate_failures == ["brightness event (at least 0.9 s) at 00:00:00:10-00:00:01:10, 1 s"]
    assert run.summary.exit_code == 1
    run = Run([clip], RunOptions(scorers=["brightness"], event_gates=[EventGate.parse("brightness=1.5")]), host)
    _, (summary,) = collect(run)
    assert summary.gate_failures == [] and run.summary.exit_code == 0
    run = Run([clip], RunOptions(scorers=["brightness"], event_gates=[EventGate.parse("decode_gap")]), host)
    _, (summary,) = collect(run)
    assert summary.gate_failures and summary.gate_failures[0].startswith("decode_gap event at")
    with pytest.raises(UsageError, match="no scorer run here and no source reports"):
        Run([clip], RunOptions(scorers=["brightness"], event_gates=[EventGate.parse("blakc")]), host)
    for bad in ("", "=1", "black=", "black=x", "black=-1"):
        with pytest.raises(UsageError):
            EventGate.parse(bad)
