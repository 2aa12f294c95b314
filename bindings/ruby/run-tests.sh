#!/usr/bin/env bash
# Runs the Ruby binding's tests (minitest, Debian's ruby + ruby-ffi) against the
# Kafka cluster in KP_BOOTSTRAP, with the libkp that `make lib` built in this
# repository (target/release/libkp.so; KP_LIBRARY overrides it). Read-back goes
# through tests/verify/ (confluent-kafka's consumer) and kcat.
set -euo pipefail
cd "$(dirname "$0")"
: "${KP_BOOTSTRAP:?KP_BOOTSTRAP must name the test cluster}"
export KP_LIBRARY=${KP_LIBRARY:-$(cd ../.. && pwd)/target/release/libkp.so}
[[ -f $KP_LIBRARY ]] || { echo "run-tests.sh: $KP_LIBRARY missing (run make lib)" >&2; exit 1; }
ruby -Ilib -e 'require "kp"; puts "kp (Ruby #{RUBY_VERSION}, ffi #{FFI::VERSION}) over libkp #{Kp.libkp_version} from #{ENV["KP_LIBRARY"]}"'
ruby -Ilib -Itest -e 'ARGV.each { |f| require File.expand_path(f) }' test/test_*.rb
# the example runs as a user would run it: from the gem built and installed
# (into a throwaway GEM_HOME; ffi comes from the system's gems)
gems=$(mktemp -d)
trap 'rm -rf "$gems"' EXIT
built=$(gem build kp.gemspec -o "$gems/kp.gem" 2>&1) || { echo "$built" >&2; exit 1; }
export GEM_HOME=$gems/home GEM_PATH=$gems/home:$(gem env gempath)
gem install -q --local --no-document "$gems/kp.gem" >/dev/null
topic="kp-rb-example-$$-$RANDOM"
"${PYTHON:-python3}" ../../tests/verify/create_topics.py "$KP_BOOTSTRAP" 1 "$topic:3"
here=$PWD
out=$(cd / && ruby "$here/examples/produce.rb" "$topic")
echo "$out"
[[ $(grep -c '^delivered to' <<<"$out") == 3 && $(tail -n1 <<<"$out") == committed ]]
