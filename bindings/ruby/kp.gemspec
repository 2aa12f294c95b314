# frozen_string_literal: true

require_relative "lib/kp/version"

Gem::Specification.new do |s|
  s.name = "kp"
  s.version = Kp::VERSION
  s.summary = "Kafka producer with rdkafka-ruby's producer API on kp's engine"
  s.description = "A Kafka producer for Ruby over libkp (kp's C ABI) through the ffi gem. " \
                  "Its API follows rdkafka-ruby's producer (Config#producer, produce, " \
                  "DeliveryHandle#wait, transactions), is fork-aware and releases the GVL " \
                  "while it waits. Needs libkp.so (make install, or KP_LIBRARY=/path/libkp.so)."
  s.license = "Apache-2.0"
  s.authors = ["kp contributors"]
  s.required_ruby_version = ">= 2.7"
  s.files = Dir["lib/**/*.rb"] + ["README.md"]
  s.require_paths = ["lib"]
  s.add_dependency "ffi", "~> 1.15"
end
