# frozen_string_literal: true

# Checks that need no cluster: hashing, error names, configuration defaults.
require "minitest/autorun"
require "kp"

class TestUnits < Minitest::Test
  # Kafka's own test vectors for Utils.murmur2 (as signed 32-bit values).
  def test_murmur2_matches_kafka
    {
      "21" => -973_932_308, "foobar" => -790_332_482, "a-little-bit-long-string" => -985_981_536,
      "a-little-bit-longer-string" => -1_486_304_829,
      "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8" => -58_897_971, "abc" => 479_470_107
    }.each do |key, want|
      h = Kp::Partitioner.murmur2(key)
      assert_equal want, h >= 2**31 ? h - 2**32 : h, key
    end
  end

  def test_partition_for
    assert_equal Zlib.crc32("key") % 7, Kp::Partitioner.partition_for("consistent_random", "key", 7)
    assert_equal (Kp::Partitioner.murmur2("key") & 0x7fffffff) % 7,
                 Kp::Partitioner.partition_for("murmur2_random", "key", 7)
    assert_nil Kp::Partitioner.partition_for("round_robin", "key", 7)
  end

  def test_error_codes_follow_librdkafka_names
    e = Kp::RdkafkaError.new(-101)
    assert_equal :queue_full, e.code
    assert_equal(-184, e.rdkafka_response)
    assert_equal(-101, e.kp_code)
    assert e.retryable?
    assert_equal :msg_timed_out, Kp::RdkafkaError.new(-105, nil, in_report: true).code
    assert_equal :timed_out, Kp::RdkafkaError.new(-105).code
    assert_equal :unknown_topic_or_part, Kp::RdkafkaError.new(3).code
    assert_equal :not_enough_replicas, Kp::RdkafkaError.new(19).code
    fenced = Kp::RdkafkaError.new(90)
    assert_equal :producer_fenced, fenced.code
    assert_match(/\(producer_fenced\)\z/, fenced.message)
    fatal = Kp::RdkafkaError.new(-111)
    assert_equal :fatal, fatal.code
    assert fatal.fatal?
    refute fatal.retryable?
    assert_equal Kp::RdkafkaError.new(3), Kp::RdkafkaError.new(3)
  end

  def test_config_defaults_follow_rdkafka_ruby
    c = Kp::Config.new("bootstrap.servers": "h:1", "statistics.interval.ms": 1000, "debug": "all", "acks" => -1)
    kp = c.to_kp
    assert_equal "consistent_random", kp["partitioner"]
    assert_equal "0", kp["max.block.ms"]
    assert_equal "poll", kp["delivery.report.mode"]
    assert_equal "-1", kp["acks"]
    refute kp.key?("statistics.interval.ms")
    assert_equal "all", kp["debug"] # kp's own (log contexts)
    assert_equal "murmur2_random", Kp::Config.new(partitioner: "murmur2_random").to_kp["partitioner"]
    assert_raises(Kp::Config::NoLoggerError) { Kp::Config.logger = nil }
  end

  def test_name_and_close_without_a_broker
    p = Kp::Producer.new("bootstrap.servers" => "127.0.0.1:1", "client.id" => "billing")
    assert_equal "billing", p.name
    h = p.produce(topic: "nowhere", payload: "x")
    refute p.close(0), "a record had to be failed"
    assert_equal :destroy, h.wait(max_wait_timeout: 0, raise_response_error: false).error.code
    assert p.closed?
    assert_raises(Kp::ClosedProducerError) { p.flush }
  end

  def test_record_layout_matches_kp_h
    assert_equal 96, Kp::Native::Record.size
    assert_equal 64, Kp::Native::ReportInfo.size
    assert_equal 32, Kp::Native::Header.size
  end
end
