# frozen_string_literal: true

require_relative "test_helper"

class TestForkAndTransactions < Minitest::Test
  include KpTest

  T_FORK = KpTest.topic_name("fork")
  T_TXN = KpTest.topic_name("txn")
  T_OFFSETS = KpTest.topic_name("txn-offsets")
  KpTest.create_topics(T_FORK => 3, T_TXN => 3, T_OFFSETS => 2)

  # Consumer offsets sent in a transaction are the group's committed offsets
  # once it commits (read with confluent-kafka's consumer).
  def test_send_offsets_to_transaction
    group = "kp-rb-group-#{KpTest::RUN}"
    p = producer("transactional.id": "kp-rb-offsets-#{KpTest::RUN}")
    p.init_transactions
    p.begin_transaction
    p.produce(topic: T_OFFSETS, payload: "out")
    p.send_offsets_to_transaction(group, { T_OFFSETS => { 0 => 7, 1 => 3 } })
    p.commit_transaction
    p.close
    script = <<~PY
      import sys
      from confluent_kafka import Consumer, TopicPartition
      c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2], "enable.auto.commit": False})
      parts = c.committed([TopicPartition(sys.argv[3], 0), TopicPartition(sys.argv[3], 1)], timeout=30)
      print(" ".join(str(tp.offset) for tp in parts))
      c.close()
    PY
    out, status = Open3.capture2e(KpTest::PYTHON, "-c", script, KpTest::BOOTSTRAP, group, T_OFFSETS)
    assert status.success?, out
    assert_equal "7 3", out.lines.last.strip
  end

  # Puma/Sidekiq style preforking: the parent's producer raises a clear error in
  # the child, a new producer in the child delivers, and the parent goes on.
  def test_fork
    p = producer
    assert_nil p.produce(topic: T_FORK, payload: "parent-before").wait(max_wait_timeout: 30).error
    pending = p.produce(topic: T_FORK, payload: "parent-pending")
    r, w = IO.pipe
    pid = fork do
      r.close
      result = { "error" => "child stopped early" }
      begin
        p.produce(topic: T_FORK, payload: "child-with-parent-producer")
        result[:old] = "no error"
      rescue Kp::ForkedProducerError => e
        result[:old] = [e.code.to_s, e.fatal?, e.message]
      end
      begin
        pending.wait(max_wait_timeout: 1)
      rescue Kp::ForkedProducerError => e
        result[:handle] = e.code.to_s
      rescue StandardError => e
        result[:handle] = e.class.name
      end
      # without the fork hook (Ruby < 3.1) kp itself refuses the child's calls
      result[:native] = Kp::Native.kp_flush(p.instance_variable_get(:@state).ptr, 0)
      c = producer
      rep = c.produce(topic: T_FORK, payload: "child-new-producer").wait(max_wait_timeout: 30)
      result[:new] = [rep.error&.code.to_s, rep.offset]
      result[:new_close] = c.close
      result[:old_close] = p.close.inspect
      result.delete("error")
    rescue Exception => e # rubocop:disable Lint/RescueException - reported to the parent
      result["error"] = "#{e.class}: #{e.message}"
    ensure
      w.write(JSON.generate(result))
      w.close
      exit!(0)
    end
    w.close
    child = JSON.parse(r.read)
    Process.wait(pid)
    assert_nil child["error"]
    assert_equal 0, $?.exitstatus
    code, fatal, message = child["old"]
    assert_equal "forked", code
    assert fatal
    assert_match(/before fork\(\).*create a new producer in the child/, message)
    assert_equal "forked", child["handle"]
    assert_equal(-117, child["native"])
    assert_equal "", child["new"][0]
    assert_operator child["new"][1], :>=, 0
    assert child["new_close"]
    # the parent's producer works on, its pending record included
    assert_nil pending.wait(max_wait_timeout: 30).error
    assert_nil p.produce(topic: T_FORK, payload: "parent-after").wait(max_wait_timeout: 30).error
    assert p.close
    values = consume(T_FORK, 4).map { |m| m["value"] }.sort
    assert_equal %w[child-new-producer parent-after parent-before parent-pending], values
  end

  def test_transactions_commit_visible_abort_invisible
    p = producer("transactional.id": "kp-rb-txn-#{KpTest::RUN}")
    p.init_transactions
    p.begin_transaction
    hs = Array.new(5) { |i| p.produce(topic: T_TXN, payload: "committed-#{i}", key: "k#{i}") }
    assert p.commit_transaction
    assert(hs.all? { |h| h.wait(max_wait_timeout: 0).error.nil? })

    p.begin_transaction
    hs = Array.new(5) { |i| p.produce(topic: T_TXN, payload: "aborted-#{i}", key: "k#{i}") }
    assert p.flush(30_000)
    assert p.abort_transaction

    p.begin_transaction
    p.produce(topic: T_TXN, payload: "committed-last")
    p.commit_transaction(30_000)
    e = assert_raises(Kp::RdkafkaError) { p.commit_transaction(1_000) }
    assert_equal :state, e.code
    p.close

    committed = consume(T_TXN, 6, isolation: "read_committed").map { |m| m["value"] }.sort
    assert_equal (Array.new(5) { |i| "committed-#{i}" } + ["committed-last"]).sort, committed
    all = consume(T_TXN, 11).map { |m| m["value"] }
    assert_equal 5, all.count { |v| v.start_with?("aborted-") }
  end
end
