#!/usr/bin/env bash
# qplug's default model from nothing in one pass, within issue 16's 2 h on this project's 2-core CPU
# machine: the photos (fetched from Debian packages and PyPI wheels, never the reserved
# lomiri-wallpapers-* / digikam-data), one corpus (v2's images with v5's questions, built in one go
# instead of v2's images then v5's questions) and two training stages (training/recipes/qplug_fast.toml,
# qplug_fast_stage2.toml, bf16 autocast). The six-stage chain (scripts/reproduce_default_model.sh) is
# what the shipped v5 came from; this is its short form, measured against it in the model card.
# Resumable: run it again after an interruption (a finished step is skipped, a stage resumes from its
# last checkpoint). Each step's wall time goes to RUNS_DIR/times.tsv (a step interrupted and run again
# counts its last run only). The evaluation set is not built here: it is the base corpus's
# (scripts/build_corpus.sh's first step; bench/eval_default_model.py --corpus).
#   scripts/reproduce_fast.sh [--v2] [CORPUS_DIR [RUNS_DIR]]   (default /work/corpus-fast, /work/runs-fast)
# --v2: the v2 chain (training/recipes/qplug_fast_v2*.toml say what changes): negated wordings in the
# corpus from the start, the newer speed levers spent on more steps; defaults /work/corpus-fast2,
# /work/runs-fast2.
# The photo download cache is CORPUS_DIR/cache unless QPLUG_PHOTO_CACHE names another (build_corpus.sh's
# /work/corpus/cache holds the same files).
set -euo pipefail
version=1
if [ "${1:-}" = "--v2" ]; then
  version=2
  shift
fi
if [ "$version" = 2 ]; then
  corpus=${1:-/work/corpus-fast2}
  runs=${2:-/work/runs-fast2}
  extra_build=(--negated-wordings)
  recipe1=training/recipes/qplug_fast_v2.toml run1=qplug-fast2
  recipe2=training/recipes/qplug_fast_v2_stage2.toml run2=qplug-fast2-stage2
  name=qplug-corpus-fast2
else
  corpus=${1:-/work/corpus-fast}
  runs=${2:-/work/runs-fast}
  extra_build=()
  recipe1=training/recipes/qplug_fast.toml run1=qplug-fast
  recipe2=training/recipes/qplug_fast_stage2.toml run2=qplug-fast-stage2
  name=qplug-corpus-fast
fi
cache=${QPLUG_PHOTO_CACHE:-$corpus/cache}
mkdir -p "$corpus" "$runs"
times="$runs/times.tsv"

step() {  # name done_marker command...: run a step unless its output exists, and time it
  local name=$1 done=$2
  shift 2
  if [ -e "$done" ]; then
    echo "$name: done before, skipped"
    return
  fi
  local start=$SECONDS
  "$@"
  printf '%s\t%s\n' "$name" "$((SECONDS - start))" >> "$times"
}

types=$(python -c "from qplug_training.corpus.distortions import default_types; print(','.join(default_types()))")
step tower /work/pretrained/efficientnet-lite0.safetensors \
  python -m qplug_training.pretrained --out /work/pretrained
photos() {
  python -m qplug_training.corpus.photos --out "$corpus/source" --cache "$cache"
  python -m qplug_training.corpus.procedural --into "$corpus/source" --count 24
}
step photos "$corpus/source/.procedural-done" photos
touch "$corpus/source/.procedural-done"
step build "$corpus/summary.json" python -m qplug_training.corpus.build --photos "$corpus/source" \
  --out "$corpus" --workers 2 --types "$types,fade_black,fade_flat" --grain-share 0.2 \
  --strong-blur-share 0.15 --paraphrase-share 0.8 --blur-ceiling --plain-share 0.25 \
  --composed-wordings --broad-wordings --extra-mcq 2 --describe-share 0.5 "${extra_build[@]}"
step pack "$corpus/train_packed.json" python -m qplug_training.corpus.pack "$corpus/train.json" \
  --out "$corpus/train_packed.json" --views 2 --tasks qalign:1,yes_no:3,mcq:3,what_how:1,pathway:2

train() {  # recipe run_dir [override...]
  local recipe=$1 run=$2
  shift 2
  local resume=()
  [ -d "$run/checkpoints" ] && resume=(--resume)
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} python -m qplug_training.train "$recipe" -o run.output_dir="$run" \
    -o data.image_root="$corpus" -o data.sources="[{path=\"$corpus/train_packed.json\", name=\"$name\"}]" \
    "${resume[@]}" "$@"
}
step stage1 "$runs/$run1/export/model/model.safetensors" train "$recipe1" "$runs/$run1"
step stage2 "$runs/$run2/export/model/model.safetensors" \
  train "$recipe2" "$runs/$run2" -o model.path="$runs/$run1/export/model"
echo "model: $runs/$run2/export/model (qplug score --model DIR ...)"
awk -F'\t' '{s += $2; printf "%-8s %6d s\n", $1, $2} END {printf "total    %6d s\n", s}' "$times"
