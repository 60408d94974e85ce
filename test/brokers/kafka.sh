#!/usr/bin/env bash
# A real single-node Apache Kafka 4.x (KRaft, combined broker+controller) for the tests.
#
#   bash test/brokers/kafka.sh start|stop|restart|status|reset
#
# Jars come from Maven Central only, resolved by Maven (`dependency:copy-dependencies` on a small
# generated pom) into a cache folder outside the repository:
#   ${OMNIQUEUE_CACHE:-$HOME/.cache/omniqueue}/kafka
# Nothing else is downloaded and no jar is committed. The broker listens on 127.0.0.1:9092
# (PLAINTEXT) and its controller on 127.0.0.1:9093; data and logs live in the cache folder, one
# instance folder per port (`instance-9092`). `start` is idempotent: a broker that already answers
# is left alone. start/stop/restart hold a lock per instance, so concurrent callers (parallel test
# files) never start two brokers. `reset` stops the instance and deletes its data.
#
# Environment:
#   OMNIQUEUE_CACHE         cache root (default ~/.cache/omniqueue)
#   OMNIQUEUE_KAFKA_VERSION Kafka version from Maven Central (default 4.3.1)
#   OMNIQUEUE_KAFKA_HEAP    JVM heap (default 512m)
#   OMNIQUEUE_KAFKA_WAIT    seconds to wait for the broker to answer (default 90)
#   OMNIQUEUE_KAFKA_PORT    broker port (default 9092; the controller takes the next port). A second
#                           port gives a second, independent broker (the restart fault test uses one)
set -euo pipefail

VERSION="${OMNIQUEUE_KAFKA_VERSION:-4.3.1}"
CACHE="${OMNIQUEUE_CACHE:-$HOME/.cache/omniqueue}/kafka"
LIBS="$CACHE/lib-$VERSION"
HOST=127.0.0.1
PORT="${OMNIQUEUE_KAFKA_PORT:-9092}"
CONTROLLER_PORT=$((PORT + 1))
INSTANCE="$CACHE/instance-$PORT"
DATA="$INSTANCE/data"
CONF="$INSTANCE/server.properties"
LOG4J="$INSTANCE/log4j2.properties"
PIDFILE="$INSTANCE/kafka.pid"
LOGFILE="$INSTANCE/kafka.out"
HEAP="${OMNIQUEUE_KAFKA_HEAP:-512m}"
WAIT="${OMNIQUEUE_KAFKA_WAIT:-90}"

