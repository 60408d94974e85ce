#!/usr/bin/env bash
# A real Apache Pulsar standalone (broker + one bookie + RocksDB metadata store, one JVM) for the
# tests, with Pulsar's WebSocket service on.
#
#   bash test/brokers/pulsar.sh start|stop|restart|status
#
# Jars come from Maven Central only (`org.apache.pulsar:pulsar-broker` and `pulsar-websocket` with
# their runtime dependencies), resolved by Maven (`dependency:copy-dependencies` on a small generated
# pom) into a cache folder outside the repository:
#   ${OMNIQUEUE_CACHE:-$HOME/.cache/omniqueue}/pulsar
# Nothing else is downloaded and no jar is committed. The configuration file is ours (written on
# every start): loopback only, small heap, functions worker and stream storage off, WebSocket
# service on, metadata in RocksDB. Data and logs live in the cache folder. `start` is idempotent:
# a broker that already answers is left alone. `start` waits until the admin API answers
# (GET /admin/v2/clusters) and the WebSocket service is mounted.
#
# Environment:
#   OMNIQUEUE_CACHE             cache root (default ~/.cache/omniqueue)
#   OMNIQUEUE_PULSAR_VERSION    Pulsar version from Maven Central (default 4.2.4)
#   OMNIQUEUE_PULSAR_HEAP       JVM heap (default 768m)
#   OMNIQUEUE_PULSAR_WEB_PORT   admin/WebSocket HTTP port (default 8080, or 18080 when 8080 is taken)
#   OMNIQUEUE_PULSAR_PORT       binary protocol port (default 6650)
#   OMNIQUEUE_PULSAR_BK_PORT    bookie port (default 3181)
#   OMNIQUEUE_PULSAR_WAIT       seconds to wait for the broker to answer (default 240)
set -euo pipefail

VERSION="${OMNIQUEUE_PULSAR_VERSION:-4.2.4}"
CACHE="${OMNIQUEUE_CACHE:-$HOME/.cache/omniqueue}/pulsar"
LIBS="$CACHE/lib-$VERSION"
DATA="$CACHE/data"
CONF="$CACHE/standalone.conf"
LOG4J="$CACHE/log4j2.xml"
PIDFILE="$CACHE/pulsar.pid"
PORTFILE="$CACHE/web.port"
LOGFILE="$CACHE/pulsar.out"
HOST=127.0.0.1
PORT="${OMNIQUEUE_PULSAR_PORT:-6650}"
BK_PORT="${OMNIQUEUE_PULSAR_BK_PORT:-3181}"
HEAP="${OMNIQUEUE_PULSAR_HEAP:-768m}"
WAIT="${OMNIQUEUE_PULSAR_WAIT:-240}"
MAIN=org.apache.pulsar.PulsarStandaloneStarter

say() { echo "[pulsar.sh] $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && grep -q "$MAIN" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
}

# The web port: the one recorded by the running broker, else the asked one, else 8080 when free,
# else 18080.
web_port() {
  if [[ -n "${OMNIQUEUE_PULSAR_WEB_PORT:-}" ]]; then echo "$OMNIQUEUE_PULSAR_WEB_PORT"; return; fi
  if [[ -f "$PORTFILE" ]]; then cat "$PORTFILE"; return; fi
  if port_open 8080; then echo 18080; else echo 8080; fi
}

