# frozen_string_literal: true

# Shared by the tests: the cluster (KP_BOOTSTRAP), unique topic names, and the
# independent reader (tests/verify/consume.py: confluent-kafka's consumer, i.e.
# librdkafka, not kp) and topic creator of the repository.
require "minitest/autorun"
require "json"
require "base64"
require "open3"
require "securerandom"
require "kp"

module KpTest
  BOOTSTRAP = ENV.fetch("KP_BOOTSTRAP") { abort "KP_BOOTSTRAP must name the test cluster" }
  REPO = File.expand_path("../../..", __dir__)
  VERIFY = File.join(REPO, "tests", "verify")
  PYTHON = ENV.fetch("PYTHON", "python3")
  RUN = SecureRandom.hex(4)

  module_function

  def topic_name(tag)
    "kp-rb-#{tag}-#{RUN}"
  end

  # Creates topics {name => partitions} (replication factor 1: works on 1 or 3 nodes).
  def create_topics(specs)
    args = specs.map { |name, parts| "#{name}:#{parts}" }
    out, status = Open3.capture2e(PYTHON, File.join(VERIFY, "create_topics.py"), BOOTSTRAP, "1", *args)
    raise "create_topics failed: #{out}" unless status.success?
  end

  # Reads `count` records of `topic` with the independent consumer; returns
  # Hashes with "partition", "offset", "key", "value" (bytes, nil for null),
  # "headers" ([[name, bytes]]) and "timestamp".
  def consume(topic, count, isolation: "read_uncommitted", timeout: 30)
    out, err, status = Open3.capture3(PYTHON, File.join(VERIFY, "consume.py"), BOOTSTRAP, topic, count.to_s,
                                      "--timeout", timeout.to_s, "--isolation", isolation)
    raise "consume.py #{topic} exited #{status.exitstatus}: #{err}" unless status.success?

    out.lines.map { |l| decode(JSON.parse(l)) }
  end

  def decode(rec)
    b = ->(s) { s && Base64.strict_decode64(s).b }
    rec.merge("key" => b.call(rec["key"]), "value" => b.call(rec["value"]),
              "headers" => rec["headers"].map { |k, v| [k, b.call(v)] })
  end

  def producer(extra = {})
    Kp::Config.new({ "bootstrap.servers": BOOTSTRAP }.merge(extra)).producer
  end
end
