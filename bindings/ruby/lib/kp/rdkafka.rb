# frozen_string_literal: true

# Lets producer code written for rdkafka-ruby run on kp with only its require
# changed:
#
#   require "kp/rdkafka"   # was: require "rdkafka"
#   producer = Rdkafka::Config.new("bootstrap.servers": "...").producer
#   rescue Rdkafka::RdkafkaError => e ...
#
# It names Kp as Rdkafka, so it refuses to load beside the rdkafka gem (whose
# consumer a karafka application may still use): there, rename Rdkafka to Kp in
# the producer code instead.
require_relative "../kp"

if defined?(::Rdkafka) && !::Rdkafka.equal?(Kp)
  raise LoadError, "kp/rdkafka: the rdkafka gem is loaded already; use Kp:: in the producer code instead"
end

Rdkafka = Kp unless defined?(::Rdkafka)
