# frozen_string_literal: true

require_relative "test_helper"

# kp's log lines reach a Ruby Logger (the `logger:` option or Config.logger),
# with syslog levels mapped to Logger severities, against the real cluster.
class TestLog < Minitest::Test
  include KpTest

  # A Logger keeping [severity, progname, message, thread] of each line.
  class Capture < Logger
    def initialize
      super(nil)
      @lines = []
      @lock = Mutex.new
      @cv = ConditionVariable.new
    end

    def add(severity, message = nil, progname = nil)
      @lock.synchronize do
        @lines << [severity, progname, message, Thread.current]
        @cv.broadcast
      end
      true
    end

    def lines
      @lock.synchronize { @lines.dup }
    end

    # Waits up to `timeout` seconds for a line the block accepts.
    def wait_for(timeout)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @lock.synchronize do
        until @lines.any? { |l| yield l }
          left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          return false if left <= 0

          @cv.wait(@lock, left)
        end
      end
      true
    end
  end

  def connected?(lines)
    lines.any? { |sev, prog, msg, _| sev == Logger::INFO && prog == "kp broker" && msg.start_with?("connected to broker") }
  end

  def produce_and_close(logger, extra)
    topic = topic_name("log-#{SecureRandom.hex(2)}")
    create_topics(topic => 1)
    p = Kp::Config.new({ "bootstrap.servers": BOOTSTRAP }.merge(extra)).producer(logger: logger)
    assert_nil p.produce(topic: topic, payload: "v").wait(max_wait_timeout: 30).error
    assert p.close(30_000)
    logger.lines
  end

  # A real connection logs "connected to broker" at INFO, progname "kp broker";
  # the Logger runs on a Ruby thread (the report thread, or the one closing).
  def test_connect_logs_info_broker_line
    lines = produce_and_close(Capture.new, {})
    assert connected?(lines), "no INFO 'kp broker' 'connected to broker' line among #{lines.map { |l| l[0, 3] }}"
    main = Thread.current
    lines.each { |*, t| assert(t == main || t.name == "kp-reports", "logged on #{t.inspect}") }
  end

  def test_log_level_4_suppresses_info_line
    lines = produce_and_close(Capture.new, { log_level: 4 })
    refute connected?(lines), "log_level=4 still logged the INFO connect line"
  end

  # An unreachable bootstrap broker logs a WARN line, progname "kp broker", to
  # Config.logger when no logger: is given.
  def test_unreachable_bootstrap_logs_warning_broker_line
    capture = Capture.new
    saved = Kp::Config.logger
    Kp::Config.logger = capture
    p = Kp::Config.new("bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 60_000).producer
    handle = p.produce(topic: topic_name("log-unreachable"), payload: "x")
    found = capture.wait_for(30) { |sev, prog, _| sev == Logger::WARN && prog == "kp broker" }
    assert found, "no WARN 'kp broker' line in 30 s; got #{capture.lines.map { |l| l[0, 3] }}"
    p.purge
    p.close(5_000)
    assert_raises(Kp::RdkafkaError) { handle.wait(max_wait_timeout: 5) }
  ensure
    Kp::Config.logger = saved
  end

  def test_severity_mapping
    assert_equal [Logger::FATAL] * 3 + [Logger::ERROR, Logger::WARN, Logger::INFO, Logger::INFO, Logger::DEBUG],
                 (0..7).map { |l| Kp::Log.severity(l) }
  end
end
