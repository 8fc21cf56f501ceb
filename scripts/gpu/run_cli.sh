#!/usr/bin/env bash
# The node CLIs on the GPU machine (no npm there): builds the addon with CMake (the same
# CMakeLists that cmake-js drives; N-API headers from node-api-headers) and runs `generate`
# and `solve` with --device cuda on a fixture model (token ids only: it has no tokenizer),
# then the same generate on the CPU to compare ids, and q8 K/V (refused with cuda, the CPU under
# auto). Needs: a node binary on PATH, node_modules/node-addon-api and node_modules/node-api-headers,
# and dist/cli (npm run build).
set -eu
BUILD=native/build
cmake -S native -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DHW_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90a \
  -DCMAKE_JS_VERSION=7 -DCMAKE_JS_INC="$PWD/node_modules/node-api-headers/include" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/$BUILD/Release" >/tmp/addon-build.log 2>&1
cmake --build "$BUILD" --target hogwild_native -j 16 >>/tmp/addon-build.log 2>&1 || { tail -30 /tmp/addon-build.log; exit 1; }
M=test/fixtures/qwen3-tiny
echo "== generate --device cuda"
node dist/cli/generate.js --model $M --device cuda --prompt-ids 1,2,3,4 --max-tokens 24 --temperature 0 --json | tee /tmp/gen-cuda.json
echo "== generate --device cpu"
node dist/cli/generate.js --model $M --device cpu --prompt-ids 1,2,3,4 --max-tokens 24 --temperature 0 --json | tee /tmp/gen-cpu.json
node -e 'const a=require("/tmp/gen-cuda.json"),b=require("/tmp/gen-cpu.json");if(JSON.stringify(a.ids)!==JSON.stringify(b.ids)){console.error("generate: CUDA and CPU ids differ");process.exit(1)}console.log("generate: CUDA ids = CPU ids ("+a.ids.length+")")'
echo "== solve --device cuda (raw, 3 workers, combined)"
node dist/cli/solve.js --model $M --device cuda --raw --prompt-ids 1,2,3 --worker-ids "5;6,7;8" --steps 12 --layout combined --step-ids 9,19,29 --json | head -c 1500
echo
echo "== solve --device auto"
node dist/cli/solve.js --model $M --device auto --raw --prompt-ids 1,2,3 --worker-ids "5;7" --steps 6 --json | head -c 600
echo
echo "== generate --device cuda --kv-dtype q8: refused (q8 K/V are CPU-only)"
if node dist/cli/generate.js --model $M --device cuda --kv-dtype q8 --prompt-ids 1,2,3,4 --max-tokens 4 --json >/tmp/q8-cuda.out 2>&1; then
  echo "generate accepted --kv-dtype q8 on cuda"
  exit 1
fi
tail -2 /tmp/q8-cuda.out
echo "== generate --device auto --kv-dtype q8: the CPU, with a notice"
node dist/cli/generate.js --model $M --device auto --kv-dtype q8 --prompt-ids 1,2,3,4 --max-tokens 8 --temperature 0 --json 2>/tmp/q8-auto.err | head -c 400
echo
cat /tmp/q8-auto.err
