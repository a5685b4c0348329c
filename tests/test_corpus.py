"""The corpus builder (qplug_training.corpus): distortions, pseudo-MOS, splits, text, records, resume.

No network: the "photos" are synthetic, textured numpy images; the fetch script is only tested
for its refusal of reserved packages, which happens before anything is downloaded.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from qplug_training.corpus import build, photos
from qplug_training.corpus.crops import ScaledPhoto, choose_crop
from qplug_training.corpus.distortions import DISTORTIONS, KINDS, as_severity, available, severity_level
from qplug_training.corpus.facts import Applied, build_facts
from qplug_training.corpus.feedback import feedback_text, make_feedback
from qplug_training.corpus.photos import Photo, ReservedSourceError, assign_splits, check_not_reserved
from qplug_training.corpus.pipeline import usable_photos
from qplug_training.corpus.quality import level_of, measure, ms_ssim, pseudo_mos
from qplug_training.corpus.questions import QuestionWriter, write_all
from qplug_training.data import load_records
from qplug_training.data.attributes import analyse
from qplug_training.data.converters import yes_no_answer


def synthetic_photo(h: int = 300, w: int = 400, seed: int = 0) -> np.ndarray:
    """A textured, colourful stand-in for a photo: gradients, gratings, blobs and fine texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    img[..., 0] = 60 + 120 * xx / w  # smooth gradients show banding and exposure
    img[..., 1] = 50 + 110 * yy / h
    img[..., 2] = 140 - 60 * (xx + yy) / (w + h)
    img += 35 * np.sin(xx / 3.1 + yy / 5.3)[..., None]  # fine grating: blur and compression
    texture = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 1.2)
    img += 40 * texture[..., None]
    for _ in range(12):  # blobs with edges, in saturated colours
        cy, cx, r = int(rng.integers(0, h)), int(rng.integers(0, w)), int(rng.integers(8, 40))
        colour = tuple(float(c) for c in rng.integers(20, 235, 3))
        cv2.circle(img, (cx, cy), r, colour, -1, lineType=cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return np.ascontiguousarray(synthetic_photo(seed=1)[30:254, 60:284])


# --------------------------------------------------------------------------- distortions & MOS


@pytest.mark.parametrize("dtype", list(DISTORTIONS))
def test_distortion_changes_image_and_is_monotonic(dtype: str, crop: np.ndarray) -> None:
    if dtype not in available([dtype]):
        pytest.skip(f"ffmpeg lacks the encoder for {dtype}")
    scores = []
    for sev in (0.2, 0.4, 0.6, 0.8, 1.0):
        out, params = DISTORTIONS[dtype](crop, sev, np.random.default_rng(7))
        assert out.shape == crop.shape and out.dtype == np.uint8
        assert not np.array_equal(out, crop), f"{dtype} at {sev} left the image unchanged"
        assert params
        scores.append(pseudo_mos(crop, out))
    # Pseudo-MOS falls as severity rises (a little slack for integer codec parameters).
    for a, b in zip(scores, scores[1:]):
        assert b <= a + 0.03, f"{dtype}: {scores}"
    assert scores[-1] < scores[0] - 0.3, f"{dtype}: {scores}"


def test_ms_ssim_identity_and_small_images(crop: np.ndarray) -> None:
    assert ms_ssim(crop, crop) == pytest.approx(1.0, abs=1e-9)
    tiny = crop[:40, :40]
    assert ms_ssim(tiny, tiny) == pytest.approx(1.0, abs=1e-9)
    noisy = np.clip(tiny.astype(int) + np.random.default_rng(0).normal(0, 20, tiny.shape), 0, 255).astype(np.uint8)
    assert 0.0 < ms_ssim(tiny, noisy) < 1.0


def test_pristine_is_excellent(crop: np.ndarray) -> None:
    m = measure(crop, crop)
    assert m.pseudo_mos > 4.2 and level_of(m.pseudo_mos) == "excellent"


def test_levels_are_equal_bins() -> None:
    assert [level_of(x) for x in (5.0, 4.2, 4.19, 3.4, 3.39, 2.6, 2.59, 1.8, 1.79, 1.0)] == [
        "excellent", "excellent", "good", "good", "fair", "fair", "poor", "poor", "bad", "bad"]


def test_severity_levels() -> None:
    assert as_severity(1) == pytest.approx(0.1) and as_severity(5) == pytest.approx(0.9)
    assert [severity_level(s) for s in (0.0, 0.19, 0.2, 0.5, 0.99, 1.0)] == [1, 1, 2, 3, 5, 5]
    with pytest.raises(ValueError):
        as_severity(1.5)


# --------------------------------------------------------------------------- photos


def test_split_by_photo_is_disjoint_and_spans_sources() -> None:
    items = []
    for source in ("a", "b", "c"):
        for i in range(10):
            sha = f"{source}{i:02d}".encode().hex().ljust(64, "0")
            items.append(Photo(id=f"{source}-{i}", path=f"{source}{i}.jpg", source=source, package=source,
                               licence="x", sha256=sha, width=800, height=600, bytes=1))
    # A duplicate file under another name must land in the same split.
    items.append(Photo(id="a-dup", path="dup.jpg", source="a", package="a", licence="x", sha256=items[0].sha256,
                       width=800, height=600, bytes=1))
    assign_splits(items)
    by_sha: dict[str, set[str]] = {}
    for p in items:
        by_sha.setdefault(p.sha256, set()).add(p.split)
    assert all(len(s) == 1 for s in by_sha.values())
    val = [p for p in items if p.split == "validation"]
    assert {p.source for p in val} == {"a", "b", "c"}
    assert 0.15 <= len(val) / len(items) <= 0.3
    again = assign_splits([Photo(**p.to_dict()) for p in items])
    assert [p.split for p in again] == [p.split for p in items]


@pytest.mark.parametrize("name", ["lomiri-wallpapers", "lomiri-wallpapers-legacy", "digikam-data",
                                  "/srv/pkgs/lomiri-wallpapers_1.0_all.deb", "/data/digikam-data/pics"])
def test_reserved_packages_are_refused(name: str) -> None:
    with pytest.raises(ReservedSourceError):
        check_not_reserved(name)


def test_fetch_cli_refuses_reserved_before_downloading(tmp_path: Path, capsys) -> None:
    rc = photos.main(["--out", str(tmp_path / "p"), "--no-default-sources", "--deb", "digikam-data"])
    assert rc == 2
    assert "reserved" in capsys.readouterr().err
    assert not (tmp_path / "p" / "cache").exists()
    check_not_reserved("plasma-workspace-wallpapers")  # the default sources pass
    assert photos.main(["--out", str(tmp_path / "q"), "--source", "base", "--source", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown source(s) nope" in err and "gcompris" in err and not (tmp_path / "q" / "cache").exists()
    assert set(photos.BASE_SOURCES) < {s.name for s in photos.SOURCES}


# --------------------------------------------------------------------------- text


def _random_facts(rng: random.Random) -> dict:
    families_seen: set[str] = set()
    applied = []
    for t in rng.sample(list(DISTORTIONS), rng.choice((0, 1, 1, 2))):
        if DISTORTIONS[t].family in families_seen:
            continue
        families_seen.add(DISTORTIONS[t].family)
        applied.append(Applied(t, rng.random(), {"hue": "green"} if t == "colour_cast" else {}, rng.uniform(1, 5)))
    mos = min([a.alone_mos for a in applied] + [5.0])
    content = {"brightness": rng.choice(("dark", "bright", "medium")),
               "colour": rng.choice(("monochrome", "muted", "moderate", "colourful")),
               "detail": rng.choice(("rich", "smooth", "moderate")), "flat_areas": rng.random() < 0.5}
    return build_facts(applied, level_of(mos), content)


def test_feedback_text_agrees_with_training_data_analysis() -> None:
    """What qplug_training.data's keyword analysis reads in our text matches the facts we pinned."""
    rng = random.Random(0)
    for i in range(600):
        facts = _random_facts(rng)
        text = feedback_text(facts, str(i))
        assert text == feedback_text(facts, str(i))  # seeded
        found = analyse(text)
        assert found.level == facts["level"], text
        for attr, state in found.attributes.items():
            assert facts["attributes"].get(attr) == state, (attr, state, text)
        for d in facts["distortions"]:
            if d["impact"] != "imperceptible":
                assert len(text.split()) > 6


def test_questions_balanced_and_cover_every_kind() -> None:
    rng = random.Random(1)
    pairs = []
    for i in range(400):
        facts = _random_facts(rng)
        pairs.append((make_feedback(f"img{i}", f"images/{i}.png", facts), facts))
    writer = QuestionWriter(seed=0)
    records = write_all(pairs, writer)
    yes_no = Counter(yes_no_answer(r) for r in records if r.task == "yes_no")
    assert abs(yes_no["yes"] - yes_no["no"]) <= 1
    per_kind = writer.stats()["yes_no_by_kind"]
    for kind in KINDS:
        yes, no = per_kind[kind]["yes"], per_kind[kind]["no"]
        assert yes > 0 and abs(yes - no) <= 1, (kind, yes, no)
    mcq = [r for r in records if r.task == "mcq" and r.id.endswith("/mcq")]
    assert {r.meta["kind"] for r in mcq} == set(KINDS) | {"none"}
    letters = Counter(r.meta["answer"] for r in mcq)
    assert max(letters.values()) - min(letters.values()) <= 1
    qalign = [r for r in records if r.task == "qalign"]
    assert len(qalign) == 400
    assert all(r.turns[0].value.endswith("How would you rate the quality of this image?") for r in qalign)
    assert all(r.turns[1].value == f"The quality of the image is {r.meta['level']}." for r in qalign)


# --------------------------------------------------------------------------- builder


def _make_photo_dir(root: Path) -> Path:
    src = root / "src"
    (src / "photos").mkdir(parents=True)
    items = []
    for i, split in enumerate(("train", "validation")):
        img = synthetic_photo(260 + 20 * i, 330, seed=10 + i)
        path = src / "photos" / f"synth{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        items.append(Photo(id=f"synth{i}", path=f"photos/synth{i}.png", source="synthetic", package="none",
                           licence="CC0", sha256=photos.sha256_file(path), width=330, height=260 + 20 * i,
                           bytes=path.stat().st_size, split=split))
    photos.write_manifest(src, items)
    return src


def test_a_damaged_photo_is_skipped_and_reported_and_the_rest_is_built(tmp_path: Path, capsys) -> None:
    src = _make_photo_dir(tmp_path)
    good = (src / "photos" / "synth0.png").read_bytes()
    (src / "photos" / "synth0.png").write_bytes(good[:len(good) // 3])  # truncated after it was listed
    out = tmp_path / "corpus"
    args = ["--photos", str(src), "--out", str(out), "--crops-per-photo", "1", "--val-crops-per-photo", "1",
            "--variants-per-crop", "2", "--workers", "1", "--seed", "3", "--types", "gaussian_blur,jpeg"]
    assert build.main(args) == 0
    skipped = json.loads((out / "summary.json").read_text())["photos_skipped"]
    assert [s["photo"] for s in skipped] == ["synth0"] and "sha256" in skipped[0]["reason"]
    assert "skip synth0" in capsys.readouterr().out
    metas = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert metas and {m["photo"] for m in metas} == {"synth1"}

    # Mended, it is built on the next run, and nothing is reported any more.
    (src / "photos" / "synth0.png").write_bytes(good)
    assert build.main(args) == 0
    assert json.loads((out / "summary.json").read_text())["photos_skipped"] == []
    assert {json.loads(line)["photo"] for line in (out / "metadata.jsonl").read_text().splitlines()} == {"synth0", "synth1"}

    # A file that is the listed one (same sha256) but does not decode whole is left out too.
    listed = json.loads((src / "manifest.json").read_text())
    (src / "photos" / "synth1.png").write_bytes(good[:len(good) // 2])
    for photo in listed["photos"]:
        if photo["id"] == "synth1":
            photo["sha256"] = photos.sha256_file(src / "photos" / "synth1.png")
    (src / "manifest.json").write_text(json.dumps(listed))
    usable, skipped = usable_photos(*photos.load_manifest(src))
    assert [p.id for p in usable] == ["synth0"] and skipped[0]["photo"] == "synth1" and "truncated" in skipped[0]["reason"]

    # No photo left to build from: a clear error, exit 2.
    (src / "photos" / "synth0.png").write_bytes(b"not a png")
    assert build.main(args + ["--out", str(tmp_path / "other")]) == 2
    assert "no photo" in capsys.readouterr().err


def test_builder_end_to_end_and_resume(tmp_path: Path) -> None:
    src = _make_photo_dir(tmp_path)
    out = tmp_path / "corpus"
    args = ["--photos", str(src), "--out", str(out), "--crops-per-photo", "2", "--val-crops-per-photo", "1",
            "--variants-per-crop", "4", "--workers", "1", "--seed", "3",
            "--types", "gaussian_blur,gaussian_noise,jpeg,underexposure,colour_cast,banding"]
    assert build.main(args) == 0
    metas = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    fbs = [json.loads(line) for line in (out / "feedback.jsonl").read_text().splitlines()]
    assert len(metas) == len(fbs) == 4 * 2 + 4 * 1
    assert {m["split"] for m in metas} == {"train", "validation"}
    assert all(m["photo"] == "synth0" for m in metas if m["split"] == "train")
    for m in metas:
        assert (out / m["image"]).is_file() and m["image"].endswith(".png")
        assert 1.0 <= m["pseudo_mos"] <= 5.0 and m["level"] == level_of(m["pseudo_mos"])
        assert len(m["crop"]["box"]) == 4
        for d in m["distortions"]:
            assert 0.0 <= d["severity"] <= 1.0 and 1 <= d["level"] <= 5 and d["params"]
    for name in ("train.json", "val.json"):
        records, report = load_records(out / name, image_root=out)
        assert records and report.total_skipped == 0, str(report)
        answers = Counter(yes_no_answer(r) for r in records if r.task == "yes_no")
        assert abs(answers["yes"] - answers["no"]) <= 1
        assert {"pathway", "yes_no", "qalign", "mcq"} <= {r.task for r in records}
        assert all(not Path(r.image).is_absolute() for r in records)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 12 and summary["records"]["train"]["skipped"] == 0

    # Resume: nothing new is written, not even the record files.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert build.main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps

    # A lost image is rebuilt, identically.
    lost = out / metas[1]["image"]
    before = cv2.imread(str(lost))
    lost.unlink()
    assert build.main(args) == 0
    assert np.array_equal(cv2.imread(str(lost)), before)
    assert len((out / "metadata.jsonl").read_text().splitlines()) == 12

    # Other settings in the same folder are refused rather than mixed.
    assert build.main(args[:-2] + ["--types", "jpeg"]) == 2


# --------------------------------------------------------------------------- photos inside Qt archives


def _write_rcc(path: Path, files: dict[str, tuple[bytes, bool]]) -> None:
    """A version-2 Qt resource archive with one folder ``img`` holding ``files`` (name -> bytes, zlib?)."""
    import struct
    import zlib

    names = b""
    name_offsets: dict[str, int] = {}
    for name in ["img", *files]:
        name_offsets[name] = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(name), 0) + encoded
    data = b""
    data_offsets: dict[str, int] = {}
    for name, (blob, compressed) in files.items():
        stored = struct.pack(">I", len(blob)) + zlib.compress(blob) if compressed else blob
        data_offsets[name] = len(data)
        data += struct.pack(">I", len(stored)) + stored
    mtime = b"\0" * 8
    tree = struct.pack(">iHii", 0, 2, 1, 1) + mtime + struct.pack(">iHii", name_offsets["img"], 2, len(files), 2) + mtime
    for name, (_, compressed) in files.items():
        tree += struct.pack(">iHhhi", name_offsets[name], 1 if compressed else 0, 0, 0, data_offsets[name]) + mtime
    header = 20
    path.write_bytes(b"qres" + struct.pack(">4i", 2, header, header + len(tree), header + len(tree) + len(data))
                     + tree + data + names)


def test_qt_resource_archives_are_read_with_compressed_members_and_clear_errors(tmp_path: Path) -> None:
    from qplug_training.corpus.qtrcc import ResourceError, read_resources

    archive = tmp_path / "a.rcc"
    _write_rcc(archive, {"plain.png": (b"P" * 50, False), "packed.webp": (bytes(range(256)) * 4, True)})
    assert dict(read_resources(archive)) == {"/img/plain.png": b"P" * 50, "/img/packed.webp": bytes(range(256)) * 4}
    truncated = tmp_path / "t.rcc"
    truncated.write_bytes(archive.read_bytes()[:60])
    with pytest.raises(ResourceError, match="t.rcc"):
        list(read_resources(truncated))
    (tmp_path / "n.rcc").write_bytes(b"not an archive at all")
    with pytest.raises(ResourceError, match="n.rcc.*qres"):
        list(read_resources(tmp_path / "n.rcc"))


def _webp(image: np.ndarray, quality: int) -> bytes:
    ok, buf = cv2.imencode(".webp", image, [cv2.IMWRITE_WEBP_QUALITY, quality])
    assert ok
    return buf.tobytes()


def test_lossy_photos_from_archives_are_filtered_and_kept_downscaled(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    detailed = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    flat = np.full((600, 800, 3), 120, np.uint8)
    tree = tmp_path / "cache" / "deb" / "edu-data"  # an unpacked package, as fetch_deb leaves it
    (tree / "rcc").mkdir(parents=True)
    _write_rcc(tree / "rcc" / "zoo.rcc", {"horse.webp": (_webp(detailed, 90), False),
                                          "fog.webp": (_webp(flat, 30), False),  # ~0 bits per pixel: left out
                                          "Gogh_starry.webp": (_webp(detailed, 90), False),
                                          "notes.txt": (b"not a photo", True)})
    _write_rcc(tree / "rcc" / "farm.rcc", {"horse.webp": (_webp(detailed[::-1], 90), True)})
    source = photos.Source("edu", "deb", "edu-data", ("*/img/*.webp",), "CC0", archives=("rcc/*.rcc",),
                           exclude=("*Gogh*",), min_bits_per_pixel=0.5, max_scale=0.5)
    found = photos.fetch_sources(tmp_path / "out", [source], cache=tmp_path / "cache")
    # Two horses (same name, different pictures) both kept under distinct ids; fog and the painting left out.
    assert sorted(p.id for p in found)[0] == "edu-horse" and len(found) == 2 and len({p.id for p in found}) == 2
    assert all(p.max_scale == 0.5 and p.width == 800 and p.small for p in found)  # 600 px at 0.5x < 512
    assert all((tmp_path / "out" / p.path).suffix == ".webp" for p in found)

    # Crops of such a photo come from half size or smaller, never from its own (lossy) pixels.
    scaled = ScaledPhoto(photos.load_rgb(tmp_path / "out" / found[0].path))
    for seed in range(6):
        crop, pixels = choose_crop(scaled, 224, np.random.default_rng(seed), max_factor=found[0].max_scale)
        assert crop.factor <= 0.5 and pixels.shape == (224, 224, 3)
    with pytest.raises(ValueError, match="no scale at or below 0.25x"):
        choose_crop(scaled, 224, np.random.default_rng(0), max_factor=0.25)
    full_size = Photo(**{**found[0].to_dict(), "max_scale": 1.0})
    assert build.crops_for(found[0], 32, 224) < build.crops_for(full_size, 32, 224)
