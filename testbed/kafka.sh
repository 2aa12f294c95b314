#!/usr/bin/env bash
# kp test bed: a real Apache Kafka (KRaft) cluster run from Maven Central jars: 4.1.1 by
# default, or another version with KP_KAFKA_VERSION (3.9.x and 4.x; see below).
#
#   testbed/kafka.sh fetch                         download jars into .testbed/jars (cached)
#   testbed/kafka.sh start 1|3                     wipe, format and start 1 or 3 nodes, wait until ready
#   testbed/kafka.sh stop                          SIGTERM, SIGKILL after grace; safe when nothing runs
#   testbed/kafka.sh status
#   testbed/kafka.sh kill-node N                   SIGKILL node N (failure tests)
#   testbed/kafka.sh start-node N                  restart node N (no reformat), wait until ready
#   testbed/kafka.sh create-topic T P RF [--config k=v | k=v ...]
#   testbed/kafka.sh delete-topic T                delete topic T (e.g. a big one, so restarts stay fast)
#   testbed/kafka.sh consume T N [ConsoleConsumer args...]
#   testbed/kafka.sh console-produce T [ConsoleProducer args...]   (reads stdin)
#   testbed/kafka.sh dump-log T PARTITION [NODE]
#   testbed/kafka.sh java CLASS [args...]          any class, testbed classpath, tools logging
#   testbed/kafka.sh jmx OBJECT-NAME ATTR[,ATTR]   read broker MBeans of every running node
#                                                  (one line each: node N OBJECT-NAME:ATTR=VALUE)
#
# Ports (all bound to 127.0.0.1):
#   1 node : PLAINTEXT ${KP_TESTBED_PORT:-39092}, CONTROLLER KP_TESTBED_PORT+1 (39093)
#   3 nodes: node n PLAINTEXT 3n092, CONTROLLER 3n093  (31092/31093, 32092/32093, 33092/33093)
#            i.e. KP_TESTBED_BASE(30092) + n*1000; override with KP_TESTBED_BASE.
#   secured listeners (KP_TESTBED_SECURITY=1, the default) beside PLAINTEXT port P of each node:
#            SASL_SSL P+2 (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN, OAUTHBEARER with unsecured
#            JWTs; sessions expire after 10 s: connections.max.reauth.ms), SSL P+3 (client
#            certificate required), SASL_PLAINTEXT P+4 (PLAIN, SCRAM-SHA-256), EXPIRED_SSL P+5
#            and NOTYET_SSL P+6 (TLS with a broker certificate expired / not yet valid).
#   JMX (no auth, 127.0.0.1 only) on P+7 of each node: broker metrics for `jmx`.
#            Certificates are made per start
#            with openssl in .testbed/cluster/tls (ca.pem, client.pem/.key, client-enc.key,
#            client.p12, ca.p12, other-ca.pem). Users: alice/alice-secret (may write and
#            describe topics and transactional ids prefixed "sec-"; nothing else),
#            admin/admin-secret (super user). StandardAuthorizer; PLAINTEXT clients are
#            User:ANONYMOUS, a super user, so plain tests are unaffected.
# After start, .testbed/cluster/env holds KP_BOOTSTRAP=... and KP_TESTBED_NODES=N
# (and, with security, KP_SASL_SSL_BOOTSTRAP, KP_SSL_BOOTSTRAP, KP_SASL_PLAINTEXT_BOOTSTRAP,
# KP_EXPIRED_SSL_BOOTSTRAP, KP_NOTYET_SSL_BOOTSTRAP, KP_TLS_DIR)
# (source it with `set -a; . .testbed/cluster/env; set +a`).
# Client subcommands use $KP_BOOTSTRAP from the environment if set, else that env file.
#
# Environment knobs:
#   KP_TESTBED_DIR        state dir (default <repo>/.testbed)
#   KP_TESTBED_JARS       jar dir (default $KP_TESTBED_DIR/jars; jars-<version> for other versions)
#   KP_TESTBED_TIMEOUT    seconds to wait for node readiness on start (default 120)
#   KP_TESTBED_RESTART_TIMEOUT seconds to wait for start-node (default 300: a node
#                         restarted after SIGKILL recovers every log it holds first)
#   KP_TESTBED_STOP_GRACE seconds between SIGTERM and SIGKILL on stop (default 20)
#   KP_CONSUME_TIMEOUT_MS ConsoleConsumer --timeout-ms (default 10000)
#   KP_BROKER_HEAP        broker heap opts (default "-Xms256m -Xmx512m")
#   KP_TOOLS_JAVA_OPTS    JVM opts for tools (default "-Xms32m -Xmx512m")
#   KP_TESTBED_SECURITY   1 (default): add the secured listeners, users and ACLs; 0: PLAINTEXT only
#   KP_KAFKA_VERSION      Kafka version (default 4.1.1; subcommands other than start and
#                         fetch default to the version `start` recorded in the state dir).
#                         Other versions keep their jars in $KP_TESTBED_DIR/jars-<version> and
#                         differ only where Kafka does: 3.x logs through reload4j
#                         (testbed/log4j-*.properties; jars from testbed/pom-3.x.xml), uses a
#                         static controller.quorum.voters on 1 node too, and names some tools
#                         kafka.admin.* / kafka.tools.*; commands, ports and listeners are the
#                         same. Tested: 3.9.2, 4.1.1, 4.4.0 (scripts/kafka-versions.sh).
#   KP_TESTBED_PROXY      1: add listener PROXIED (plaintext) on P+8 of each node, advertised
#                         as 127.0.0.1:P+9, where a test's fault-injection proxy listens and
#                         forwards to P+8 (tests/faults.rs); the env file then has
#                         KP_PROXIED_BOOTSTRAP (the P+9 addresses). 0 (default): no such listener
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
TB_DIR=${KP_TESTBED_DIR:-$REPO_ROOT/.testbed}
CLUSTER_DIR=$TB_DIR/cluster
DEFAULT_KAFKA_VERSION=4.1.1
# `start` and `fetch` take KP_KAFKA_VERSION or the default; the other subcommands also
# fall back to the version `start` recorded, so they use the running cluster's tools.
KAFKA_VERSION=${KP_KAFKA_VERSION:-}
if [[ -z $KAFKA_VERSION && ${1:-} != start && ${1:-} != fetch ]]; then
    KAFKA_VERSION=$(cat "$CLUSTER_DIR/kafka-version" 2>/dev/null || true)
