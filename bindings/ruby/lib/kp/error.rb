# frozen_string_literal: true

module Kp
  # Base of every error this library raises.
  class BaseError < RuntimeError; end

  # An error from kp, shaped like rdkafka-ruby's Rdkafka::RdkafkaError:
  # `code` is a Symbol named as librdkafka names the same condition (so
  # `rescue ... if e.code == :msg_timed_out` keeps working), `rdkafka_response`
  # librdkafka's number for it, `kp_code` kp's own code (kp.h), and
  # retryable?/fatal?/abortable? say what the caller may do.
  class RdkafkaError < BaseError
    # kp's own codes (-100 and below) -> librdkafka's code and name for them.
    LOCAL = {
      -100 => [-186, :invalid_arg],
      -101 => [-184, :queue_full],
      -102 => [10, :msg_size_too_large],
      -103 => [17, :topic_exception],
      -104 => [-190, :unknown_partition],
      -105 => [-185, :timed_out],
      -106 => [-195, :transport],
      -107 => [-187, :all_brokers_down],
      -108 => [-152, :purge_queue],
      -109 => [-151, :purge_inflight],
      -110 => [-197, :destroy],
      -111 => [-150, :fatal],
      -112 => [-172, :state],
      -113 => [-196, :fail],
      -114 => [-165, :unsupported_feature],
      -115 => [-199, :bad_msg],
      -116 => [-196, :fail],
      -117 => [-150, :forked],
      -118 => [-169, :authentication]
    }.freeze
    # Broker errors whose librdkafka name differs from the Java name kp uses.
    BROKER_NAMES = {
      2 => :invalid_msg,
      3 => :unknown_topic_or_part,
      6 => :not_leader_for_partition,
      10 => :msg_size_too_large,
      17 => :topic_exception
    }.freeze
    # A delivery that timed out is :msg_timed_out in librdkafka.
    MSG_TIMED_OUT = [-192, :msg_timed_out].freeze

    ERROR_CLASS_RETRIABLE = [1, 2].freeze
    ERROR_CLASS_ABORTABLE = 3
    ERROR_CLASS_FATAL = 6

    attr_reader :kp_code, :rdkafka_response, :code, :message_prefix, :broker_message

    # kp_code: kp's error code; message: kp's text, if any.
    def initialize(kp_code, message = nil, message_prefix: nil, error_class: nil, in_report: false,
                   fatal: nil, retryable: nil, abortable: nil)
      @kp_code = kp_code
      @rdkafka_response, @code =
        if in_report && kp_code == -105
          MSG_TIMED_OUT
        elsif LOCAL.key?(kp_code)
          LOCAL[kp_code]
        else
          [kp_code, BROKER_NAMES.fetch(kp_code) { Native.kp_err_name(kp_code).downcase.to_sym }]
        end
      @message_prefix = message_prefix
      @broker_message = message || Native.kp_err_str(kp_code)
      klass = error_class || Native.kp_err_class(kp_code)
      @fatal = fatal.nil? ? klass == ERROR_CLASS_FATAL : fatal
      @retryable = retryable.nil? ? ERROR_CLASS_RETRIABLE.include?(klass) : retryable
      @abortable = abortable.nil? ? klass == ERROR_CLASS_ABORTABLE : abortable
      super(to_s)
    end

    def to_s
      prefix = @message_prefix ? "#{@message_prefix} - " : ""
      "#{prefix}#{@broker_message} (#{@code})"
    end

    def fatal?
      @fatal
    end
    alias is_fatal fatal?

    def retryable?
      @retryable
    end

    def abortable?
      @abortable
    end

    def ==(other)
      other.is_a?(self.class) && to_s == other.to_s
    end

    # The error a kp_error_t describes (the transactional calls); frees it.
    def self.from_kp_error(ptr, prefix = nil)
      err = new(Native.kp_error_code(ptr), Native.kp_error_message(ptr),
                message_prefix: prefix,
                fatal: Native.kp_error_is_fatal(ptr),
                retryable: Native.kp_error_is_retriable(ptr),
                abortable: Native.kp_error_txn_requires_abort(ptr))
      err.instance_variable_set(:@fatal, true) if err.kp_code == -117
      err
    ensure
      Native.kp_error_destroy(ptr)
    end
  end

  # Raised by a producer created before fork() when the child process uses it:
  # kp's I/O threads belong to the parent. Create a new producer in the child.
  class ForkedProducerError < RdkafkaError
    def initialize(method_name)
      super(-117, "this producer was created in process #{Process.ppid} before fork(); its I/O " \
                  "threads do not exist in this process (#{Process.pid}): create a new " \
                  "producer in the child",
            message_prefix: "Illegal call to #{method_name}", fatal: true)
    end
  end

  # Raised when a closed producer is used (as rdkafka-ruby's ClosedProducerError).
  class ClosedProducerError < BaseError
    def initialize(method_name)
      super("Illegal call to #{method_name} on a closed producer")
    end
  end

  # Raised by Config#producer for an unknown or invalid property.
  class Config
    class ConfigError < BaseError; end
  end

  # Base of the handles returned by produce (rdkafka-ruby's AbstractHandle).
  class AbstractHandle
    # Raised by #wait when no result came within max_wait_timeout.
    class WaitTimeoutError < BaseError; end
  end
end
