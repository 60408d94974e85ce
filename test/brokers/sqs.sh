#!/usr/bin/env bash
# SNS + SQS emulator for the tests: fauxqs (npm) run with Node 22, which it requires (this
# machine's Node is 20). Node 22 is installed from the npm registry into a cache folder outside the
# repo, so it never shadows the project's Node for npm scripts.
#
#   bash test/brokers/sqs.sh start|stop|restart|status
#
# Env: FAUXQS_PORT (default 4566), OMNIQUEUE_CACHE (default ~/.cache/omniqueue).
# Idempotent: `start` does nothing when the emulator already answers.
set -euo pipefail
cd "$(dirname "$0")/../.."

PORT="${FAUXQS_PORT:-4566}"
CACHE="${OMNIQUEUE_CACHE:-$HOME/.cache/omniqueue}"
NODE22_DIR="$CACHE/node22"
NODE22="$NODE22_DIR/node_modules/.bin/node"
PID_FILE="$CACHE/fauxqs-$PORT.pid"
LOG_FILE="$CACHE/fauxqs-$PORT.log"
APP="$PWD/node_modules/fauxqs/dist/app.js"

answers() {
  # Any HTTP answer from the emulator counts (it replies 400 to a bare GET).
  curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/" 2>/dev/null
}

ensure_node22() {
  if [ -x "$NODE22" ] && "$NODE22" -e 'process.exit(+process.versions.node.split(".")[0] >= 22 ? 0 : 1)' 2>/dev/null; then
    return 0
  fi
  mkdir -p "$NODE22_DIR"
  echo "sqs.sh: installing Node 22 from the npm registry into $NODE22_DIR"
  [ -f "$NODE22_DIR/package.json" ] || echo '{"name":"omniqueue-node22","private":true}' >"$NODE22_DIR/package.json"
  npm install --prefix "$NODE22_DIR" --no-audit --no-fund --no-save node@22 >/dev/null
  "$NODE22" -v >/dev/null
}

start() {
  if answers; then
    echo "sqs.sh: fauxqs already answers on 127.0.0.1:$PORT"
    return 0
  fi
  [ -f "$APP" ] || { echo "sqs.sh: $APP missing (run npm ci)" >&2; exit 1; }
  ensure_node22
  mkdir -p "$CACHE"
  # The library entry instead of the CLI: the CLI forces per-request logging.
  FAUXQS_PORT="$PORT" FAUXQS_HOST="127.0.0.1" nohup "$NODE22" --input-type=module \
    -e "const { startFauxqs } = await import(process.argv[1]); await startFauxqs({ logger: false }); console.log('fauxqs ready');" \
    "$APP" >>"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  for _ in $(seq 1 100); do
    if answers; then
      echo "sqs.sh: fauxqs started on 127.0.0.1:$PORT (pid $(cat "$PID_FILE"), log $LOG_FILE)"
      return 0
    fi
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
      echo "sqs.sh: fauxqs exited; last log lines:" >&2
      tail -n 20 "$LOG_FILE" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  echo "sqs.sh: fauxqs did not answer on 127.0.0.1:$PORT within 20 s" >&2
  exit 1
}

stop() {
  if [ -f "$PID_FILE" ]; then
    local pid
    pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid" || true
    fi
    rm -f "$PID_FILE"
    echo "sqs.sh: fauxqs stopped"
  else
    echo "sqs.sh: no fauxqs started by this script on port $PORT"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if answers; then echo "up"; else echo "down"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
