#!/bin/sh
# Healthy when the role this container runs answers (the role is the argument, or what entrypoint.sh recorded).
set -eu

role="${1:-$(cat /tmp/k2-role 2>/dev/null || echo other)}"

http_json() {  # GET $1; with $2, the JSON body's "status" must equal it
    python - "$@" <<'PY'
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=5) as response:
    body = response.read()
if len(sys.argv) > 2 and json.loads(body).get("status") != sys.argv[2]:
    sys.exit(f"{sys.argv[1]}: status is not {sys.argv[2]}")
PY
}

case "$role" in
    code-server)  exec dagster api grpc-health-check --port 4000 ;;
    webserver)    http_json http://127.0.0.1:3000/server_info ;;
    daemon)       exec dagster-daemon liveness-check ;;
    spark-master) http_json http://127.0.0.1:8080/json/ ALIVE ;;
    spark-worker) http_json http://127.0.0.1:8081/json/ ;;
    *)            exit 0 ;;
esac
