# frozen_string_literal: true

require "logger"

module Kp
  # kp's log lines (kp.h section 3) to a Ruby Logger. kp runs in
  # delivery.report.mode=poll, so it calls the log callback only from inside
  # kp_poll_reports, kp_flush, kp_producer_close and kp_producer_destroy: on
  # the producer's report thread or on the Ruby thread flushing or closing,
  # never on a thread of kp's. Those calls release the GVL (`blocking: true`);
  # ffi takes it back for the callback, so the Logger runs as ordinary Ruby
  # code on that thread.
  module Log
    # syslog level (0-7) => Logger severity, as rdkafka-ruby maps librdkafka's.
    SEVERITY = [
      Logger::FATAL, Logger::FATAL, Logger::FATAL, # emerg, alert, crit
      Logger::ERROR, Logger::WARN,                 # err, warning
      Logger::INFO, Logger::INFO, Logger::DEBUG    # notice, info, debug
    ].freeze

    module_function

    def severity(level)
      SEVERITY.fetch(level, Logger::UNKNOWN)
    end

    # The callback to register on a config: writes each line to `logger`, or
    # to Config.logger when nil, with progname "kp <facility>" (broker,
    # protocol, metadata, producer, txn, security). The caller keeps it referenced until
    # kp_producer_destroy returned. No exception leaves it (it would unwind
    # through kp's frames): one the Logger raises is dropped.
    def callback(logger)
      FFI::Function.new(:void, %i[int32 string string pointer]) do |level, facility, message, _ctx|
        (logger || Config.logger).add(severity(level), message, "kp #{facility}")
      rescue Exception # rubocop:disable Lint/RescueException
        nil
      end
    end
  end
end
