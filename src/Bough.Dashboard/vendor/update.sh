#!/usr/bin/env bash
# Installs the pinned browser libraries (package.json, package-lock.json) and copies the files the dashboard
# serves into ../assets, where the build embeds them. Run after changing a version; commit both.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"
npm ci --no-audit --no-fund --ignore-scripts
mkdir -p ../assets/xterm
cp node_modules/@xterm/xterm/lib/xterm.js node_modules/@xterm/xterm/css/xterm.css node_modules/@xterm/xterm/LICENSE ../assets/xterm/
cp node_modules/@xterm/addon-fit/lib/addon-fit.js ../assets/xterm/
rm -rf node_modules
