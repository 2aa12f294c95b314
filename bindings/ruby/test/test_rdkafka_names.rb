# frozen_string_literal: true

# rdkafka-ruby producer code runs unchanged after `require "kp/rdkafka"`
# (in a child Ruby, so that the Rdkafka name stays out of the other tests).
require "minitest/autorun"
require "open3"

class TestRdkafkaNames < Minitest::Test
  SCRIPT = <<~'RUBY'
    require "kp/rdkafka"
    producer = Rdkafka::Config.new("bootstrap.servers": "127.0.0.1:1").producer
    handle = producer.produce(topic: "t", payload: "x", key: "k")
    begin
      handle.wait(max_wait_timeout: 0.01)
    rescue Rdkafka::Producer::DeliveryHandle::WaitTimeoutError
      puts "timeout"
    end
    producer.close(0)
    begin
      handle.wait
    rescue Rdkafka::RdkafkaError => e
      puts e.code
    end
    begin
      producer.produce(topic: "t", payload: "x")
    rescue Rdkafka::ClosedProducerError
      puts "closed"
    end
  RUBY

  def test_rdkafka_producer_code_runs_unchanged
    lib = File.expand_path("../lib", __dir__)
    out, err, status = Open3.capture3("ruby", "-I", lib, "-e", SCRIPT)
    assert status.success?, out + err
    assert_equal %w[timeout destroy closed], out.lines.map(&:strip)
    # kp's lines went to the default Kp::Config.logger ($stderr, WARN and up)
    assert_match(/WARN -- kp broker: broker -1 \(127\.0\.0\.1:1\)/, err)
  end

  def test_refuses_to_load_beside_the_rdkafka_gem
    lib = File.expand_path("../lib", __dir__)
    out, status = Open3.capture2e("ruby", "-I", lib, "-e", "module Rdkafka; end; require 'kp/rdkafka'")
    refute status.success?
    assert_match(/rdkafka gem is loaded already/, out)
  end
end
