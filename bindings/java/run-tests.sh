#!/usr/bin/env bash
# run-tests.sh - the Java binding's tests (JUnit 5 through Maven Surefire) against
# the real cluster in KP_BOOTSTRAP (started by testbed/kafka.sh; never here).
#
#   1. builds the JNI glue against <repo>/target/release/libkp.so (make lib)
#   2. mvn test on the JDK Maven runs with (Java 17 here): every test
#   3. the quick tests (@Tag("quick")) again on the newest other JDK under
#      /usr/lib/jvm (a JDK 25 here), when there is one
#
# Maven fetches what ~/.m2 lacks on the first run (kafka-clients, JUnit,
# plugins) and needs no network afterwards.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ -n ${KP_BOOTSTRAP:-} ]] || { echo "run-tests.sh: KP_BOOTSTRAP is not set (start testbed/kafka.sh)" >&2; exit 2; }
export KP_BOOTSTRAP
cd "$HERE"
bash build-native.sh

mvn_flags=(-B --no-transfer-progress -Dstyle.color=never)
echo "== Java binding: mvn test ($(java -version 2>&1 | head -1))"
mvn "${mvn_flags[@]}" test

# The newest JDK on the machine, if newer than the one above.
base=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
best="" best_v=$base
for release in /usr/lib/jvm/*/release; do
    dir=$(dirname "$release")
    [[ -x $dir/bin/java ]] || continue
    v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$release")
    if [[ -n $v ]] && ((v > best_v)); then best=$dir best_v=$v; fi
done
if [[ -n $best ]]; then
    echo "== Java binding: quick tests on JDK $best_v ($best)"
    # JDK 24+ warns about System.loadLibrary unless native access is enabled (JEP 472)
    mvn "${mvn_flags[@]}" surefire:test -Dkp.test.jvm="$best/bin/java" -Dkp.test.groups=quick \
        -Dkp.test.argLine=--enable-native-access=ALL-UNNAMED
else
    echo "(no JDK newer than $base under /usr/lib/jvm: the quick tests ran on $base only)"
fi
