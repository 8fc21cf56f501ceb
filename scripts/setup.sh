#!/bin/sh
# Sets up a fresh Debian or Ubuntu machine (Node 20+ and npm already there) for both of the
# README's commands, and is quick when everything is in place:
#   1. the system packages, through apt when some are missing (as root, else with sudo; a clear
#      message when neither works): the engine's build tools, clang + clang-format (fuzzing and
#      the C++ style check), and Chromium + libkrb5-dev + pkg-config (the VS Code end-to-end
#      suite);
#   2. npm ci when node_modules is missing or older than package-lock.json (its install script
#      builds the native addon), else an incremental build of the addon;
#   3. the bundles.
# `npm run setup` runs it; .ci/run does too, so CI follows the newcomer's route.
set -eu
cd "$(dirname "$0")/.."

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- Node
command -v node >/dev/null 2>&1 || die "Node.js 20 or newer is needed (https://nodejs.org, or your distribution's nodejs package)"
command -v npm >/dev/null 2>&1 || die "npm is needed (it comes with Node.js)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js 20 or newer is needed; this is $(node --version)"

# ---------------------------------------------------------------- system packages
PACKAGES="cmake g++ make python3 clang clang-format chromium libkrb5-dev pkg-config"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_install() {
  missing=""
  for p in "$@"; do installed "$p" || missing="$missing $p"; done
  [ -n "$missing" ] || return 0
  command -v apt-get >/dev/null 2>&1 || die "missing system packages:$missing; this machine has no apt-get, install them with its package manager"
  if [ "$(id -u)" -eq 0 ]; then
    as_root=""
  elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
  else
    die "missing system packages:$missing; run as root: apt-get update && apt-get install -y$missing"
  fi
  say "installing system packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  $as_root apt-get update -qq || die "apt-get update failed; install the packages yourself: apt-get install -y$missing"
  # shellcheck disable=SC2086 # the list is meant to split
  $as_root apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    die "apt-get could not install:$missing (on Ubuntu, Chromium comes as a snap: install it and set HOGWILD_CHROMIUM)"
}

apt_install $PACKAGES
# libFuzzer's runtime is a package of its own, named after clang's version.
fuzzer_rt=$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a)
if [ ! -f "$fuzzer_rt" ]; then
  clang_major=$(clang++ -dumpversion | cut -d. -f1)
  apt_install "libclang-rt-$clang_major-dev"
fi

# ---------------------------------------------------------------- npm and the build
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci (builds the native engine through the install script)"
  npm ci --no-audit --no-fund
else
  say "node_modules is up to date; building the native engine (incremental)"
  npm run --silent build:native
fi
node scripts/build.mjs --quiet
say "ready"