resolve() {
  if [[ -f "$LIBS/.complete" ]]; then return 0; fi
  command -v mvn >/dev/null || { say "mvn not found: install Maven (apt-get install maven)"; exit 1; }
  command -v java >/dev/null || { say "java not found: install a JDK 17+"; exit 1; }
  mkdir -p "$CACHE/resolve"
  say "resolving org.apache.pulsar:pulsar-broker:$VERSION and its runtime dependencies from Maven Central into $LIBS (first run downloads ~250 MB, a few minutes)…"
  cat >"$CACHE/resolve/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>omniqueue.test</groupId>
  <artifactId>pulsar-standalone-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <!-- The versions Pulsar itself is built and shipped with (its parent pom's dependencyManagement):
       without it, Maven's nearest-wins picks mismatched OpenTelemetry/Netty/Jetty modules. -->
  <dependencyManagement>
    <dependencies>
      <dependency><groupId>org.apache.pulsar</groupId><artifactId>pulsar</artifactId><version>$VERSION</version><type>pom</type><scope>import</scope></dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency><groupId>org.apache.pulsar</groupId><artifactId>pulsar-broker</artifactId><version>$VERSION</version>
      <exclusions>
        <!-- etcd metadata store client: not used (metadata lives in RocksDB here) -->
        <exclusion><groupId>org.apache.pulsar</groupId><artifactId>jetcd-core-shaded</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency><groupId>org.apache.pulsar</groupId><artifactId>pulsar-websocket</artifactId><version>$VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>2.25.4</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>2.25.4</version></dependency>
  </dependencies>
</project>
EOF
  # The Pulsar poms name extra repositories that are not reachable here: send every lookup to Central.
  cat >"$CACHE/resolve/settings.xml" <<EOF
<settings><mirrors><mirror><id>central-only</id><mirrorOf>*</mirrorOf><url>https://repo.maven.apache.org/maven2</url></mirror></mirrors></settings>
EOF
  rm -rf "$LIBS.tmp"
  # Progress: Maven prints one line per artifact it downloads; show them as they come.
  if ! mvn -B -s "$CACHE/resolve/settings.xml" -f "$CACHE/resolve/pom.xml" -Dmdep.includeScope=runtime -DoutputDirectory="$LIBS.tmp" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies 2>&1 \
      | tee "$CACHE/resolve.log" | grep --line-buffered -E 'Downloaded from.*\.jar|BUILD|ERROR' | sed -u 's/^/[pulsar.sh][mvn] /' >&2; then
    :
  fi
  if ! grep -q 'BUILD SUCCESS' "$CACHE/resolve.log"; then
    say "Maven could not resolve Pulsar $VERSION; see $CACHE/resolve.log"
    exit 1
  fi
  rm -rf "$LIBS"
  mv "$LIBS.tmp" "$LIBS"
  touch "$LIBS/.complete"
  say "resolved $(ls "$LIBS"/*.jar | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
}

write_config() {
  mkdir -p "$DATA"
  local web="$1"
  cat >"$CONF" <<EOF
# Written by test/brokers/pulsar.sh on every start; edit the script, not this file.
# Broker (org.apache.pulsar.broker.ServiceConfiguration); unset keys keep Pulsar's defaults.
clusterName=standalone
bindAddress=$HOST
advertisedAddress=$HOST
brokerServicePort=$PORT
webServicePort=$web
webSocketServiceEnabled=true
functionsWorkerEnabled=false
transactionCoordinatorEnabled=false
enablePackagesManagement=false
allowAutoTopicCreation=true
allowAutoTopicCreationType=non-partitioned
allowAutoSubscriptionCreation=true
# Topics outlive their last producer/consumer: tests publish before a group connects.
brokerDeleteInactiveTopicsEnabled=false
# Negative acks and unacked messages are redelivered; delayed delivery (deliverAt) on.
delayedDeliveryEnabled=true
delayedDeliveryTickTimeMillis=100
# Never deliver a delayed message before its time (non-strict trackers may be up to one tick early).
isDelayedDeliveryDeliverAtTimeStrict=true
managedLedgerDefaultEnsembleSize=1
managedLedgerDefaultWriteQuorum=1
managedLedgerDefaultAckQuorum=1
managedLedgerCacheSizeMB=64
managedLedgerMaxEntriesPerLedger=50000
managedLedgerMinLedgerRolloverTimeMinutes=0
numIOThreads=2
numHttpServerThreads=8
numOrderedExecutorThreads=2
numExecutorThreadPoolSize=2
numCacheExecutorThreadPoolSize=1
bookkeeperNumberOfChannelsPerBookie=1
loadBalancerEnabled=false
loadBalancerReportUpdateMinIntervalMillis=60000
exposeTopicLevelMetricsInPrometheus=false
brokerShutdownTimeoutMs=5000
# Bookie (org.apache.bookkeeper.conf.ServerConfiguration), read from this same file.
journalSyncData=false
journalMaxGroupWaitMSec=1
dbStorage_writeCacheMaxSizeMb=32
dbStorage_readAheadCacheMaxSizeMb=16
dbStorage_rocksDB_blockCacheSize=16777216
diskUsageThreshold=0.99
diskUsageWarnThreshold=0.98
diskCheckInterval=60000
numAddWorkerThreads=1
numReadWorkerThreads=1
numJournalCallbackThreads=1
httpServerEnabled=false
# Bookie on loopback, on the fixed bookie port (BKCluster uses --bookkeeper-port only with ephemeral ports allowed).
listeningInterface=lo
allowLoopback=true
allowEphemeralPorts=true
EOF
  cat >"$LOG4J" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders>
    <Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="%d{ISO8601} %p [%t] %c{1} - %m%n"/></Console>
  </Appenders>
  <Loggers>
    <Logger name="org.apache.pulsar.PulsarStandalone" level="info"/>
    <Logger name="org.apache.pulsar.broker.PulsarService" level="info"/>
    <Root level="warn"><AppenderRef ref="out"/></Root>
  </Loggers>
</Configuration>
EOF
}

# The admin API answers and the WebSocket service is mounted.
answers() {
  local web
  web="$(web_port)"
  port_open "$web" || return 1
  curl -fsS --max-time 3 "http://$HOST:$web/admin/v2/clusters" 2>/dev/null | grep -q standalone || return 1
  # The WebSocket servlet answers a plain GET on its path with 4xx, not 404-from-admin; a 404 means not mounted yet.
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$HOST:$web/ws/v2/producer/persistent/public/default/omniqueue-healthcheck" 2>/dev/null)"
  [[ "$code" != "000" && "$code" != "404" ]]
}

start() {
  mkdir -p "$CACHE"
  if pid="$(running_pid)" && answers; then
    say "already running (pid $pid) on $HOST:$PORT, admin and WebSocket on http://$HOST:$(web_port)"
    return 0
  fi
  if ! running_pid >/dev/null; then
    rm -f "$PORTFILE"
    local web
    web="$(web_port)"
    if port_open "$web" || port_open "$PORT" || port_open "$BK_PORT"; then
      if answers; then say "a Pulsar not started by this script already answers on http://$HOST:$web; using it"; echo "$web" >"$PORTFILE"; return 0; fi
      say "port $web, $PORT or $BK_PORT is taken by something that is not this Pulsar"; exit 1
    fi
  fi
  local t0=$SECONDS
  resolve
  if ! running_pid >/dev/null; then
    local web
    web="$(web_port)"
    write_config "$web"
    echo "$web" >"$PORTFILE"
    say "starting Pulsar $VERSION standalone: broker $HOST:$PORT, admin+WebSocket http://$HOST:$web, bookie $BK_PORT, heap $HEAP (log $LOGFILE)"
    : >"$LOGFILE"
    # Own session (setsid) so that the broker outlives the shell or test process that started it.
    (cd "$CACHE" && exec setsid java -Xms256m -Xmx"$HEAP" -XX:MaxDirectMemorySize=512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:TieredStopAtLevel=1 -XX:CICompilerCount=2 -Xshare:auto -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true \
      --add-opens java.base/java.io=ALL-UNNAMED --add-opens java.base/java.util.zip=ALL-UNNAMED --add-opens java.base/sun.net=ALL-UNNAMED \
      --add-opens java.management/sun.management=ALL-UNNAMED --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED \
      --add-opens java.base/jdk.internal.platform=ALL-UNNAMED --add-opens java.base/java.lang=ALL-UNNAMED \
      --add-opens java.base/java.nio=ALL-UNNAMED --add-opens java.base/jdk.internal.misc=ALL-UNNAMED \
      -Dio.netty.tryReflectionSetAccessible=true -Dlog4j2.configurationFile="$LOG4J" -Dpulsar.log.dir="$CACHE" \
      -cp "$LIBS/*" $MAIN --config "$CONF" --no-functions-worker --no-stream-storage \
      --metadata-dir "$DATA/metadata" --bookkeeper-dir "$DATA/bookkeeper" --bookkeeper-port "$BK_PORT" \
      >>"$LOGFILE" 2>&1 </dev/null) &
    echo $! >"$PIDFILE"
    sleep 0.3
    # setsid forks when the subshell leads its process group: record the JVM's own pid then.
    if ! running_pid >/dev/null; then pgrep -f -- "$MAIN --config $CONF" | head -1 >"$PIDFILE" || true; fi
  fi
  local deadline=$((SECONDS + WAIT)) next=$((SECONDS + 15))
  while ((SECONDS < deadline)); do
    if answers; then
      say "ready after $((SECONDS - t0)) s (pid $(cat "$PIDFILE"))"
      return 0
    fi
    if ! running_pid >/dev/null; then
      say "Pulsar exited during start-up; last lines of $LOGFILE:"; tail -40 "$LOGFILE" >&2; exit 1
    fi
    if ((SECONDS >= next)); then say "still starting ($((SECONDS - t0)) s)…"; next=$((SECONDS + 15)); fi
    sleep 1
  done
  say "Pulsar did not answer within $WAIT s; last lines of $LOGFILE:"; tail -40 "$LOGFILE" >&2
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
  for _ in $(seq 1 20); do port_open "$PORT" || port_open "$BK_PORT" || break; sleep 0.25; done
  say "stopped"
}

status() {
  if pid="$(running_pid)" && answers; then
    echo "running (pid $pid) on $HOST:$PORT, admin and WebSocket on http://$HOST:$(web_port)"
  elif running_pid >/dev/null; then
    echo "starting or unhealthy (pid $(cat "$PIDFILE"))"; return 1
  else
    echo "stopped"; return 3
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  resolve) resolve ;;
  url) echo "http://$HOST:$(web_port)" ;;
  *) echo "usage: $0 start|stop|restart|status|url" >&2; exit 2 ;;
esac
