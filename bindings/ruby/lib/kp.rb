# frozen_string_literal: true

# kp: a Kafka producer for Ruby on kp's Rust engine (libkp, through the ffi
# gem), with rdkafka-ruby's producer API:
#
#   producer = Kp::Config.new("bootstrap.servers": "localhost:9092").producer
#   handle = producer.produce(topic: "events", payload: "hello", key: "k1")
#   report = handle.wait(max_wait_timeout: 10)   # => Kp::Producer::DeliveryReport
#   producer.close
require_relative "kp/version"
require_relative "kp/native"
require_relative "kp/error"
require_relative "kp/config"
require_relative "kp/log"
require_relative "kp/partitioner"
require_relative "kp/producer"

module Kp
  # The version of the libkp loaded, e.g. "0.1.0".
  def self.libkp_version
    Native.kp_version_str
  end

  # Marks the producers of a forked child unusable (kp's threads stay in the
  # parent): Process._fork (Ruby >= 3.1) is what fork, Process.fork and
  # Kernel#fork all call, so Puma, Sidekiq and Resque workers are covered. On
  # older Rubies kp itself refuses a child's calls (KP_ERR_FORKED), which the
  # binding raises as the same ForkedProducerError.
  module ForkHook
    def _fork
      pid = super
      Producer.after_fork_in_child if pid.zero?
      pid
    end
  end
  Process.singleton_class.prepend(ForkHook) if Process.respond_to?(:_fork)
end