fi
KAFKA_VERSION=${KAFKA_VERSION:-$DEFAULT_KAFKA_VERSION}
[[ $KAFKA_VERSION =~ ^[34]\.[0-9]+\.[0-9]+$ ]] || { echo "kafka.sh: error: KP_KAFKA_VERSION=$KAFKA_VERSION: expected 3.x.y or 4.x.y" >&2; exit 1; }
if [[ $KAFKA_VERSION == "$DEFAULT_KAFKA_VERSION" ]]; then
    JARS_DIR=${KP_TESTBED_JARS:-$TB_DIR/jars}
else
    JARS_DIR=${KP_TESTBED_JARS:-$TB_DIR/jars-$KAFKA_VERSION}
fi
# Kafka 3.x: log4j 1 (reload4j) and the 3.x tool class names; 4.x: log4j2.
KAFKA3=0
[[ $KAFKA_VERSION == 3.* ]] && KAFKA3=1
ENV_FILE=$CLUSTER_DIR/env
READY_TIMEOUT=${KP_TESTBED_TIMEOUT:-120}
RESTART_TIMEOUT=${KP_TESTBED_RESTART_TIMEOUT:-300}
STOP_GRACE=${KP_TESTBED_STOP_GRACE:-20}
SINGLE_PORT=${KP_TESTBED_PORT:-39092}
MULTI_BASE=${KP_TESTBED_BASE:-30092}
JAVA=${JAVA:-java}
BROKER_HEAP=${KP_BROKER_HEAP:--Xms256m -Xmx512m}
TOOLS_JAVA_OPTS=${KP_TOOLS_JAVA_OPTS:--Xms32m -Xmx512m}
SECURITY=${KP_TESTBED_SECURITY:-1}
PROXY=${KP_TESTBED_PROXY:-0}
TLS_DIR=$CLUSTER_DIR/tls

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
}

# ---------------------------------------------------------------- jars / java

# The slf4j binding: log4j2's for 4.x, reload4j's for 3.x (pom-3.x.xml).
binding_jar() {
    if ((KAFKA3)); then echo slf4j-reload4j-1.7.36.jar; else echo log4j-slf4j-impl-2.24.3.jar; fi
}

jars_present() {
    [[ -f $JARS_DIR/kafka_2.13-$KAFKA_VERSION.jar && -f $JARS_DIR/kafka-tools-$KAFKA_VERSION.jar \
        && -f $JARS_DIR/$(binding_jar) && -f $JARS_DIR/.complete ]]
}

# Logging of a JVM we start: $1 = broker or tools.
log_opts() {
    if ((KAFKA3)); then
        echo "-Dlog4j.configuration=file:$SCRIPT_DIR/log4j-$1.properties"
    else
        echo "-Dlog4j2.configurationFile=$SCRIPT_DIR/log4j2-$1.properties"
    fi
}

# A tool's class: $1 (its 4.x name in kafka-tools) if this version's kafka-tools jar has
# it, else $2 (the older name in the kafka_2.13 jar). Zip entry names are stored
# uncompressed, so grep finds them without unpacking.
tool_class() {
    if LC_ALL=C grep -qF "${1//.//}.class" "$JARS_DIR/kafka-tools-$KAFKA_VERSION.jar"; then
        echo "$1"
    else
        echo "$2"
    fi
}

