# frozen_string_literal: true

module Kp
  # A Kafka producer with rdkafka-ruby's producer API (Rdkafka::Producer).
  #
  # Threads: produce, flush, close, purge and the transactional calls may be
  # called from any Ruby thread. Delivery reports are drained by one Ruby thread
  # per producer (kp runs in delivery.report.mode=poll and this thread calls
  # kp_poll_reports with the GVL released); handles are completed and
  # delivery_callback runs there, never on a thread of kp's.
  #
  # Every accepted record gets exactly one report: delivered, failed, purged,
  # or, for records still queued when close's timeout ends, :destroy.
  class Producer
    # Report of one record (rdkafka-ruby's DeliveryReport). `error` is nil when
    # the record was delivered, else a Kp::RdkafkaError.
    class DeliveryReport
      attr_reader :partition, :offset, :topic_name, :error, :label, :timestamp

      def initialize(partition, offset, topic_name = nil, error = nil, label = nil, timestamp = nil)
        @partition = partition
        @offset = offset
        @topic_name = topic_name
        @error = error
        @label = label
        @timestamp = timestamp
      end
      alias topic topic_name
    end

    # Returned by produce (rdkafka-ruby's DeliveryHandle): wait for its report.
    class DeliveryHandle < AbstractHandle
      attr_reader :topic, :label

      def initialize(state, topic, label)
        super()
        @state = state
        @topic = topic
        @label = label
        @report = nil
      end

      def pending?
        @report.nil?
      end

      # Waits up to max_wait_timeout seconds (nil: no limit) for the report and
      # returns it; raises its error when raise_response_error is set (as
      # rdkafka-ruby), WaitTimeoutError when it did not come in time. The GVL is
      # released while waiting. max_wait_timeout_ms (newer rdkafka-ruby) wins
      # over max_wait_timeout when given.
      def wait(max_wait_timeout: 60, max_wait_timeout_ms: nil, raise_response_error: true)
        timeout = max_wait_timeout_ms ? max_wait_timeout_ms / 1000.0 : max_wait_timeout
        @state.wait_until(timeout, "delivery handle") { @report } if @report.nil?
        raise @report.error if raise_response_error && @report.error

        @report
      end

      # The report once it came (nil before), as DeliveryHandle#create_result.
      def create_result
        @report
      end

      # Called by the report thread (or the thread closing the producer).
      def complete!(report)
        @report = report
      end
    end

    REPORT_BATCH = 1024
    RELEASE_TIMEOUT_MS = 5_000
    POLL_MS = 100
    ERRSTR = 512
    INT32_MAX = (2**31) - 1

    # The native side of a producer: the kp handle, the records waiting for
    # their report, and the thread that drains reports. The report thread holds
    # this object, not the Producer, so an unreachable Producer is still
    # garbage-collected (its finalizer then lets the thread close kp).
    class State
      attr_reader :ptr, :partitioner, :max_block, :index
      attr_accessor :callback

      ID_BITS = 40
      @count = 0
      @count_lock = Mutex.new
      class << self
        # A number of its own for each State: the high bits of its records' ids.
        def next_index
          @count_lock.synchronize { @count += 1 }
        end
      end

      # log_fn: the log callback registered on kp's config, kept referenced
      # here until kp_producer_destroy returned.
      def initialize(ptr, partitioner, max_block, log_fn)
        @ptr = ptr
        @log_fn = log_fn
        @index = self.class.next_index
        @partitioner = partitioner
        @max_block = max_block
        @pending = {}
        @next_id = @index << ID_BITS
        @dispatching = 0 # report batches taken whose callbacks have not run yet
        @lock = Mutex.new
        @cv = ConditionVariable.new
        @stop = false
        @release = false
        @forked = false
        @closed = false
        @callback = nil
        REGISTRY[@index] = self
        @thread = Thread.new { run }
        @thread.name = "kp-reports" if @thread.respond_to?(:name=)
      end

      attr_reader :closed

      def forked?
        @forked
      end

      def forked!
        @forked = true
      end

      def closed!
        @closed = true
      end

      def outstanding
        @pending.size
      end

      # Registers a handle before kp_send; returns its id (the record's ctx).
      def register(handle)
        @lock.synchronize do
          id = (@next_id += 1)
          @pending[id] = handle
          id
        end
      end

      def unregister(id)
        @lock.synchronize { @pending.delete(id) }
      end

      # Waits (GVL released) until the block is truthy or `timeout` seconds
      # passed (nil: no limit); raises WaitTimeoutError then.
      def wait_until(timeout, what)
        raise ForkedProducerError, "#{what}#wait" if @forked

        deadline = timeout && (Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout)
        @lock.synchronize do
          until yield
            left = deadline ? deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC) : 1.0
            if left <= 0
              raise AbstractHandle::WaitTimeoutError,
                    "Waiting for #{what} timed out after #{timeout} seconds"
            end
            @cv.wait(@lock, [left, 1.0].min)
          end
        end
        true
      end

      # Waits up to timeout seconds until every accepted record had its report
      # (and delivery_callback ran for it).
      def drained?(timeout)
        wait_until(timeout, "flush") { @pending.empty? && @dispatching.zero? }
      rescue AbstractHandle::WaitTimeoutError
        false
      end

      # The report thread: drains kp's reports in batches, GVL released while
      # kp_poll_reports waits.
      def run
        stride = Native::ReportInfo.size
        buf = FFI::MemoryPointer.new(stride, REPORT_BATCH)
        until @stop || @release
          buf.put(:size_t, 0, stride)
          n = Native.kp_poll_reports(@ptr, buf, REPORT_BATCH, POLL_MS)
          break if n.negative?

          deliver_batch(buf, n, stride) if n.positive?
        end
        release_native if @release && !@stop
      end

      # Whether the caller runs on the report thread (inside delivery_callback).
      def report_thread?
        Thread.current == @thread
      end

      def stop
        @stop = true
        @thread.join unless Thread.current == @thread
      end

      # kp_flush: sends what is queued now (linger.ms ignored) and waits up to
      # timeout_ms; reports come meanwhile through both paths. True when every
      # record had its report.
      def flush(timeout_ms)
        rc = Native.kp_flush(@ptr, timeout_ms)
        return false if rc == -105
        raise RdkafkaError.new(rc, nil, message_prefix: "flush") unless rc.zero?

        # a batch the report thread took may still be on its way to its handles
        drained?(5)
      end

      # Finalizer of an unreachable producer: the report thread closes kp as
      # close(RELEASE_TIMEOUT_MS) would, so its queued records still go out.
      def release
        @release = true
      end

      OFF_PARTITION = Native::ReportInfo.offset_of(:partition)
      OFF_OFFSET = Native::ReportInfo.offset_of(:offset)
      OFF_TIMESTAMP = Native::ReportInfo.offset_of(:timestamp)
      OFF_ERROR = Native::ReportInfo.offset_of(:error)
      OFF_CLASS = Native::ReportInfo.offset_of(:error_class)
      OFF_CTX = Native::ReportInfo.offset_of(:ctx)

      def deliver_batch(buf, count, stride)
        done = Array.new(count)
        @lock.synchronize do
          count.times do |i|
            base = i * stride
            handle = @pending.delete(buf.get_uint64(base + OFF_CTX))
            next unless handle

            err = buf.get_int32(base + OFF_ERROR)
            error = err.zero? ? nil : RdkafkaError.new(err, nil, error_class: buf.get_int32(base + OFF_CLASS), in_report: true)
            report = DeliveryReport.new(buf.get_int32(base + OFF_PARTITION), buf.get_int64(base + OFF_OFFSET),
                                        handle.topic, error, handle.label, buf.get_int64(base + OFF_TIMESTAMP))
            handle.complete!(report)
            done[i] = handle
          end
          @dispatching += 1
          @cv.broadcast
        end
        dispatched(done)
      end

      def dispatched(handles)
        run_callbacks(handles) if @callback
      ensure
        @lock.synchronize do
          @dispatching -= 1
          @cv.broadcast
        end
      end

      # A report served inside kp_producer_close/kp_producer_destroy on the thread
      # calling them (a Ruby thread: ffi takes the GVL back for the call).
      def deliver_one(report_ptr, ctx)
        handle = @lock.synchronize { @pending.delete(ctx.address) }
        return unless handle # never: each ctx is reported once

        err = Native.kp_report_error(report_ptr)
        error = if err.zero?
                  nil
                else
                  RdkafkaError.new(err, Native.kp_report_error_message(report_ptr),
                                   error_class: Native.kp_report_error_class(report_ptr), in_report: true)
                end
        @lock.synchronize do
          handle.complete!(DeliveryReport.new(Native.kp_report_partition(report_ptr),
                                              Native.kp_report_offset(report_ptr), handle.topic, error,
                                              handle.label, Native.kp_report_timestamp(report_ptr)))
          @dispatching += 1
        end
        dispatched([handle])
      end

      def run_callbacks(handles)
        cb = @callback
        two = cb.respond_to?(:arity) && cb.arity == 2
        handles.each do |h|
          next unless h

          begin
            two ? cb.call(h.create_result, h) : cb.call(h.create_result)
          rescue StandardError => e
            Config.logger.error("kp: delivery_callback raised #{e.class}: #{e.message}")
          end
        end
      end

      # Closes kp (see Producer#close); the report thread may still drain
      # meanwhile. Then stops that thread and frees kp's handle.
      def close_native(timeout_ms)
        rc = Native.kp_producer_close(@ptr, timeout_ms)
        stop
        Native.kp_producer_destroy(@ptr)
        REGISTRY.delete(@index)
        @lock.synchronize { @cv.broadcast }
        rc
      end

      private

      def release_native
        return if @forked || @closed

        @closed = true
        close_native(RELEASE_TIMEOUT_MS)
      end
    end

    # Open producers' States by index, for ON_REPORT.
    REGISTRY = {}
    # The delivery callback given to kp_send. kp calls it only from inside
    # kp_flush/kp_producer_close/kp_producer_destroy (poll mode serves reports
    # on the thread waiting there, as librdkafka's flush does), on the Ruby
    # thread calling them, with the GVL taken back by ffi; the report thread
    # drains every other report with kp_poll_reports, which calls no callback.
    ON_REPORT = FFI::Function.new(:void, %i[pointer pointer]) do |report, ctx|
      # The record's id (ctx) carries its producer's State index in its high bits.
      REGISTRY[ctx.address >> State::ID_BITS]&.deliver_one(report, ctx)
    end

    # In a forked child: every producer of the parent is unusable.
    def self.after_fork_in_child
      REGISTRY.each_value(&:forked!)
    end

    # config: a Kp::Config or a Hash of properties. logger: a Logger for kp's
    # log lines (default: Config.logger at the time of each line; see Kp::Log).
    # (Positional, so that a Hash of String properties is never taken for
    # keywords.)
    def initialize(config = {}, logger = nil)
      config = Config.new(config) unless config.is_a?(Config)
      settings = config.to_kp
      log_fn = Log.callback(logger)
      ptr = build_native(settings, log_fn)
      @state = State.new(ptr, settings["partitioner"], settings["max.block.ms"].to_i.positive?, log_fn)
      @name = settings["client.id"] || "kp#producer-#{@state.index}"
      @topics = {}
      @topic_lock = Mutex.new
      @partition_counts = {}
      ObjectSpace.define_finalizer(self, self.class.finalizer(@state))
    end

    # The client's name: client.id when set (as rdkafka-ruby's Producer#name).
    attr_reader :name

    def self.finalizer(state)
      proc { state.release }
    end

    # Called with each DeliveryReport (and the DeliveryHandle when the callable
    # takes two arguments) on the report thread.
    def delivery_callback=(callable)
      raise TypeError, "Callback has to be callable" unless callable.respond_to?(:call)

      @state.callback = callable
    end

    def delivery_callback
      @state.callback
    end

    # Queues a record; returns its DeliveryHandle. payload/key: Strings (nil:
    # null); partition: Integer (nil: the partitioner's choice); partition_key:
    # String whose hash picks the partition (by the configured partitioner);
    # timestamp: Integer milliseconds or Time (nil: now); headers: Hash of
    # String/Symbol => String (nil value: null header). Raises RdkafkaError when
    # the record is refused (:queue_full, :msg_size_too_large, ...).
    def produce(topic:, payload: nil, key: nil, partition: nil, partition_key: nil, timestamp: nil,
                headers: nil, label: nil, topic_config: nil)
      check(:produce)
      raise ArgumentError, "kp: per-record topic_config is not supported" if topic_config && !topic_config.empty?

      partition = partition_of(topic, partition_key) if partition.nil? && !partition_key.nil?
      handle = DeliveryHandle.new(@state, topic, label)
      id = @state.register(handle)
      rc = send_record(topic, payload, key, partition, timestamp, headers, id)
      return handle if rc.zero?

      @state.unregister(id)
      raise_send_error(rc)
    end

    # Queues many records with one call into kp (kp_send_batch): `messages` is
    # an Array of Hashes with produce's keywords. Returns their DeliveryHandles
    # in order. A record kp refuses (e.g. too large) does not raise: its handle
    # is complete at once with the error (wait raises it) and delivery_callback
    # is not called for it, since it was never accepted.
    def produce_many(messages)
      check(:produce_many)
      return [] if messages.empty?

      n = messages.size
      recs = messages.map { |m| batch_entry(m) }
      data = n * REC_SIZE
      hdr = data
      recs.each { |r| data += (r[5] ? r[5].size : 0) * HDR_SIZE }
      size = data + recs.sum { |r| record_bytes(r[2], r[1], r[5]) }
      buf = FFI::MemoryPointer.new(:uint8, size)
      base = buf.address
      ctxs = FFI::MemoryPointer.new(:uint64, n)
      results = FFI::MemoryPointer.new(:int32, n)
      handles = recs.each_with_index.map do |(topic, payload, key, partition, timestamp, headers, label), i|
        rec = i * REC_SIZE
        buf.put_uint64(rec, REC_SIZE)
        data = write_record(buf, base, rec, hdr, data, topic, payload, key, partition, timestamp, headers)
        hdr += (headers ? headers.size : 0) * HDR_SIZE
        h = DeliveryHandle.new(@state, topic, label)
        ctxs.put_uint64(i * 8, @state.register(h))
        h
      end
      send = @state.max_block ? :kp_send_batch_blocking : :kp_send_batch
      accepted = Native.public_send(send, @state.ptr, buf, n, ON_REPORT, ctxs, results)
      refuse_rest(handles, ctxs, results) if accepted < n
      handles
    end

    # Sends every queued record now and waits up to timeout_ms for their
    # reports. Returns true when none is outstanding, false on timeout (as
    # rdkafka-ruby). Like librdkafka's flush, it may run delivery_callback for
    # some reports on the calling thread.
    def flush(timeout_ms = 5_000)
      check_waits(:flush)
      @state.flush(ms(timeout_ms))
    end

    # Purges queued and in-flight records: each gets its report (:purge_queue or
    # :purge_inflight) from the report thread; returns true once all came.
    def purge
      check_waits(:purge)
      rc = Native.kp_purge(@state.ptr, Native::KP_PURGE_QUEUED | Native::KP_PURGE_IN_FLIGHT)
      raise RdkafkaError.new(rc) unless rc.zero?

      @state.drained?(30)
    end

    # Records accepted and not yet reported.
    def outstanding
      @state.outstanding
    end

    # Closes the producer: sends queued records and waits up to timeout_ms for
    # their reports; records still unreported then get a :destroy report (so
    # every record has exactly one), delivered before close returns. In a forked
    # child it only marks this producer closed (kp's threads belong to the
    # parent). Idempotent. Returns true when nothing had to be failed.
    def close(timeout_ms = 5_000)
      return if @state.closed

      check_waits(:close) unless @state.forked?
      ObjectSpace.undefine_finalizer(self)
      if @state.forked?
        @state.closed!
        return
      end
      @state.closed!
      @state.close_native(ms(timeout_ms)).zero?
    end

    def closed?
      @state.closed
    end

    # Partition count of `topic` (cached 30 s, as rdkafka-ruby), or -1 when the
    # topic does not exist. Waits up to 2 s for metadata, as rdkafka-ruby does.
    def partition_count(topic)
      check(:partition_count)
      now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      cached = @partition_counts[topic]
      return cached[1] if cached && now - cached[0] < 30

      out = FFI::MemoryPointer.new(:pointer)
      errstr = FFI::MemoryPointer.new(:char, ERRSTR)
      rc = Native.kp_partitions_for(@state.ptr, topic, 2_000, out, errstr, ERRSTR)
      if rc != 0
        text = errstr.read_string
        err = RdkafkaError.new(rc, text, message_prefix: "partition_count(#{topic})")
        # kp waits for the topic until the timeout, then names the broker's error
        return -1 if err.code == :unknown_topic_or_part || text.include?("UNKNOWN_TOPIC_OR_PARTITION")

        raise err
      end
      info = out.read_pointer
      count = Native.kp_topic_info_partition_count(info)
      Native.kp_topic_info_destroy(info)
      @partition_counts[topic] = [now, count]
      count
    end

    # -- transactions (need "transactional.id") ------------------------------------

    def init_transactions(timeout_ms = 60_000)
      txn(:init_transactions) { |p| Native.kp_init_transactions(p, ms(timeout_ms)) }
    end

    def begin_transaction
      txn(:begin_transaction) { |p| Native.kp_begin_transaction(p) }
    end

    # timeout_ms -1 (rdkafka-ruby's default: the remaining transaction time)
    # waits up to 60 s.
    def commit_transaction(timeout_ms = -1)
      txn(:commit_transaction) { |p| Native.kp_commit_transaction(p, ms(timeout_ms)) }
    end

    def abort_transaction(timeout_ms = -1)
      txn(:abort_transaction) { |p| Native.kp_abort_transaction(p, ms(timeout_ms)) }
    end

    # Adds consumer offsets to the transaction. `consumer`: the consumer group
    # id (String) or an object answering #group_id; `tpl`: a Hash of
    # topic => {partition => next offset} or topic => [objects with #partition and
    # #offset] (an rdkafka TopicPartitionList#to_h), or anything answering #to_h so.
    def send_offsets_to_transaction(consumer, tpl, timeout_ms = 5_000)
      group = consumer.is_a?(String) ? consumer : consumer.group_id
      offsets = Native.kp_offsets_new
      begin
        tpl.to_h.each do |topic, parts|
          parts = parts.map { |pt| [pt.partition, pt.offset] } unless parts.is_a?(Hash)
          parts.each do |partition, offset|
            rc = Native.kp_offsets_add(offsets, topic.to_s, partition, offset)
            raise RdkafkaError.new(rc) unless rc.zero?
          end
        end
        txn(:send_offsets_to_transaction) do |p|
          Native.kp_send_offsets_to_transaction(p, offsets, group.to_s, ms(timeout_ms))
        end
      ensure
        Native.kp_offsets_destroy(offsets)
      end
    end

    private

    def check(method_name)
      raise ForkedProducerError, method_name if @state.forked?
      raise ClosedProducerError, method_name if @state.closed
    end

    # flush, purge and close wait for reports, which the calling thread would
    # have to deliver itself when it is the report thread.
    def check_waits(method_name)
      check(method_name)
      return unless @state.report_thread?

      raise RdkafkaError.new(-112, "#{method_name} must not be called from delivery_callback",
                             message_prefix: method_name.to_s)
    end

    def ms(timeout_ms)
      timeout_ms.negative? ? 60_000 : [timeout_ms, INT32_MAX].min
    end

    def txn(method_name)
      check(method_name)
      err = yield @state.ptr
      raise RdkafkaError.from_kp_error(err, method_name.to_s) unless err.null?

      true
    end

    def build_native(settings, log_fn)
      cfg = Native.kp_config_new
      errstr = FFI::MemoryPointer.new(:char, ERRSTR)
      begin
        raise Config::ConfigError, "kp_config_set_log_callback failed" unless Native.kp_config_set_log_callback(cfg, log_fn, nil).zero?
        settings.each do |name, value|
          rc = Native.kp_config_set(cfg, name, value, errstr, ERRSTR)
          raise Config::ConfigError, errstr.read_string unless rc == Native::KP_CONFIG_OK
        end
        ptr = Native.kp_producer_new(cfg, errstr, ERRSTR)
        raise Config::ConfigError, errstr.read_string if ptr.null?

        cfg = nil
        ptr
      ensure
        Native.kp_config_destroy(cfg) if cfg
      end
    end

    def partition_of(topic, partition_key)
      count = partition_count(topic)
      return nil unless count.positive?

      Partitioner.partition_for(@state.partitioner, partition_key.to_s, count)
    end

    # [topic, payload, key, partition, timestamp, headers, label] of one message.
    def batch_entry(msg)
      raise ArgumentError, "kp: per-record topic_config is not supported" if msg[:topic_config]&.any?

      topic = msg.fetch(:topic)
      key = msg[:key]
      key = key.to_s unless key.nil? || key.is_a?(String)
      payload = msg[:payload]
      payload = payload.to_s unless payload.nil? || payload.is_a?(String)
      partition = msg[:partition]
      partition = partition_of(topic, msg[:partition_key]) if partition.nil? && !msg[:partition_key].nil?
      [topic, payload, key, partition, msg[:timestamp], header_pairs(msg[:headers]), msg[:label]]
    end

    def refuse_rest(handles, ctxs, results)
      raise ForkedProducerError, :produce_many if results.get_int32(0) == -117

      handles.each_with_index do |h, i|
        code = results.get_int32(i * 4)
        next if code.zero?

        @state.unregister(ctxs.get_uint64(i * 8))
        err = RdkafkaError.new(code, nil, message_prefix: "produce_many")
        h.complete!(DeliveryReport.new(-1, -1, h.topic, err, h.label, nil))
      end
    end

    # The topic's C string, made once and kept for the producer's life (a
    # record holds only its address while kp_send runs).
    def topic_cstr(topic)
      @topics[topic] || @topic_lock.synchronize { @topics[topic] ||= FFI::MemoryPointer.from_string(topic.to_s) }
    end

    REC = Native::Record
    REC_SIZE = REC.size
    HDR_SIZE = Native::Header.size
    R_TOPIC = REC.offset_of(:topic)
    R_PARTITION = REC.offset_of(:partition)
    R_KEY = REC.offset_of(:key)
    R_KEY_LEN = REC.offset_of(:key_len)
    R_VALUE = REC.offset_of(:value)
    R_VALUE_LEN = REC.offset_of(:value_len)
    R_HEADERS = REC.offset_of(:headers)
    R_HEADER_COUNT = REC.offset_of(:header_count)
    R_TIMESTAMP = REC.offset_of(:timestamp_ms)

    # The record is written into one native buffer per thread (kp copies it
    # during kp_send): the kp_record_t, its kp_header_t array, then the key,
    # value and header bytes. Zeroed when made, so value_free stays NULL; field
    # by field, which costs the least Ruby time per record.
    def scratch(size)
      buf = Thread.current[:kp_scratch]
      if buf.nil? || buf.size < size
        buf = FFI::MemoryPointer.new(:uint8, [size, 4096].max * 2)
        buf.put_uint64(0, REC_SIZE)
        Thread.current[:kp_scratch] = buf
      end
      buf
    end

    # Headers as given, or as [name, value] pairs when a value is an Array
    # (several headers of one name, as newer rdkafka-ruby takes them).
    def header_pairs(headers)
      return headers unless headers&.any? { |_, v| v.is_a?(Array) }

      headers.flat_map { |k, v| v.is_a?(Array) ? v.map { |x| [k, x] } : [[k, v]] }
    end

    def send_record(topic, payload, key, partition, timestamp, headers, id)
      headers = header_pairs(headers)
      key = key.to_s unless key.nil? || key.is_a?(String)
      payload = payload.to_s unless payload.nil? || payload.is_a?(String)
      nh = headers ? headers.size : 0
      data = REC_SIZE + (nh * HDR_SIZE)
      buf = scratch(data + record_bytes(key, payload, headers))
      write_record(buf, buf.address, 0, REC_SIZE, data, topic, payload, key, partition, timestamp, headers)
      if @state.max_block
        Native.kp_send_with_errstr_blocking(@state.ptr, buf, ON_REPORT, id, nil, 0)
      else
        Native.kp_send_with_errstr(@state.ptr, buf, ON_REPORT, id, nil, 0)
      end
    end

    def record_bytes(key, payload, headers)
      (key ? key.bytesize : 0) + (payload ? payload.bytesize : 0) + (headers ? header_bytes(headers) : 0)
    end

    # Writes the kp_record_t at `rec`, its headers at `hdr` and its bytes from
    # `data` on (offsets in buf, whose address is base); returns the next free
    # data offset.
    def write_record(buf, base, rec, hdr, data, topic, payload, key, partition, timestamp, headers)
      nh = headers ? headers.size : 0
      klen = key ? key.bytesize : 0
      vlen = payload ? payload.bytesize : 0
      buf.put_uint64(rec + R_TOPIC, topic_cstr(topic).address)
      buf.put_int32(rec + R_PARTITION, partition || Native::KP_PARTITION_ANY)
      buf.put_int64(rec + R_TIMESTAMP, timestamp_ms(timestamp))
      if key
        buf.put_bytes(data, key)
        buf.put_uint64(rec + R_KEY, base + data)
      else
        buf.put_uint64(rec + R_KEY, 0)
      end
      buf.put_uint64(rec + R_KEY_LEN, klen)
      if payload
        buf.put_bytes(data + klen, payload)
        buf.put_uint64(rec + R_VALUE, base + data + klen)
      else
        buf.put_uint64(rec + R_VALUE, 0)
      end
      buf.put_uint64(rec + R_VALUE_LEN, vlen)
      buf.put_uint64(rec + R_HEADER_COUNT, nh)
      buf.put_uint64(rec + R_HEADERS, nh.zero? ? 0 : base + hdr)
      data += klen + vlen
      nh.zero? ? data : put_headers(buf, base, headers, hdr, data)
    end

    def header_bytes(headers)
      headers.sum { |k, v| k.to_s.bytesize + (v.nil? ? 0 : v.to_s.bytesize) }
    end

    # kp_header_t i at hdr + i * HDR_SIZE; names and values from `at` on.
    # Returns the next free offset.
    def put_headers(buf, base, headers, hdr, at)
      headers.each_with_index do |(k, v), i|
        k = k.to_s
        h = hdr + (i * HDR_SIZE)
        buf.put_bytes(at, k)
        buf.put_uint64(h, base + at)
        buf.put_uint64(h + 8, k.bytesize)
        at += k.bytesize
        if v.nil?
          buf.put_uint64(h + 16, 0)
          buf.put_uint64(h + 24, 0)
        else
          v = v.to_s
          buf.put_bytes(at, v)
          buf.put_uint64(h + 16, base + at)
          buf.put_uint64(h + 24, v.bytesize)
          at += v.bytesize
        end
      end
      at
    end

    def timestamp_ms(timestamp)
      case timestamp
      when nil then 0
      when Integer then timestamp
      when Time then (timestamp.to_r * 1000).to_i
      else raise TypeError, "timestamp must be an Integer (ms) or a Time"
      end
    end

    def raise_send_error(code)
      raise ForkedProducerError, :produce if code == -117

      fatal = FFI::MemoryPointer.new(:char, ERRSTR)
      fcode = Native.kp_producer_fatal_error(@state.ptr, fatal, ERRSTR)
      raise RdkafkaError.new(fcode, fatal.read_string, message_prefix: "produce", fatal: true) unless fcode.zero?

      raise RdkafkaError.new(code, nil, message_prefix: "produce")
    end
  end
end
