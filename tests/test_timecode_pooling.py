"""Pure helpers: timecodes, time parsing, pooling, gates."""

from __future__ import annotations

import pytest

from qplug.errors import UsageError
from qplug.gates import Gate
from qplug.pooling import Pooler, harmonic_mean, percentile
from qplug.timecode import frames_to_timecode, parse_time, pts_to_timecode, seconds_to_clock


@pytest.mark.parametrize("frame,fps,expected", [
    (0, 25, "00:00:00:00"), (24, 25, "00:00:00:24"), (25, 25, "00:00:01:00"), (90000, 25, "01:00:00:00"),
    # SMPTE 12M drop-frame at 29.97: labels ;00 and ;01 are skipped each minute except every tenth.
    (1799, 30000 / 1001, "00:00:59;29"), (1800, 30000 / 1001, "00:01:00;02"),
    (17982, 30000 / 1001, "00:10:00;00"), (107892, 30000 / 1001, "01:00:00;00"),
    (3600, 60000 / 1001, "00:01:00;04"), (1800, 30, "00:01:00:00"), (24, 24000 / 1001, "00:00:01:00"),
])
def test_timecodes(frame, fps, expected):
    assert frames_to_timecode(frame, fps) == expected


def test_pts_timecode_and_clock():
    assert pts_to_timecode(1.0, 25) == "00:00:01:00"
    assert pts_to_timecode(0.52, 25) == "00:00:00:13"
    assert pts_to_timecode(3723.5, None) is None
    assert seconds_to_clock(3723.5) == "01:02:03.500"
    assert seconds_to_clock(0.0004) == "00:00:00.000"


def test_parse_time():
    assert parse_time("12.5") == 12.5
    assert parse_time("01:02.5") == 62.5
    assert parse_time("01:02:03.25") == 3723.25
    for bad in ("", "a", "1::2", "-3", "1:2:3:4"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_pooling_matches_numpy_conventions():
    np = pytest.importorskip("numpy")
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    pooler = Pooler()
    for v in values + [None, float("nan")]:
        pooler.add(v)
    pooled = pooler.pooled()
    assert pooler.missing == 2 and pooled["count"] == 8
    assert pooled["mean"] == pytest.approx(np.mean(values))
    for q in (5, 10, 90, 95):
        assert pooled[f"p{q}"] == pytest.approx(np.percentile(values, q))
    assert pooled["std"] == pytest.approx(np.std(values))
    assert pooled["hmean"] == pytest.approx(len(values) / sum(1 / v for v in values))
    assert harmonic_mean([1.0, 0.0]) is None
    assert Pooler().pooled()["mean"] is None
    assert percentile([7.0], 5) == 7.0


def test_gates_parse_and_check():
    gate = Gate.parse("sharpness.p10=1.5")
    assert (gate.scorer, gate.pool, gate.value, gate.under) == ("sharpness", "p10", 1.5, True)
    assert gate.check({"sharpness": {"p10": 1.0}}) == "sharpness.p10 = 1 is under 1.5"
    assert gate.check({"sharpness": {"p10": 2.0}}) is None
    assert "no value" in gate.check({})
    over = Gate.parse("noise=4", under=False)
    assert over.pool == "mean" and over.check({"noise": {"mean": 5.0}}).endswith("over 4")
    for bad in ("sharpness", "=3", "sharpness=abc"):
        with pytest.raises(UsageError):
            Gate.parse(bad)
    # Third-party scorer names hold dots: only a known pool after the last dot is a pool.
    dotted = Gate.parse("example.edge_density=0.2")
    assert (dotted.scorer, dotted.pool) == ("example.edge_density", "mean")
    assert Gate.parse("example.edge_density.p10=0.2").scorer == "example.edge_density"
