#!/usr/bin/env bash
# Records sample.pcapng from real servers and clients on loopback.
# Needs root (or dumpcap's capabilities) and Debian's tshark; redis-server is used when installed.
set -euo pipefail
cd "$(dirname "$0")"
http=18080 redis=16379
dumpcap -q -i lo -f "tcp port $http or tcp port $redis" -w /tmp/sonde-sample.pcapng &
cap=$!
sleep 2 # dumpcap has no readiness signal; it only matters when recording by hand
go run ./traffic "$http" "$redis"
sleep 1
kill -INT "$cap"; wait "$cap" || true
cp /tmp/sonde-sample.pcapng sample.pcapng
echo "recorded $(tshark -r sample.pcapng 2>/dev/null | wc -l) packets into sample.pcapng"
