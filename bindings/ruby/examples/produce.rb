# frozen_string_literal: true

# Produces a few records the rdkafka-ruby way, then a transaction.
#   KP_BOOTSTRAP=127.0.0.1:9092 ruby -Ilib examples/produce.rb TOPIC
require "kp"

topic = ARGV.fetch(0, "kp-ruby-example")
config = Kp::Config.new("bootstrap.servers": ENV.fetch("KP_BOOTSTRAP", "127.0.0.1:9092"))
producer = config.producer
producer.delivery_callback = lambda do |report|
  puts "delivered to #{report.topic_name}/#{report.partition}@#{report.offset}" unless report.error
end

handles = 3.times.map do |i|
  producer.produce(topic: topic, payload: "hello #{i}", key: "user-#{i}", headers: { "origin" => "example" })
end
handles.each { |h| h.wait(max_wait_timeout: 30) }
producer.flush(10_000)
producer.close

txn = Kp::Config.new("bootstrap.servers": ENV.fetch("KP_BOOTSTRAP", "127.0.0.1:9092"),
                     "transactional.id": "kp-ruby-example-#{Process.pid}").producer
txn.init_transactions
txn.begin_transaction
txn.produce(topic: topic, payload: "in a transaction")
txn.commit_transaction
txn.close
puts "committed"
