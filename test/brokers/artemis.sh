#!/usr/bin/env bash
# A real Apache ActiveMQ Artemis broker for the tests.
#
#   bash test/brokers/artemis.sh start|stop|restart|status
#
# The binary distribution comes from Maven Central only (org.apache.activemq:apache-artemis,
# classifier bin, tar.gz), fetched by Maven (`dependency:copy`) into a cache folder outside the
# repository:  ${OMNIQUEUE_CACHE:-$HOME/.cache/omniqueue}/artemis
# It is unpacked there and a broker instance is made with `artemis create`: loopback only, no web
# console, login required (user/password omniqueue/omniqueue), NIO journal without fsync, small
# heap. Its AMQP acceptor listens on 127.0.0.1:5673 (5672 is RabbitMQ's), the core acceptor on
# 127.0.0.1:61617. Address settings: max-delivery-attempts -1 (OmniQueue's retry policy decides
# when to dead-letter), redelivery-delay 0. `start` is idempotent: a broker that answers is left alone.
#
# Environment:
#   OMNIQUEUE_CACHE           cache root (default ~/.cache/omniqueue)
#   OMNIQUEUE_ARTEMIS_VERSION Artemis version from Maven Central (default 2.40.0)
#   OMNIQUEUE_ARTEMIS_HEAP    JVM heap (default 512M)
#   OMNIQUEUE_ARTEMIS_WAIT    seconds to wait for the AMQP port (default 90)
set -euo pipefail

VERSION="${OMNIQUEUE_ARTEMIS_VERSION:-2.40.0}"
CACHE="${OMNIQUEUE_CACHE:-$HOME/.cache/omniqueue}/artemis"
HOME_DIR="$CACHE/apache-artemis-$VERSION"
INSTANCE="$CACHE/instance-$VERSION"
HEAP="${OMNIQUEUE_ARTEMIS_HEAP:-512M}"
WAIT="${OMNIQUEUE_ARTEMIS_WAIT:-90}"
HOST=127.0.0.1
AMQP_PORT=5673
LOGFILE="$CACHE/artemis.out"
PIDFILE="$CACHE/artemis.pid"

say() { echo "[artemis.sh] $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q 'org.apache.activemq.artemis' "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

resolve() {
  if [[ -x "$HOME_DIR/bin/artemis" ]]; then return 0; fi
  command -v mvn >/dev/null || { say "mvn not found: install Maven (apt-get install maven)"; exit 1; }
  command -v java >/dev/null || { say "java not found: install a JDK 17+"; exit 1; }
  mkdir -p "$CACHE/dist"
  say "resolving org.apache.activemq:apache-artemis:$VERSION:bin (tar.gz, ~60 MB) from Maven Central into $CACHE/dist …"
  mvn -B -ntp org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.apache.activemq:apache-artemis:$VERSION:tar.gz:bin" -DoutputDirectory="$CACHE/dist" 2>&1 \
    | tee "$CACHE/resolve.log" | grep --line-buffered -E 'Copying|BUILD|ERROR' | sed -u 's/^/[artemis.sh][mvn] /' >&2 || true
  grep -q 'BUILD SUCCESS' "$CACHE/resolve.log" || { say "Maven could not fetch Artemis $VERSION; see $CACHE/resolve.log"; exit 1; }
  say "unpacking into $HOME_DIR …"
  tar -xzf "$CACHE/dist/apache-artemis-$VERSION-bin.tar.gz" -C "$CACHE"
}

create_instance() {
  if [[ -f "$INSTANCE/.complete" ]]; then return 0; fi
  rm -rf "$INSTANCE"
  say "creating the broker instance in $INSTANCE …"
  "$HOME_DIR/bin/artemis" create "$INSTANCE" --silent --force \
    --user omniqueue --password omniqueue --require-login \
    --host "$HOST" --port-offset 1 --no-web --no-hornetq-acceptor --no-mqtt-acceptor --no-stomp-acceptor \
    --nio --no-fsync --no-autotune --java-memory "$HEAP" >"$CACHE/create.log" 2>&1 \
    || { say "artemis create failed; see $CACHE/create.log"; exit 1; }
  # OmniQueue's retry policy decides when a message is dead-lettered, not the broker's counter.
  sed -i 's#<max-delivery-attempts>[0-9-]*</max-delivery-attempts>#<max-delivery-attempts>-1</max-delivery-attempts>#' "$INSTANCE/etc/broker.xml"
  grep -q '<max-delivery-attempts>-1' "$INSTANCE/etc/broker.xml" \
    || sed -i 's#<address-setting match="\#">#<address-setting match="\#">\n            <max-delivery-attempts>-1</max-delivery-attempts>#' "$INSTANCE/etc/broker.xml"
  touch "$INSTANCE/.complete"
}

start() {
  if port_open "$AMQP_PORT"; then say "already answering on $HOST:$AMQP_PORT"; return 0; fi
  resolve
  create_instance
  say "starting Artemis $VERSION (heap $HEAP), AMQP on $HOST:$AMQP_PORT …"
  nohup "$INSTANCE/bin/artemis" run >"$LOGFILE" 2>&1 &
  echo $! >"$PIDFILE"
  local waited=0
  while ! port_open "$AMQP_PORT"; do
    if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then say "Artemis exited; last lines of $LOGFILE:"; tail -20 "$LOGFILE" >&2; exit 1; fi
    if (( waited >= WAIT )); then say "Artemis did not answer on $HOST:$AMQP_PORT within ${WAIT}s; see $LOGFILE"; exit 1; fi
    sleep 1; waited=$((waited + 1))
    (( waited % 10 == 0 )) && say "still waiting ($waited s) …"
  done
  say "ready on $HOST:$AMQP_PORT after ${waited}s"
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    say "stopping pid $pid …"
    kill "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && { say "still running, SIGKILL"; kill -9 "$pid"; }
  else
    say "not running (no pid of ours)"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if port_open "$AMQP_PORT"; then echo "artemis: answering on $HOST:$AMQP_PORT"; else echo "artemis: not running"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
