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
# the example runs as a user would run it
topic="kp-rb-example-$$-$RANDOM"
python3 ../../tests/verify/create_topics.py "$KP_BOOTSTRAP" 1 "$topic:3"
out=$(ruby -Ilib examples/produce.rb "$topic")
echo "$out"
[[ $(grep -c '^delivered to' <<<"$out") == 3 && $(tail -n1 <<<"$out") == committed ]]
