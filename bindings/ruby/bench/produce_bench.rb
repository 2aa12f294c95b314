# frozen_string_literal: true

# Throughput of the Ruby binding from one Ruby thread (not a test): sends
# --num-records records of --record-size bytes with produce (handles kept by
# the binding until their reports), then flushes. Prints records/s (first
# produce -> flush returned) and the process's CPU time (all threads) per record.
#
#   ruby -Ilib bench/produce_bench.rb --bootstrap HOST:PORT --topic T \
#        [--num-records 1000000] [--record-size 100] [--wait-every 0] [--batch 0] [PROP=VALUE ...]
#
# --wait-every N waits on every Nth handle (a synchronous caller pattern);
# --batch N sends N records per produce_many call (kp_send_batch) instead.
require "optparse"
require "kp"

opts = { records: 1_000_000, size: 100, wait_every: 0, batch: 0 }
props = {}
OptionParser.new do |o|
  o.on("--bootstrap HOSTS") { |v| opts[:bootstrap] = v }
  o.on("--topic TOPIC") { |v| opts[:topic] = v }
  o.on("--num-records N", Integer) { |v| opts[:records] = v }
  o.on("--record-size N", Integer) { |v| opts[:size] = v }
  o.on("--wait-every N", Integer) { |v| opts[:wait_every] = v }
  o.on("--batch N", Integer) { |v| opts[:batch] = v }
end.parse!.each do |kv|
  k, v = kv.split("=", 2)
  props[k] = v
end
abort "--bootstrap and --topic are required" unless opts[:bootstrap] && opts[:topic]

producer = Kp::Config.new({ "bootstrap.servers" => opts[:bootstrap], "max.block.ms" => 60_000 }.merge(props)).producer
payload = ("x" * opts[:size]).b
topic = opts[:topic]
failed = 0
producer.delivery_callback = ->(r) { failed += 1 if r.error }
cpu0 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
every = opts[:wait_every]
if opts[:batch].positive?
  batch = Array.new(opts[:batch]) { { topic: topic, payload: payload } }
  (opts[:records] / opts[:batch]).times { producer.produce_many(batch) }
else
  opts[:records].times do |i|
    h = producer.produce(topic: topic, payload: payload)
    h.wait(max_wait_timeout: 60) if every.positive? && (i % every).zero?
  end
end
producer.flush(120_000) or abort "flush timed out"
t1 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
cpu1 = Process.clock_gettime(Process::CLOCK_PROCESS_CPUTIME_ID)
producer.close
n = opts[:batch].positive? ? opts[:records] / opts[:batch] * opts[:batch] : opts[:records]
printf("ruby %s, libkp %s%s: %d records of %d B in %.2f s: %.0f records/s, %.1f MB/s, " \
       "CPU %.2f s (%.2f us/record, %.2f s per million), %d failed\n",
       RUBY_VERSION, Kp.libkp_version, opts[:batch].positive? ? ", produce_many(#{opts[:batch]})" : "", n, opts[:size], t1 - t0, n / (t1 - t0),
       n * opts[:size] / (t1 - t0) / 1_048_576.0, cpu1 - cpu0, (cpu1 - cpu0) * 1e6 / n,
       (cpu1 - cpu0) * 1e6 / n, failed)
