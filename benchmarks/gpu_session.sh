#!/usr/bin/env bash
# The GPU figures in one call on a bare GPU machine (Python 3.12, torch and CUDA jax installed,
# no network), from the repository root, with the GPU reference bundle's wheel folder (mujoco,
# mujoco-mjx, dm_control, playground, brax, gymnasium, ..., and its opt/ subfolder; ~14 MB) copied
# into the checkout's ignored .whl/:
#
#     bash benchmarks/gpu_session.sh OUT [PART ...]
#
# It installs the wheels into /tmp/site (once per machine), then runs benchmarks/gpu_paper_scale.py
# once per part, in order of what the figures decide, most first (default below): PPO `paper` on
# playground:CheetahRun through the scan and Brax PPO beside it (issue 20's target), the compiled
# update (`compile_update`, and `cuda_graph` step or epoch), the decoder fit, GoRL-FM's stage boundary, the
# CUDA tests, then the rest. A process per part: a part that crashes the process (an XLA abort)
# or hangs (stopped after PART_TIMEOUT seconds, default 300) costs no other part its figures.
# Each part's figures are in OUT/gpu_paper_scale.json as soon as it ends, so a call stopped at its
# time limit still returns every part it finished; the log is OUT/gpu_paper_scale.log and the
# GPU's description OUT/nvidia-smi.txt. Extra options for the script go after the parts, e.g.
# `bash benchmarks/gpu_session.sh OUT ppo --iterations 3`. At the end, issue 20's targets against
# the figures (benchmarks/gpu_report.py, which reads only the JSON: run it again anywhere) are
# printed and written to OUT/gpu_report.md. A session may split the parts over two calls (each
# gets an empty $OUT; the machine, and /tmp/site with it, stays warm for a call that follows at
# once): `python benchmarks/gpu_report.py CALL1_FILES CALL2_FILES` reads both as one.
set -uo pipefail
out=${1:?usage: bash benchmarks/gpu_session.sh OUT [PART ...]}
shift
parts=() opts=()
for a in "$@"; do
    if [ ${#opts[@]} -gt 0 ] || [[ $a == -* ]]; then opts+=("$a"); else parts+=("$a"); fi
done
[ ${#parts[@]} -gt 0 ] || parts=(ppo brax compile fit gorl cuda_tests divergence precision checkpoint raw sharded)
mkdir -p "$out"
if [ ! -d /tmp/site/mujoco_playground ]; then
    extra=()  # the cuda_tests part's pytest (and xdist), from the bundle's opt/, where the machine has none
    for m in pytest pluggy iniconfig pygments packaging execnet xdist:pytest_xdist; do
        python3 -c "import ${m%%:*}" 2>/dev/null || extra+=(.whl/opt/"${m##*:}"-*.whl)
    done
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
        .whl/*.whl .whl/opt/jaxopt-*.whl .whl/opt/trimesh-*.whl "${extra[@]}" || exit
fi
export GPU_CALL_ID="$(hostname)-$(date -u +%Y%m%dT%H%M%SZ)"  # one per call: the report flags ratios across calls
export PYTHONPATH=/tmp/site:$PWD MUJOCO_GL=disable XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
# What the parts import, checked once: playground 0.2.0 imports tqdm, and pillow through brax.io,
# neither of them in the bundle (the machine it was measured on had them). A missing one is named
# here in one line (OUT/imports.txt); the parts that need it then fail in seconds each.
python3 - <<'PY' 2>&1 | tee "$out/imports.txt"
import importlib
missing = []
for name in ("torch", "jax", "mujoco", "mujoco.mjx", "dm_control.suite", "mujoco_playground", "brax", "yaml"):
    try:
        importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - any failure to import is what this reports
        missing.append(f"{name} ({type(e).__name__}: {e})")
print("imports: " + ("all there" if not missing else "MISSING " + "; ".join(missing)))
PY
for part in "${parts[@]}"; do
    timeout -k 10 "${PART_TIMEOUT:-300}" python3 benchmarks/gpu_paper_scale.py --out "$out" --parts "$part" "${opts[@]}"
    rc=$?
    [ $rc -eq 0 ] || echo "[$part] ended with exit status $rc (124: stopped after ${PART_TIMEOUT:-300} s)"
done 2>&1 | tee "$out/gpu_paper_scale.log"
python3 benchmarks/gpu_report.py "$out" | tee "$out/gpu_report.md"
