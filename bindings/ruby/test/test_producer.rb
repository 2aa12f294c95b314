# frozen_string_literal: true

require_relative "test_helper"

class TestProducer < Minitest::Test
  include KpTest

  T_BYTES = KpTest.topic_name("bytes")
  T_CB = KpTest.topic_name("callback")
  T_KEYS = KpTest.topic_name("keys")
  T_KCAT_CONSISTENT = KpTest.topic_name("kcat-consistent")
  T_KCAT_MURMUR = KpTest.topic_name("kcat-murmur")
  T_MURMUR = KpTest.topic_name("murmur")
  T_CLOSE = KpTest.topic_name("close")
  T_PURGE = KpTest.topic_name("purge")
  T_ERR = KpTest.topic_name("errors")
  T_MANY = KpTest.topic_name("many")
  T_THREADS = KpTest.topic_name("threads")
  PARTS = 6

  KpTest.create_topics(T_BYTES => 3, T_CB => 3, T_KEYS => PARTS, T_KCAT_CONSISTENT => PARTS,
                       T_KCAT_MURMUR => PARTS, T_MURMUR => PARTS, T_CLOSE => 2, T_PURGE => 2,
                       T_ERR => 3, T_MANY => 3, T_THREADS => 3)

  def test_produce_wait_and_byte_identical_read_back
    p = producer
    binary = (0..255).map(&:chr).join.b
    ts = 1_700_000_000_123
    sent = [
      { payload: "plain", key: "k1" },
      { payload: binary, key: binary.reverse, headers: { "bin" => binary, "empty" => "" } },
      { payload: nil, key: "tombstone" },
      { payload: "", key: "", headers: { "null" => nil, sym: "symbol name" } },
      { payload: "no key", key: nil, timestamp: ts },
      { payload: "time", key: "t", timestamp: Time.at(ts / 1000, ts % 1000, :millisecond) },
      { payload: "utf8 \u00e9\u4e2d", key: "\u00e9", partition: 2 },
      { payload: "multi", headers: { "dup" => %w[one two], "x" => "y" } }
    ]
    handles = sent.map { |r| p.produce(topic: T_BYTES, **r) }
    reports = handles.map { |h| h.wait(max_wait_timeout_ms: 30_000) }
    reports.each do |r|
      assert_nil r.error
      assert_equal T_BYTES, r.topic_name
      assert_operator r.offset, :>=, 0
    end
    assert_equal 2, reports[6].partition
    assert_equal ts, reports[4].timestamp
    p.close
    got = consume(T_BYTES, sent.size).to_h { |m| [[m["partition"], m["offset"]], m] }
    assert_equal sent.size, got.size
    sent.zip(reports).each do |rec, rep|
      m = got.fetch([rep.partition, rep.offset])
      rec[:payload].nil? ? assert_nil(m["value"]) : assert_equal(rec[:payload].b, m["value"])
      rec[:key].nil? ? assert_nil(m["key"]) : assert_equal(rec[:key].b, m["key"])
      want_headers = (rec[:headers] || {}).flat_map { |k, v| Array(v.nil? ? [nil] : v).map { |x| [k.to_s, x&.b] } }
      assert_equal want_headers, m["headers"]
      assert_equal ts, m["timestamp"] if rec[:timestamp]
      assert_equal rep.timestamp, m["timestamp"]
    end
  end

  def test_delivery_callback_runs_on_a_binding_thread
    p = producer
    seen = Queue.new
    p.delivery_callback = ->(report) { seen << [report, Thread.current] }
    n = 200
    handles = Array.new(n) { |i| p.produce(topic: T_CB, payload: "v#{i}", key: "k#{i % 7}", label: i) }
    assert p.flush(30_000), "flush timed out"
    assert_equal 0, p.outstanding
    assert(handles.none?(&:pending?))
    reports = Array.new(n) { seen.pop }
    assert_equal (0...n).to_a, reports.map { |r, _| r.label }.sort
    assert(reports.all? { |r, _| r.error.nil? && r.offset >= 0 })
    refute(reports.any? { |_, t| t == Thread.main && t != Thread.current }, "callback on the main thread")
    # a two-argument callback also gets the handle
    pairs = Queue.new
    p.delivery_callback = ->(report, handle) { pairs << [report, handle] }
    h = p.produce(topic: T_CB, payload: "two")
    h.wait(max_wait_timeout: 30)
    report, handle = pairs.pop
    assert_same h, handle
    assert_equal h.create_result.offset, report.offset
    assert_raises(TypeError) { p.delivery_callback = 42 }
    # waiting for reports from inside the callback would wait for itself
    errors = Queue.new
    p.delivery_callback = lambda do |_r|
      p.flush(1_000)
    rescue Kp::RdkafkaError => e
      errors << e
    end
    p.produce(topic: T_CB, payload: "flush-in-callback")
    assert p.flush(30_000)
    assert_equal :state, errors.pop.code
    p.close
    assert_equal n + 2, consume(T_CB, n + 2).size
  end

  # Where keys land, checked against librdkafka itself (kcat), not kp's code:
  # by default as rdkafka-ruby (librdkafka's consistent_random: CRC32), with
  # partitioner murmur2_random as the Java producer (and librdkafka's murmur2).
  def test_keyed_placement_matches_librdkafka
    keys = Array.new(60) { |i| "key-#{i}-#{'x' * (i % 5)}" }
    kcat_produce(T_KCAT_CONSISTENT, keys, "consistent_random")
    kcat_produce(T_KCAT_MURMUR, keys, "murmur2_random")
    want_crc, want_murmur = [T_KCAT_CONSISTENT, T_KCAT_MURMUR].map { |t| Thread.new { placement(t, keys.size) } }
                                                             .map(&:value)
    refute_equal want_crc, want_murmur, "the two partitioners should differ on 60 keys"

    p = producer
    assert_equal want_crc, placed(p, T_KEYS, keys) { |k| { payload: "v", key: k } }
    # partition_key picks the partition by the same hash, leaving the key alone
    assert_equal want_crc, placed(p, T_KEYS, keys) { |k| { payload: "pk", key: "other", partition_key: k } }
    assert_equal PARTS, p.partition_count(T_KEYS)
    assert_equal(-1, p.partition_count(topic_name("does-not-exist")))
    p.close

    m = producer(partitioner: "murmur2_random")
    assert_equal want_murmur, placed(m, T_MURMUR, keys) { |k| { payload: "v", key: k } }
    assert_equal want_murmur, placed(m, T_MURMUR, keys) { |k| { payload: "pk", partition_key: k } }
    m.close
    # and what the independent consumer sees agrees with the reports
    read = consume(T_KEYS, keys.size * 2).select { |r| r["value"] == "v" }
    assert_equal want_crc, read.to_h { |r| [r["key"], r["partition"]] }
  end

  def test_errors
    e = assert_raises(Kp::Config::ConfigError) { producer("no.such.property": 1) }
    assert_match(/no.such.property/, e.message)
    assert_raises(Kp::Config::ConfigError) { producer("delivery.report.mode": "thread") }

    p = producer("max.request.size": 10_000, "delivery.timeout.ms": 2_000, "request.timeout.ms": 1_000,
                 "linger.ms": 0)
    e = assert_raises(Kp::RdkafkaError) { p.produce(topic: T_ERR, payload: "x" * 20_000) }
    assert_equal :msg_size_too_large, e.code
    assert_equal 10, e.rdkafka_response
    refute e.retryable?
    refute e.fatal?

    # a partition the topic does not have: refused at once or reported
    begin
      h = p.produce(topic: T_ERR, payload: "x", partition: 99)
      e = assert_raises(Kp::RdkafkaError) { h.wait(max_wait_timeout: 30) }
      assert_equal h.create_result.error, e
    rescue Kp::RdkafkaError => e
      nil
    end
    assert_includes %i[unknown_partition unknown_topic_or_part msg_timed_out], e.code

    # a topic that does not exist: the wait ends first, then the report says timed out
    h = p.produce(topic: topic_name("missing"), payload: "x")
    assert_raises(Kp::AbstractHandle::WaitTimeoutError) { h.wait(max_wait_timeout: 0.05) }
    report = h.wait(max_wait_timeout: 30, raise_response_error: false)
    assert_kind_of Kp::RdkafkaError, report.error
    assert_includes %i[msg_timed_out unknown_topic_or_part], report.error.code
    assert_equal(-1, report.offset)
    p.close
    e = assert_raises(Kp::ClosedProducerError) { p.produce(topic: T_ERR, payload: "x") }
    assert_match(/closed producer/, e.message)
    assert_nil p.close, "close is idempotent"
  end

  def test_close_with_records_queued_reports_each_once
    # linger.ms holds the records in kp's buffer; close sends them and reports each
    p, count, handles = held_records(T_CLOSE, 300, "c")
    assert p.close(30_000)
    assert(handles.none?(&:pending?))
    assert(handles.all? { |h| h.create_result.error.nil? })
    assert_equal (0...300).to_a, count.keys.sort
    assert_equal [1], count.values.uniq
    assert_equal 300, consume(T_CLOSE, 300).size

    # close with a zero timeout: what is not delivered gets :destroy, exactly once each
    p, count, handles = held_records(T_CLOSE, 200, "d")
    p.close(0)
    assert(handles.none?(&:pending?))
    assert_equal [1], count.values.uniq
    assert_equal 200, count.size
    codes = handles.map { |h| h.create_result.error&.code }.uniq
    assert_includes codes, :destroy
    assert_empty codes - [nil, :destroy]
  end

  def test_purge
    p, count, handles = held_records(T_PURGE, 100, "p")
    assert p.purge
    assert(handles.none?(&:pending?))
    assert_equal 100, count.size
    assert_equal [1], count.values.uniq
    e = assert_raises(Kp::RdkafkaError) { handles.first.wait }
    assert_equal :purge_queue, e.code
    # the producer goes on after a purge
    h = p.produce(topic: T_PURGE, payload: "after")
    assert p.flush(30_000)
    assert_nil h.wait(max_wait_timeout: 0).error
    p.close
    assert_equal ["after"], consume(T_PURGE, 1).map { |r| r["value"] }
  end

  def test_produce_many_sends_a_batch_in_one_call
    p = producer("max.request.size": 100_000)
    seen = Queue.new
    p.delivery_callback = ->(r) { seen << r.label }
    msgs = Array.new(500) do |i|
      { topic: T_MANY, payload: "m#{i}", key: "k#{i}", headers: { "i" => i.to_s }, label: i,
        timestamp: 1_700_000_000_000 + i }
    end
    msgs[250] = { topic: T_MANY, payload: "x" * 200_000, label: :big }
    msgs[251] = { topic: T_MANY, payload: "pk", partition_key: "k9", label: :pk }
    handles = p.produce_many(msgs)
    assert_equal 500, handles.size
    e = assert_raises(Kp::RdkafkaError) { handles[250].wait(max_wait_timeout: 0) }
    assert_equal :msg_size_too_large, e.code
    assert p.flush(30_000)
    reports = handles.each_with_index.reject { |_, i| i == 250 }.map { |h, _| h.wait(max_wait_timeout: 0) }
    assert(reports.all? { |r| r.error.nil? })
    assert_equal handles[9].create_result.partition, handles[251].create_result.partition
    assert_equal 499, seen.size
    p.close
    got = consume(T_MANY, 499)
    assert_equal 499, got.size
    by_value = got.to_h { |m| [m["value"], m] }
    m = by_value.fetch("m7")
    assert_equal "k7", m["key"]
    assert_equal [%w[i 7]], m["headers"]
    assert_equal 1_700_000_000_007, m["timestamp"]
  end

  # Several Ruby threads produce on one producer at once; every record is
  # delivered exactly once.
  def test_many_threads_one_producer
    p = producer
    count = Hash.new(0)
    lock = Mutex.new
    p.delivery_callback = ->(r) { lock.synchronize { count[r.label] += 1 } }
    threads = Array.new(4) do |t|
      Thread.new do
        Array.new(500) { |i| p.produce(topic: T_THREADS, payload: "t#{t}-#{i}" * (1 + (i % 3)), label: [t, i]) }
      end
    end
    handles = threads.flat_map(&:value)
    assert p.flush(30_000)
    assert(handles.all? { |h| h.wait(max_wait_timeout: 0).error.nil? })
    assert_equal 2000, count.size
    assert_equal [1], count.values.uniq
    p.close
    got = consume(T_THREADS, 2000).map { |m| m["value"] }.sort
    want = (0...4).flat_map { |t| (0...500).map { |i| "t#{t}-#{i}" * (1 + (i % 3)) } }.sort
    assert_empty want - got, "records missing"
    assert_empty got - want, "records that were not sent"
    assert_equal want.size, got.size, "duplicates"
  end

  # The report thread waits in kp_poll_reports with the GVL released: were it
  # held, each of these short sleeps would wait for its 100 ms poll to end.
  def test_report_thread_releases_the_gvl
    p = producer
    p.produce(topic: T_ERR, payload: "warm-up").wait(max_wait_timeout: 30)
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    100.times { sleep 0.001 }
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
    p.close
    assert_operator elapsed, :<, 5, "100 sleeps of 1 ms took #{elapsed.round(2)} s"
  end

  # A producer nobody closed and nobody references any more is closed by its
  # finalizer on its report thread: its queued records still go out.
  def test_unreachable_producer_is_closed_and_delivers
    handles = unreferenced_producer_handles
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 20
    while handles.any?(&:pending?) && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
      GC.start
      sleep 0.1
    end
    assert(handles.none?(&:pending?), "the producer was not collected and closed")
    assert(handles.all? { |h| h.wait(max_wait_timeout: 0).error.nil? })
  end

  private

  def unreferenced_producer_handles
    p = producer("linger.ms": 60_000)
    Array.new(10) { |i| p.produce(topic: T_ERR, payload: "gc#{i}") }
  end

  # A producer holding `n` records in its buffer (linger.ms 60 s), and a count
  # of callbacks per record label.
  def held_records(topic, n, prefix)
    p = producer("linger.ms": 60_000, "batch.size": 1_000_000)
    count = Hash.new(0)
    p.delivery_callback = ->(r) { count[r.label] += 1 }
    handles = Array.new(n) { |i| p.produce(topic: topic, payload: "#{prefix}#{i}", label: i) }
    assert handles.all?(&:pending?)
    [p, count, handles]
  end

  def kcat_produce(topic, keys, partitioner)
    input = keys.map { |k| "#{k}\tv\n" }.join
    out, status = Open3.capture2e("kcat", "-P", "-b", BOOTSTRAP, "-t", topic, "-K", "\t",
                                  "-X", "partitioner=#{partitioner}", stdin_data: input)
    raise "kcat failed: #{out}" unless status.success?
  end

  # key -> partition its record went to, per the delivery reports
  def placed(producer, topic, keys)
    handles = keys.map { |k| producer.produce(topic: topic, **yield(k)) }
    keys.zip(handles).to_h { |k, h| [k, h.wait(max_wait_timeout: 30).partition] }
  end

  def placement(topic, count)
    consume(topic, count).to_h { |r| [r["key"], r["partition"]] }
  end
end
