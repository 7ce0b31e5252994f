#!/usr/bin/env bash
# Re-runs telnetlib3-fingerprint 5.0.1 against fake-telnetd scenarios (loopback only) and
# stores records/<case>.json, logs/<case>.log; prints a summary line per case (also appended to summary.tsv).
# usage: tests/oracle/run-oracle.sh [CASE...]   CASE = scenario[:full] | telnetlib3-server[:full]
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
py=${IACSCOPE_PYTHON_BIN:-$root/target/py/bin}
fake=${FAKE_TELNETD:-$root/target/h-tests/debug/fake-telnetd}
jobs=${JOBS:-4}
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
  mapfile -t cases < <("$fake" --list | awk '{print $1}')
  cases+=(telnetlib3-server telnetlib3-server:full silent:full mush:full)
fi
one() {
  local case=$1 name=${1%%:*} extra=() srv port out
  [ "$case" != "$name" ] && extra=(--scan-type=full)
  local tag=${case/:/-}
  if [ "$name" = telnetlib3-server ]; then
    port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
    "$py/telnetlib3-server" 127.0.0.1 "$port" >/dev/null 2>&1 &
    srv=$!
    for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  else
    coproc FK { exec "$fake" --scenario "$name"; }
    srv=$FK_PID
    read -r _ addr <&"${FK[0]}"
    port=${addr##*:}
  fi
  local t0=$(date +%s.%N)
  timeout 120 "$py/telnetlib3-fingerprint" 127.0.0.1 "$port" "${extra[@]}" --silent \
    --save-json "$here/records/$tag.json" --loglevel=debug --logfile "$here/logs/$tag.log" >/dev/null 2>&1
  local rc=$? t1=$(date +%s.%N)
  kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null
  local fp=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["server-probe"]["fingerprint"])' "$here/records/$tag.json" 2>/dev/null)
  printf '%s\t%s\t%.2f\t%s\n' "$tag" "${fp:-none}" "$(echo "$t1 - $t0" | bc)" "$rc"
}
export -f one; export here py fake
printf '%s\n' "${cases[@]}" | xargs -P "$jobs" -I{} bash -c 'one {}' | sort | tee -a "$here/summary.tsv"
