"""Reports say how the run really ended: interrupted, terminated, failed, errors, gate failed or passed."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import html
import io
import json
import re
from typing import Any

import pytest

from qplug.types import ErrorRecord, FrameResult, MediaInfo, RunSummary, SourceSummary
from qplug_reports._common import outcome_text
from qplug_reports.html_writer import HtmlReportWriter
from qplug_reports.json_writer import JsonSummaryWriter
from qplug_reports.jsonl_writer import JsonLinesWriter

CLIP = "clip.mp4"
CODES = {"passed": 0, "gate_failed": 1, "errors": 2, "failed": 2, "interrupted": 130, "terminated": 143}


def source(gate_failures: list[str] | None = None, errors: list[ErrorRecord] | None = None) -> SourceSummary:
    return SourceSummary(source_id=CLIP, media=MediaInfo(source_id=CLIP, kind="video", fps=25.0), frames=10,
                         pooled={"sharp": {"mean": 0.5}}, gate_failures=gate_failures or [], errors=errors or [])


def end_run(run: RunSummary, outcome: str) -> RunSummary:
    """Make ``run`` end early with ``outcome``, as the CLI does on a signal or a failure."""
    run.stopped = outcome
    assert (run.outcome, run.exit_code) == (outcome, CODES[outcome])
    return run


def interrupted_run() -> RunSummary:
    """Ctrl-C after 10 frames: no gate failed, no input failed, and yet the run did not pass."""
    return end_run(RunSummary(sources=[source()], scorers=["sharp"], frames=10, wall_seconds=2.0), "interrupted")


def write_html(run: RunSummary) -> str:
    stream = io.StringIO()
    writer = HtmlReportWriter(stream, {"thumbnails": 0})
    for i in range(10):
        result = FrameResult(source_id=CLIP, index=i, pts=i / 25, timecode=None, width=8, height=8)
        result.scores = {"sharp": 0.5}
        writer.write_frame(result)
    writer.close(run)
    return stream.getvalue()


def run_section(page: str) -> str:
    match = re.search(r'<section class="run" id="run">.*?</section>', page, re.S)
    assert match
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(0)))


def test_html_interrupted_run_says_interrupted_and_130() -> None:
    page = write_html(interrupted_run())
    assert '<p class="outcome" data-outcome="interrupted" data-exit-code="130">' in page
    text = run_section(page)
    assert "interrupted (exit 130) \u00b7 the report covers only what was scored before the interruption" in text
    assert "INTERRUPTED" in text
    assert "passed" not in text  # no gate failed, but the gates of an interrupted run did not "pass"
    assert not re.search(r"exit code\s+0\b", text)


def test_json_summary_and_jsonl_of_an_interrupted_run_say_interrupted_and_130() -> None:
    run = interrupted_run()
    stream = io.StringIO()
    JsonSummaryWriter(stream, {}).close(run)
    doc = json.loads(stream.getvalue())
    assert doc["run"]["outcome"] == "interrupted" and doc["run"]["exit_code"] == 130
    assert doc["outcome_text"] == ("interrupted (exit 130) \u00b7 the report covers only what was scored before "
                                   "the interruption")
    stream = io.StringIO()
    JsonLinesWriter(stream, {}).close(run)
    record = json.loads(stream.getvalue())
    assert record["type"] == "run" and record["outcome"] == "interrupted" and record["exit_code"] == 130


@pytest.mark.parametrize("outcome,line,gates", [
    ("passed", "passed (exit 0)", "passed"),
    ("gate_failed", "quality gate failed (exit 1)", "failed"),
    ("errors", "errors (exit 2) \u00b7 some inputs or frames could not be scored", "did not pass"),
    ("failed", "failed (exit 2) \u00b7 the run or one of its reports could not be completed", "did not pass"),
    ("terminated", "terminated (exit 143) \u00b7 the report covers only what was scored before the run was terminated",
     "did not pass"),
])
def test_html_summary_line_for_every_ending(outcome: str, line: str, gates: str) -> None:
    sources = {"gate_failed": [source(gate_failures=["mean sharp 0.5 < 0.6"])],
               "errors": [source(errors=[ErrorRecord(CLIP, "moov atom not found", index=None, stage="read")])]}
    run = RunSummary(sources=sources.get(outcome, [source()]), scorers=["sharp"], frames=10)
    if outcome == "failed":
        run.failures.append("html report r.html: No space left on device")
    if outcome in ("failed", "terminated"):
        end_run(run, outcome)
    assert (run.outcome, run.exit_code) == (outcome, CODES[outcome])
    page = write_html(run)
    text = run_section(page)
    assert line in text and f'data-exit-code="{CODES[outcome]}"' in page
    facts = re.search(r"quality gates\s+(.*?)\s+(Run failures|Sources|Scorers)", text)
    assert facts and gates in facts.group(1)
    if outcome == "failed":
        assert "No space left on device" in text


def test_outcome_text_names_the_ending_and_its_exit_code() -> None:
    assert outcome_text("gate_failed", 1) == "quality gate failed (exit 1)"
    assert outcome_text("passed", 0) == "passed (exit 0)"