say() { echo "[kafka.sh] $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

running_pid() {
  local pid=""
  [[ -f "$PIDFILE" ]] && pid="$(cat "$PIDFILE")"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -qa "kafka.Kafka" "/proc/$pid/cmdline" 2>/dev/null; then
    echo "$pid"; return 0
  fi
  # The JVM of this instance (its config path is unique), should the pid file be stale.
  pid="$(pgrep -f -- "kafka.Kafka $CONF" | head -1 || true)"
  [[ -n "$pid" ]] || return 1
  echo "$pid" >"$PIDFILE"
  echo "$pid"
}

lock() {
  mkdir -p "$INSTANCE"
  exec 9>"$INSTANCE/lock"
  flock -w 600 9 || { say "could not take $INSTANCE/lock"; exit 1; }
}

resolve() {
  if [[ -f "$LIBS/.complete" ]]; then return 0; fi
  mkdir -p "$CACHE"
  exec 8>"$CACHE/resolve.lock"
  flock -w 900 8 || { say "could not take $CACHE/resolve.lock"; exit 1; }
  if [[ -f "$LIBS/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || { say "mvn not found: install Maven (apt-get install maven)"; exit 1; }
  command -v java >/dev/null || { say "java not found: install a JDK 17+"; exit 1; }
  mkdir -p "$CACHE/resolve"
  say "resolving org.apache.kafka:kafka_2.13:$VERSION and its runtime dependencies from Maven Central into $LIBS (the first run downloads about 60 MB)…"
  cat >"$CACHE/resolve/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>omniqueue.test</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-server</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.25.4</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.25.4</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>2.0.17</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$LIBS.tmp"
  # Progress: Maven prints one line per artifact it downloads; show them as they come.
  if ! mvn -B -f "$CACHE/resolve/pom.xml" -Dmdep.includeScope=runtime -DoutputDirectory="$LIBS.tmp" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies 2>&1 \
      | tee "$CACHE/resolve.log" | grep --line-buffered -E 'Downloaded from.*\.jar|BUILD|ERROR' | sed -u 's/^/[kafka.sh][mvn] /' >&2; then
    :
  fi
  if ! grep -q 'BUILD SUCCESS' "$CACHE/resolve.log"; then
    say "Maven could not resolve Kafka $VERSION; see $CACHE/resolve.log"
    exit 1
  fi
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  touch "$LIBS/.complete"
  say "resolved $(ls "$LIBS"/*.jar | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
}

write_config() {
  mkdir -p "$DATA"
  cat >"$CONF.tmp" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
auto.create.topics.enable=true
delete.topic.enable=true
# Tests join and leave groups constantly: no initial rebalance delay.
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=67108864
log.flush.interval.messages=9223372036854775807
EOF
  mv "$CONF.tmp" "$CONF"
  cat >"$LOG4J" <<EOF
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.kafka-request.name = kafka.request.logger
logger.kafka-request.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
EOF
}

java_run() {
  # shellcheck disable=SC2086
  java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$LOG4J" -cp "$LIBS/*" "$@"
}

format_storage() {
  if [[ -f "$DATA/meta.properties" ]]; then return 0; fi
  local cluster_id
  cluster_id="$(java_run kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)"
  say "formatting storage in $DATA (cluster id $cluster_id)"
  java_run kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$CONF" --ignore-formatted >>"$LOGFILE" 2>&1 || {
    say "storage format failed; see $LOGFILE"; tail -20 "$LOGFILE" >&2; exit 1; }
}

answers() {
  # The port is open and the broker answers a metadata request (ApiVersions + Metadata through the
  # node client in the repo when available, else a raw ApiVersions request over bash's /dev/tcp).
  port_open "$PORT" || return 1
  api_versions_ok
}

api_versions_ok() {
  # Raw ApiVersions v0 request: size(4) api_key=18(2) api_version=0(2) correlation_id=1(4) client_id=""(2)
  local reply
  reply="$(exec 3<>"/dev/tcp/$HOST/$PORT" && printf '\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x01\x00\x00' >&3 \
    && timeout 3 head -c 10 <&3 | od -An -tx1 | tr -d ' \n')" 2>/dev/null || return 1
  # size(4) correlation_id=1(4) error_code=0(2)
  [[ "${reply:8:8}" == "00000001" && "${reply:16:4}" == "0000" ]]
}

start() {
  mkdir -p "$CACHE" "$INSTANCE"
  if pid="$(running_pid)" && answers; then
    say "already running (pid $pid) on $HOST:$PORT"
    return 0
  fi
  if ! running_pid >/dev/null && port_open "$PORT"; then
    if api_versions_ok; then say "a Kafka broker not started by this script already answers on $HOST:$PORT; using it"; return 0; fi
    say "port $PORT is taken by something that is not Kafka"; exit 1
  fi
  local t0=$SECONDS
  resolve
  write_config
  if ! running_pid >/dev/null; then
    format_storage
    say "starting Kafka $VERSION on $HOST:$PORT (controller $CONTROLLER_PORT, heap $HEAP, log $LOGFILE)"
    : >"$LOGFILE"
    # Own session (setsid) so that the broker outlives the shell or test process that started it.
    (cd "$INSTANCE" && exec setsid java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$LOG4J" -cp "$LIBS/*" kafka.Kafka "$CONF" >>"$LOGFILE" 2>&1 </dev/null 8>&- 9>&-) &
    echo $! >"$PIDFILE"
    sleep 0.3
    # setsid forks when the subshell leads its process group: running_pid then records the JVM's pid.
    running_pid >/dev/null || true
  fi
  local deadline=$((SECONDS + WAIT))
  while ((SECONDS < deadline)); do
    if answers; then
      say "ready after $((SECONDS - t0)) s (pid $(cat "$PIDFILE"))"
      return 0
    fi
    if ! running_pid >/dev/null; then
      say "Kafka exited during start-up; last lines of $LOGFILE:"; tail -30 "$LOGFILE" >&2; exit 1
    fi
    sleep 0.5
  done
  say "Kafka did not answer within $WAIT s; last lines of $LOGFILE:"; tail -30 "$LOGFILE" >&2
  exit 1
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    say "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  say "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "did not stop in 30 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$PIDFILE"
  for _ in $(seq 1 20); do port_open "$PORT" || break; sleep 0.25; done
  say "stopped"
}

status() {
  if pid="$(running_pid)" && answers; then
    echo "running (pid $pid) on $HOST:$PORT"
  elif running_pid >/dev/null; then
    echo "starting or unhealthy (pid $(cat "$PIDFILE"))"; return 1
  else
    echo "stopped"; return 3
  fi
}

reset() {
  stop
  say "deleting $DATA"
  rm -rf "$DATA"
}

case "${1:-}" in
  start) lock; start ;;
  stop) lock; stop ;;
  restart) lock; stop; start ;;
  reset) lock; reset ;;
  status) status ;;
  resolve) resolve ;;
  *) echo "usage: $0 start|stop|restart|status|reset" >&2; exit 2 ;;
esac
