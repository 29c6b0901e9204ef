#!/usr/bin/env bash
# The main job, end to end: set up what is missing, start a daemon, create a sandbox, run a
# command in it, copy a file in and out, delete it, stop the daemon.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
bough=./bough

export BOUGH_HOME=${BOUGH_HOME:-$PWD/.data}
export BOUGH_URL=${BOUGH_URL:-http://127.0.0.1:7878}

$bough setup                      # host packages, guest kernel, base image (cached)
$bough serve --data-dir "$BOUGH_HOME" --listen "$BOUGH_URL" > "$BOUGH_HOME/daemon.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null' EXIT
for _ in $(seq 1 600); do
  $bough ls >/dev/null 2>&1 && break
  kill -0 $daemon 2>/dev/null || { cat "$BOUGH_HOME/daemon.log"; exit 1; }
  sleep 0.5
done

id=$($bough create)
echo "created sandbox $id"
$bough exec "$id" -- uname -a
echo "hello from the host" > /tmp/bough-quickstart.txt
$bough cp /tmp/bough-quickstart.txt "$id:/root/hello.txt"
$bough exec "$id" -- sh -c 'cat /root/hello.txt; echo "and back from the guest" >> /root/hello.txt'
$bough cp "$id:/root/hello.txt" /tmp/bough-quickstart.out
cat /tmp/bough-quickstart.out
$bough ls
$bough rm "$id"
echo "quickstart finished"
