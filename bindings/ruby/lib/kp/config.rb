# frozen_string_literal: true

require "logger"

module Kp
  # Producer configuration, as rdkafka-ruby's Rdkafka::Config: a Hash of
  # property names (Symbols or Strings) to values. kp takes the Java producer's
  # names and librdkafka's where they mean the same (queue.buffering.max.ms,
  # message.max.bytes, ...). Differences from kp's own defaults, so that code
  # switched from rdkafka-ruby keeps its data where it was and its behaviour:
  #
  # - "partitioner" defaults to "consistent_random" (librdkafka's default, which
  #   rdkafka-ruby uses: CRC32 of the key, random partition for nil keys). Set
  #   "murmur2_random" to place keys as the Java producer (and kp) does.
  # - "max.block.ms" defaults to 0: produce raises :queue_full at once when the
  #   buffer is full, as librdkafka does, instead of blocking the thread.
  class Config
    # librdkafka properties with no meaning in kp: accepted and ignored.
    IGNORED = %w[
      queue.buffering.max.messages socket.keepalive.enable api.version.request
      statistics.interval.ms log.connection.close sticky.partitioning.linger.ms
      delivery.report.only.error
    ].freeze
    DEFAULTS = { "partitioner" => "consistent_random", "max.block.ms" => "0" }.freeze

    # $stderr at WARN: kp logs a line per connection at INFO, which stays out of
    # a program's output unless asked for (Config.logger.level = Logger::INFO).
    @logger = Logger.new($stderr, level: Logger::WARN, progname: "kp")

    class << self
      # The Logger kp's log lines go to (and the binding's own messages, e.g.
      # an exception raised by a delivery callback), like Rdkafka::Config.logger;
      # a producer's `logger:` option overrides it for that producer. The
      # properties "log_level" (syslog 0-7, default 6) and "debug" (a comma list
      # of broker, protocol, metadata, producer, txn, security, or all) choose
      # kp's lines; see Kp::Log.
      attr_reader :logger

      def logger=(logger)
        raise NoLoggerError if logger.nil?

        @logger = logger
      end
    end

    # Raised by Config.logger= nil.
    class NoLoggerError < BaseError; end

    def initialize(config_hash = {})
      @config = {}
      config_hash.each { |k, v| self[k] = v }
    end

    def [](key)
      @config[key.to_s]
    end

    def []=(key, value)
      @config[key.to_s] = value
    end

    # The properties handed to kp: kp's names as Strings, with this binding's
    # defaults and delivery.report.mode=poll (reports are drained on a Ruby thread).
    def to_kp
      mode = @config.fetch("delivery.report.mode", "poll").to_s
      raise ConfigError, "the Ruby binding drains delivery reports itself: delivery.report.mode must be poll" if mode != "poll"

      settings = DEFAULTS.merge(@config.reject { |k, _| IGNORED.include?(k) })
      settings["delivery.report.mode"] = "poll"
      settings.transform_values(&:to_s)
    end

    # A new producer with this configuration. Raises ConfigError for an unknown
    # or invalid property. logger: a Logger for this producer's kp log lines
    # (default: Config.logger at the time of each line).
    def producer(logger: nil, **_options)
      Producer.new(self, logger)
    end
  end
end