cmd_fetch() {
    if jars_present; then
        log "jars already present in $JARS_DIR ($(ls "$JARS_DIR"/*.jar | wc -l) jars); skipping fetch"
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
    log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $JARS_DIR ..."
    rm -rf "$JARS_DIR"
    mkdir -p "$JARS_DIR"
    local pom=$SCRIPT_DIR/pom.xml
    ((KAFKA3)) && pom=$SCRIPT_DIR/pom-3.x.xml
    # (sed strips the stray ANSI resets Maven 3.8 prints even with -B -q)
    mvn -B -q -f "$pom" dependency:copy-dependencies -Dkafka.version="$KAFKA_VERSION" \
        -DoutputDirectory="$JARS_DIR" -DincludeScope=runtime -Dstyle.color=never 2>&1 \
        | sed -e $'s/\x1b\\[[0-9;]*m//g' -e '/^$/d' >&2 \
        || die "maven fetch failed"
    jars_present_files=$(ls "$JARS_DIR"/*.jar | wc -l)
    touch "$JARS_DIR/.complete"
    jars_present || die "fetch finished but expected jars are missing in $JARS_DIR"
    log "fetched $jars_present_files jars"
}

need_jars() {
    jars_present || die "Kafka jars missing; run: $0 fetch"
    command -v "$JAVA" >/dev/null || die "java not found (need Java 17+)"
}

# Run a Kafka tool class in the foreground: stdout = tool output, logs -> stderr.
# Short-lived tools get C1-only JIT for faster startup (KP_TOOLS_FAST=0 disables).
run_tool() {
    need_jars
    local fast=()
    [[ ${KP_TOOLS_FAST:-1} == 1 ]] && fast=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC)
    # shellcheck disable=SC2086
    "$JAVA" $TOOLS_JAVA_OPTS "${fast[@]}" -Djava.awt.headless=true \
        "$(log_opts tools)" -cp "$JARS_DIR/*" "$@"
}

# ---------------------------------------------------------------- cluster layout

node_dir() { echo "$CLUSTER_DIR/node$1"; }

# ports_for NODES N -> "plaintext controller"
ports_for() {
    local nodes=$1 n=$2
    if [[ $nodes == 1 ]]; then
        echo "$SINGLE_PORT $((SINGLE_PORT + 1))"
    else
        echo "$((MULTI_BASE + n * 1000)) $((MULTI_BASE + n * 1000 + 1))"
    fi
}

cluster_nodes() {
    [[ -f $ENV_FILE ]] || { echo 0; return; }
    sed -n 's/^KP_TESTBED_NODES=//p' "$ENV_FILE"
}

# bootstrap servers: $KP_BOOTSTRAP, else the env file of the cluster we started.
bootstrap() {
    if [[ -n ${KP_BOOTSTRAP:-} ]]; then
        echo "$KP_BOOTSTRAP"
        return
    fi
    [[ -f $ENV_FILE ]] || die "no cluster: set KP_BOOTSTRAP or run: $0 start 1|3"
    local b
    b=$(sed -n 's/^KP_BOOTSTRAP=//p' "$ENV_FILE")
    [[ -n $b ]] || die "KP_BOOTSTRAP missing in $ENV_FILE"
    echo "$b"
}

# Alive and not a zombie (brokers are reparented to PID 1, which may reap late).
alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $st && $st != Z ]]
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# PID of node n if it is alive and really our broker, else empty.
node_pid() {
    local f pid
    f=$(node_dir "$1")/pid
    [[ -f $f ]] || return 0
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    if alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $(node_dir "$1")/server.properties"; then
        echo "$pid"
    fi
}

# KP_TESTBED_PROXY=1: listener PROXIED (plaintext) on P+8, advertised as P+9 where a
# test's fault-injection proxy listens and forwards to P+8.
proxied() { [[ $PROXY == 1 ]] && echo ",PROXIED://127.0.0.1:$(($1 + $2))"; return 0; }
proxied_map() { [[ $PROXY == 1 ]] && echo ",PROXIED:PLAINTEXT"; return 0; }

write_props() {
    local nodes=$1 n=$2 dir pp cp voters="" i
    dir=$(node_dir "$n")
    read -r pp cp < <(ports_for "$nodes" "$n")
    mkdir -p "$dir/data"
    {
        echo "# generated by testbed/kafka.sh start $nodes"
        echo "process.roles=broker,controller"
        echo "node.id=$n"
        if [[ $SECURITY == 1 ]]; then
            local sec="SASL_SSL://127.0.0.1:$((pp + 2)),SSL://127.0.0.1:$((pp + 3)),SASL_PLAINTEXT://127.0.0.1:$((pp + 4))"
            sec+=",EXPIRED_SSL://127.0.0.1:$((pp + 5)),NOTYET_SSL://127.0.0.1:$((pp + 6))"
            echo "listeners=PLAINTEXT://127.0.0.1:$pp,CONTROLLER://127.0.0.1:$cp,$sec$(proxied "$pp" 8)"
            echo "advertised.listeners=PLAINTEXT://127.0.0.1:$pp,CONTROLLER://127.0.0.1:$cp,$sec$(proxied "$pp" 9)"
            echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,EXPIRED_SSL:SSL,NOTYET_SSL:SSL$(proxied_map)"
            security_props
        else
            echo "listeners=PLAINTEXT://127.0.0.1:$pp,CONTROLLER://127.0.0.1:$cp$(proxied "$pp" 8)"
            echo "advertised.listeners=PLAINTEXT://127.0.0.1:$pp,CONTROLLER://127.0.0.1:$cp$(proxied "$pp" 9)"
            echo "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT$(proxied_map)"
        fi
        echo "inter.broker.listener.name=PLAINTEXT"
        echo "controller.listener.names=CONTROLLER"
        echo "log.dirs=$dir/data"
        if [[ $nodes == 1 ]]; then
            if ((KAFKA3)); then
                echo "controller.quorum.voters=1@127.0.0.1:$cp"
            else
                echo "controller.quorum.bootstrap.servers=127.0.0.1:$cp"
            fi
            echo "num.partitions=1"
            echo "default.replication.factor=1"
            echo "min.insync.replicas=1"
            echo "offsets.topic.replication.factor=1"
            echo "transaction.state.log.replication.factor=1"
            echo "transaction.state.log.min.isr=1"
            echo "share.coordinator.state.topic.replication.factor=1"
            echo "share.coordinator.state.topic.min.isr=1"
        else
            for ((i = 1; i <= nodes; i++)); do
                voters+="${voters:+,}$i@127.0.0.1:$(ports_for "$nodes" "$i" | cut -d' ' -f2)"
            done
            echo "controller.quorum.voters=$voters"
            echo "num.partitions=1"
            echo "default.replication.factor=3"
            echo "min.insync.replicas=2"
            echo "offsets.topic.replication.factor=3"
            echo "transaction.state.log.replication.factor=3"
            echo "transaction.state.log.min.isr=2"
            echo "share.coordinator.state.topic.replication.factor=3"
            echo "share.coordinator.state.topic.min.isr=2"
            echo "unclean.leader.election.enable=false"
        fi
        # Fewer internal-topic partitions: faster first group/txn use on 2 cores.
        echo "offsets.topic.num.partitions=10"
        echo "transaction.state.log.num.partitions=10"
        echo "share.coordinator.state.topic.num.partitions=10"
        echo "auto.create.topics.enable=false"
        echo "group.initial.rebalance.delay.ms=0"
        # Abort transactions left open past transaction.timeout.ms within ~1 s (default 10 s).
        echo "transaction.abort.timed.out.transaction.cleanup.interval.ms=1000"
        echo "num.network.threads=2"
        echo "num.io.threads=4"
        echo "log.cleaner.dedupe.buffer.size=33554432"
    } >"$dir/server.properties"
}

# ---------------------------------------------------------------- security

# One line of a PEM file with its newlines as a literal \n (Java properties).
pem_line() { awk 'BEGIN{ORS="\\n"} {print}' "$1"; }

# Per-run certificates: a CA, a broker certificate for IP 127.0.0.1 only (so "localhost"
# is a hostname mismatch), a client certificate (plain, encrypted and PKCS#12 keys), and a
# second CA nobody trusts.
gen_certs() {
    command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
    mkdir -p "$TLS_DIR"
    (
        cd "$TLS_DIR"
        local q=(-days 30)
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "${q[@]}" -subj /CN=kp-test-ca
        openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem "${q[@]}" -subj /CN=kp-other-ca
        openssl req -newkey rsa:2048 -nodes -keyout broker.rsa.key -out broker.csr -subj /CN=kp-broker
        printf 'subjectAltName=IP:127.0.0.1\n' >broker.ext
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.pem "${q[@]}" -extfile broker.ext
        openssl pkcs8 -topk8 -nocrypt -in broker.rsa.key -out broker.key
        openssl req -newkey rsa:2048 -nodes -keyout client.rsa.key -out client.csr -subj /CN=kp-client
        printf 'extendedKeyUsage=clientAuth\n' >client.ext
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem "${q[@]}" -extfile client.ext
        openssl pkcs8 -topk8 -nocrypt -in client.rsa.key -out client.key
        openssl pkcs8 -topk8 -v2 aes-256-cbc -in client.rsa.key -out client-enc.key -passout pass:client-key-pass
        openssl pkcs12 -export -in client.pem -inkey client.key -certfile ca.pem -out client.p12 -passout pass:client-p12-pass
        openssl pkcs12 -export -nokeys -in ca.pem -out ca.p12 -passout pass:ca-p12-pass
        # The broker key signed by the CA with validity in the past / in the future
        # (listeners EXPIRED_SSL and NOTYET_SSL): the "certificate expired" cases.
        printf '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=ca.srl\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n' >ca.cnf
        : >index.txt
        openssl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key -in broker.csr -out broker-expired.pem -startdate 20200101000000Z -enddate 20200201000000Z -extfile broker.ext
        openssl ca -batch -notext -config ca.cnf -cert ca.pem -keyfile ca.key -in broker.csr -out broker-notyet.pem -startdate 20400101000000Z -enddate 20400201000000Z -extfile broker.ext
    ) >"$TLS_DIR/gen.log" 2>&1 || { cat "$TLS_DIR/gen.log" >&2; die "certificate generation failed"; }
}

security_props() {
    local l m
    echo "sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN,OAUTHBEARER"
    # Unsecured JWTs (alg none), checked by the broker's default validator.
    echo "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"admin\";"
    # SASL sessions expire after 10 s: clients must re-authenticate (KIP-368).
    echo "listener.name.sasl_ssl.connections.max.reauth.ms=10000"
    for l in sasl_ssl sasl_plaintext; do
        for m in scram-sha-256 scram-sha-512; do
            echo "listener.name.$l.$m.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
        done
        echo "listener.name.$l.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" user_admin=\"admin-secret\";"
    done
    # SASL_PLAINTEXT leaves SCRAM-SHA-512 off (the "mechanism not enabled" test case).
    echo "listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,PLAIN"
    echo "ssl.keystore.type=PEM"
    echo "ssl.keystore.key=$(pem_line "$TLS_DIR/broker.key")"
    echo "ssl.keystore.certificate.chain=$(pem_line "$TLS_DIR/broker.pem")"
    echo "ssl.truststore.type=PEM"
    echo "ssl.truststore.certificates=$(pem_line "$TLS_DIR/ca.pem")"
    echo "listener.name.ssl.ssl.client.auth=required"
    echo "listener.name.expired_ssl.ssl.keystore.certificate.chain=$(pem_line "$TLS_DIR/broker-expired.pem")"
    echo "listener.name.notyet_ssl.ssl.keystore.certificate.chain=$(pem_line "$TLS_DIR/broker-notyet.pem")"
    echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    echo "super.users=User:ANONYMOUS;User:admin;User:CN=kp-client"
}

scram_args() {
    [[ $SECURITY == 1 ]] || return 0
    local m u
    for m in SCRAM-SHA-256 SCRAM-SHA-512; do
        for u in alice admin; do
            printf '%s\n' --add-scram "$m=[name=$u,password=$u-secret]"
        done
    done
}

# alice may write and describe topics and transactional ids prefixed "sec-".
create_acls() {
    run_tool "$(tool_class org.apache.kafka.tools.AclCommand kafka.admin.AclCommand)" --bootstrap-server "$1" --add \
        --allow-principal User:alice --operation Write --operation Describe \
        --topic sec- --resource-pattern-type prefixed \
        --transactional-id sec- >"$CLUSTER_DIR/acls.log" 2>&1 \
        || { cat "$CLUSTER_DIR/acls.log" >&2; die "creating ACLs failed"; }
}

# JMX remote on 127.0.0.1:$1 only (registry and RMI on one port), no auth: the
# test bed's broker metrics (e.g. KIP-368 re-authentication counts) for `jmx`.
jmx_opts() {
    echo "-Dcom.sun.management.jmxremote.port=$1 -Dcom.sun.management.jmxremote.rmi.port=$1" \
        "-Dcom.sun.management.jmxremote.host=127.0.0.1 -Djava.rmi.server.hostname=127.0.0.1" \
        "-Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false"
}

launch_node() {
    local n=$1 dir
    dir=$(node_dir "$n")
    [[ -z $(node_pid "$n") ]] || die "node $n already running (pid $(node_pid "$n"))"
    local pp
    pp=$(grep -o 'PLAINTEXT://127.0.0.1:[0-9]*' "$dir/server.properties" | head -1 | sed 's/.*://')
    port_open "$pp" && die "port 127.0.0.1:$pp already in use (another Kafka? try: $0 stop)"
    echo "===== $(date -Is) start node $n =====" >>"$dir/server.log"
    # setsid: brokers survive the caller's process group (e.g. a test harness timeout).
    # shellcheck disable=SC2086,SC2046
    setsid "$JAVA" $BROKER_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
        $(jmx_opts "$((pp + 7))") \
        "$(log_opts broker)" -cp "$JARS_DIR/*" kafka.Kafka "$dir/server.properties" \
        >>"$dir/server.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    log "node $n starting (pid $!, PLAINTEXT 127.0.0.1:$pp, log $dir/server.log)"
}

# Wait until node n logged "Kafka Server started" (in this run) and its port accepts.
wait_ready() {
    local n=$1 deadline dir pp pid start_line
    dir=$(node_dir "$n")
    pp=$(grep -o 'PLAINTEXT://127.0.0.1:[0-9]*' "$dir/server.properties" | head -1 | sed 's/.*://')
    pid=$(<"$dir/pid")
    # only look at log lines after the last "start node" marker
    start_line=$(grep -n '^===== .* start node' "$dir/server.log" | tail -1 | cut -d: -f1)
    deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        if ! alive "$pid"; then
            tail -n 30 "$dir/server.log" >&2
            die "node $n (pid $pid) exited during startup; see $dir/server.log"
        fi
        # awk reads the file itself: `tail | grep -q` under pipefail fails
        # with SIGPIPE once more than a pipe's worth follows the match (a
        # restarted node logs that much), so a started node looked unready.
        if awk -v from="${start_line:-1}" 'NR >= from && /Kafka Server started/ { found = 1; exit }
                END { exit !found }' "$dir/server.log" && port_open "$pp"; then
            return 0
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$dir/server.log" >&2
            die "node $n not ready after ${READY_TIMEOUT}s; see $dir/server.log"
        fi
        sleep 0.5
    done
}

# ---------------------------------------------------------------- subcommands

cmd_start() {
    local nodes=${1:-}
    [[ $nodes == 1 || $nodes == 3 ]] || die "usage: $0 start 1|3"
    need_jars
    cmd_stop quiet
    log "wiping $CLUSTER_DIR"
    rm -rf "$CLUSTER_DIR"
    mkdir -p "$CLUSTER_DIR"
    echo "$KAFKA_VERSION" >"$CLUSTER_DIR/kafka-version"
    local t0=$SECONDS n cluster_id boot="" scram=()
    if [[ $SECURITY == 1 ]]; then
        gen_certs
        mapfile -t scram < <(scram_args)
    fi
    cluster_id=$(run_tool kafka.tools.StorageTool random-uuid | tail -1)
    [[ -n $cluster_id ]] || die "StorageTool random-uuid returned nothing"
    # Format all nodes in parallel (one short JVM each). 1 node: dynamic quorum with
    # --standalone (3.x: static voters); 3 nodes: static controller.quorum.voters.
    local fmt_pids=()
    for ((n = 1; n <= nodes; n++)); do
        write_props "$nodes" "$n"
        local fmt=(format -t "$cluster_id" -c "$(node_dir "$n")/server.properties")
        [[ $nodes == 1 ]] && ((!KAFKA3)) && fmt+=(--standalone)
        fmt+=("${scram[@]}")
        run_tool kafka.tools.StorageTool "${fmt[@]}" >"$(node_dir "$n")/format.log" 2>&1 &
        fmt_pids+=($!)
        boot+="${boot:+,}127.0.0.1:$(ports_for "$nodes" "$n" | cut -d' ' -f1)"
    done
    for ((n = 1; n <= nodes; n++)); do
        wait "${fmt_pids[n - 1]}" \
            || { cat "$(node_dir "$n")/format.log" >&2; die "format of node $n failed"; }
    done
    log "formatted $nodes node(s) in $((SECONDS - t0))s, cluster id $cluster_id"
    for ((n = 1; n <= nodes; n++)); do launch_node "$n"; done
    for ((n = 1; n <= nodes; n++)); do wait_ready "$n"; done
    local envs b=""
    envs=$(printf 'KP_BOOTSTRAP=%s\nKP_TESTBED_NODES=%s\n' "$boot" "$nodes")
    if [[ $PROXY == 1 ]]; then
        for ((n = 1; n <= nodes; n++)); do
            b+="${b:+,}127.0.0.1:$(($(ports_for "$nodes" "$n" | cut -d' ' -f1) + 9))"
        done
        envs+=$(printf '\nKP_PROXIED_BOOTSTRAP=%s' "$b")
    fi
    if [[ $SECURITY == 1 ]]; then
        create_acls "$boot"
        local off name b
        for off in 2:SASL_SSL 3:SSL 4:SASL_PLAINTEXT 5:EXPIRED_SSL 6:NOTYET_SSL; do
            name=${off#*:}
            b=""
            for ((n = 1; n <= nodes; n++)); do
                b+="${b:+,}127.0.0.1:$(($(ports_for "$nodes" "$n" | cut -d' ' -f1) + ${off%%:*}))"
            done
            envs+=$(printf '\nKP_%s_BOOTSTRAP=%s' "$name" "$b")
        done
        envs+=$(printf '\nKP_TLS_DIR=%s' "$TLS_DIR")
    fi
    printf '%s\n' "$envs" >"$ENV_FILE"
    log "Kafka $KAFKA_VERSION: cluster of $nodes node(s) ready in $((SECONDS - t0))s: KP_BOOTSTRAP=$boot (also in $ENV_FILE)"
}

cmd_stop() {
    local quiet=${1:-} n pids=() nodes=() d
    for d in "$CLUSTER_DIR"/node*; do
        [[ -d $d ]] || continue
        n=${d##*/node}
        local pid
        pid=$(node_pid "$n")
        if [[ -n $pid ]]; then
            pids+=("$pid")
            nodes+=("$n")
        fi
    done
    # The env file only describes a running cluster: drop it so tests skip instead of hanging.
    rm -f "$ENV_FILE"
    if ((${#pids[@]} == 0)); then
        [[ $quiet == quiet ]] || log "nothing running"
        rm -f "$CLUSTER_DIR"/node*/pid
        return 0
    fi
    log "stopping node(s) ${nodes[*]} (SIGTERM pids ${pids[*]}, SIGKILL after ${STOP_GRACE}s)"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # A combined broker+controller blocks in controlled shutdown once the controller quorum
    # is gone (seen on 3 nodes when the other two exit first). Such a node can never finish,
    # so SIGKILL it 3 s after fewer than a majority of the cluster's nodes are left.
    local total majority noquorum_at=-1
    total=$(find "$CLUSTER_DIR" -maxdepth 2 -path '*/node*/server.properties' | wc -l)
    majority=$((total / 2 + 1))
    local deadline=$((SECONDS + STOP_GRACE)) live killed=0
    while :; do
        live=()
        for pid in "${pids[@]}"; do alive "$pid" && live+=("$pid"); done
        ((${#live[@]} == 0)) && break
        if ((total > 1 && ${#live[@]} < majority && !killed)); then
            ((noquorum_at >= 0)) || noquorum_at=$SECONDS
            if ((SECONDS - noquorum_at >= 3)); then
                log "controller quorum gone (${#live[@]} of $total nodes left), SIGKILL: ${live[*]}"
                kill -KILL "${live[@]}" 2>/dev/null || true
                killed=1
                deadline=$((SECONDS + 10))
            fi
        fi
        if ((SECONDS >= deadline)); then
            ((killed)) && die "pids ${live[*]} still alive 10s after SIGKILL"
            log "still alive after ${STOP_GRACE}s, SIGKILL: ${live[*]}"
            kill -KILL "${live[@]}" 2>/dev/null || true
            killed=1
            deadline=$((SECONDS + 10))
        fi
        sleep 0.2
    done
    # Exited brokers are zombies until PID 1 reaps them (here: up to ~2 s); wait a little
    # so that `pgrep java` right after stop is clean. Zombies hold no ports or memory.
    deadline=$((SECONDS + 5))
    for pid in "${pids[@]}"; do
        while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.1; done
    done
    rm -f "$CLUSTER_DIR"/node*/pid
    log "stopped"
}

cmd_kill_node() {
    local n=${1:-} pid
    [[ $n =~ ^[0-9]+$ && -d $(node_dir "$n") ]] || die "usage: $0 kill-node N (no node $n in $CLUSTER_DIR)"
    pid=$(node_pid "$n")
    [[ -n $pid ]] || die "node $n is not running"
    kill -KILL "$pid"
    local deadline=$((SECONDS + 10)) pp
    while alive "$pid"; do
        ((SECONDS < deadline)) || die "node $n (pid $pid) did not die after SIGKILL"
        sleep 0.1
    done
    # The JVM's main thread can be a zombie while its other threads still exit
    # and hold the sockets: wait until the listener is gone too, so that an
    # immediate start-node finds its port free.
    pp=$(grep -o 'PLAINTEXT://127.0.0.1:[0-9]*' "$(node_dir "$n")/server.properties" | head -1 | sed 's/.*://')
    while port_open "$pp"; do
        ((SECONDS < deadline + 20)) || die "node $n: port $pp still open 20 s after the process died"
        sleep 0.1
    done
    rm -f "$(node_dir "$n")/pid"
    log "node $n killed (SIGKILL pid $pid)"
}

cmd_start_node() {
    local n=${1:-} t0=$SECONDS
    [[ $n =~ ^[0-9]+$ && -f $(node_dir "$n")/server.properties ]] \
        || die "usage: $0 start-node N (no node $n in $CLUSTER_DIR; run start first)"
    need_jars
    launch_node "$n"
    READY_TIMEOUT=$RESTART_TIMEOUT wait_ready "$n"
    log "node $n ready in $((SECONDS - t0))s"
}

cmd_status() {
    local d n pid pp any=0
    for d in "$CLUSTER_DIR"/node*; do
        [[ -f $d/server.properties ]] || continue
        any=1
        n=${d##*/node}
        pid=$(node_pid "$n")
        pp=$(grep -o 'PLAINTEXT://127.0.0.1:[0-9]*' "$d/server.properties" | head -1 | sed 's/.*://')
        if [[ -n $pid ]]; then
            if port_open "$pp"; then
                echo "node $n: running pid $pid, 127.0.0.1:$pp open"
            else
                echo "node $n: running pid $pid, 127.0.0.1:$pp NOT accepting"
            fi
        else
            echo "node $n: stopped (127.0.0.1:$pp)"
        fi
    done
    ((any)) || echo "no cluster in $CLUSTER_DIR"
    [[ -f $ENV_FILE ]] && cat "$ENV_FILE"
    [[ -n ${KP_BOOTSTRAP:-} ]] && echo "(environment overrides: KP_BOOTSTRAP=$KP_BOOTSTRAP)"
    return 0
}

cmd_create_topic() {
    (($# >= 3)) || die "usage: $0 create-topic NAME PARTITIONS RF [--config k=v | k=v ...]"
    local topic=$1 parts=$2 rf=$3 b extra=() a prev=""
    shift 3
    for a in "$@"; do
        # bare k=v means --config k=v
        if [[ $a =~ ^[a-z][a-z0-9._-]*= && $prev != --config ]]; then
            extra+=(--config "$a")
        else
            extra+=("$a")
        fi
        prev=$a
    done
    b=$(bootstrap)
    run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$b" --create \
        --topic "$topic" --partitions "$parts" --replication-factor "$rf" "${extra[@]}" >&2
    # Wait until metadata shows every partition with a leader.
    local deadline=$((SECONDS + 60)) out led
    while :; do
        out=$(run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$b" --describe --topic "$topic" 2>/dev/null || true)
        led=$(grep -Ec $'\tLeader: [0-9]+' <<<"$out" || true)
        if ((led == parts)); then
            echo "$out"
            return 0
        fi
        ((SECONDS < deadline)) || { echo "$out" >&2; die "topic $topic: only $led/$parts partitions have a leader after 60s"; }
        sleep 0.5
    done
}

cmd_delete_topic() {
    (($# == 1)) || die "usage: $0 delete-topic NAME"
    run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap)" --delete \
        --topic "$1" >&2
}

cmd_consume() {
    (($# >= 2)) || die "usage: $0 consume TOPIC N [ConsoleConsumer args...]"
    local topic=$1 n=$2 iso=(--isolation-level read_committed)
    shift 2
    [[ " $* " == *" --isolation-level "* ]] && iso=()
    # stdout: CreateTime:<ts>\tPartition:<p>\tOffset:<o>\t<headers>\t<key>\t<value>
    # Exit status 3 when fewer than N messages arrived before the timeout
    # (ConsoleConsumer itself exits 0 then, after logging a TimeoutException).
    local b errf rc=0 got
    b=$(bootstrap)
    errf=$(mktemp)
    run_tool org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$b" \
        --topic "$topic" --from-beginning --max-messages "$n" \
        --timeout-ms "${KP_CONSUME_TIMEOUT_MS:-10000}" "${iso[@]}" \
        --property print.timestamp=true --property print.partition=true \
        --property print.offset=true --property print.headers=true \
        --property print.key=true --property print.value=true "$@" 2>"$errf" || rc=$?
    cat "$errf" >&2
    got=$(sed -n 's/^Processed a total of \([0-9]*\) messages.*/\1/p' "$errf" | tail -1)
    rm -f "$errf"
    ((rc == 0)) || return "$rc"
    if [[ -n $got ]] && ((got < n)); then
        log "consume: only $got of $n messages from $topic within ${KP_CONSUME_TIMEOUT_MS:-10000} ms"
        return 3
    fi
}

cmd_console_produce() {
    (($# >= 1)) || die "usage: $0 console-produce TOPIC [ConsoleProducer args...]  (lines on stdin)"
    local topic=$1
    shift
    run_tool "$(tool_class org.apache.kafka.tools.ConsoleProducer kafka.tools.ConsoleProducer)" --bootstrap-server "$(bootstrap)" \
        --topic "$topic" "$@"
}

cmd_dump_log() {
    (($# >= 2)) || die "usage: $0 dump-log TOPIC PARTITION [NODE]"
    local topic=$1 part=$2 node=${3:-} d files=()
    if [[ -z $node ]]; then
        for d in "$CLUSTER_DIR"/node*; do
            if [[ -d $d/data/$topic-$part ]]; then node=${d##*/node}; break; fi
        done
        [[ -n $node ]] || die "no log dir $topic-$part under $CLUSTER_DIR/node*/data"
    fi
    d=$(node_dir "$node")/data/$topic-$part
    [[ -d $d ]] || die "no log dir $d (node $node has no replica of $topic-$part?)"
    shopt -s nullglob
    files=("$d"/*.log)
    ((${#files[@]})) || die "no .log segments in $d"
    log "node $node: ${files[*]}"
    local joined
    joined=$(IFS=,; echo "${files[*]}")
    run_tool "$(tool_class org.apache.kafka.tools.DumpLogSegments kafka.tools.DumpLogSegments)" --files "$joined" --deep-iteration --print-data-log
}

# Reads ATTRS of the MBeans matching OBJECT-NAME (patterns like networkProcessor=*
# allowed) from every running node with Kafka's JmxTool, one line per value:
#   node N OBJECT-NAME:ATTR=VALUE
cmd_jmx() {
    (($# == 2)) || die "usage: $0 jmx OBJECT-NAME ATTR[,ATTR...]"
    local nodes n pp out any=0
    nodes=$(cluster_nodes)
    for ((n = 1; n <= nodes; n++)); do
        [[ -n $(node_pid "$n") ]] || continue
        pp=$(ports_for "$nodes" "$n" | cut -d' ' -f1)
        out=$(run_tool org.apache.kafka.tools.JmxTool --one-time true --report-format properties \
            --jmx-url "service:jmx:rmi:///jndi/rmi://127.0.0.1:$((pp + 7))/jmxrmi" \
            --object-name "$1" --attributes "$2" 2>"$CLUSTER_DIR/jmx.log") \
            || { cat "$CLUSTER_DIR/jmx.log" >&2; die "JmxTool failed on node $n"; }
        printf '%s\n' "$out" | sed -n "s/^\(kafka\.[^=]*:[^=]*=.*\)/node $n \1/p"
        any=1
    done
    ((any)) || die "no running node"
}

cmd_java() {
    (($# >= 1)) || die "usage: $0 java CLASS [args...]"
    KP_TOOLS_FAST=0 run_tool "$@"
}

main() {
    local cmd=${1:-}
    (($#)) && shift
    case $cmd in
        fetch) cmd_fetch ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        kill-node) cmd_kill_node "$@" ;;
        start-node) cmd_start_node "$@" ;;
        create-topic) cmd_create_topic "$@" ;;
        delete-topic) cmd_delete_topic "$@" ;;
        consume) cmd_consume "$@" ;;
        console-produce) cmd_console_produce "$@" ;;
        dump-log) cmd_dump_log "$@" ;;
        java) cmd_java "$@" ;;
        jmx) cmd_jmx "$@" ;;
        -h | --help | help | "") usage ;;
        *) log "unknown subcommand: $cmd"; usage ;;
    esac
}

main "$@"
