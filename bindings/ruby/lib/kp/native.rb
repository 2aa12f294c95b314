# frozen_string_literal: true

require "ffi"

module Kp
  # The C ABI of libkp (include/kp.h), attached with the ffi gem. Calls that can
  # wait are attached with `blocking: true`: ffi releases the GVL around them, so
  # other Ruby threads run meanwhile. Nothing here is called back from a kp
  # thread: the producer runs kp in delivery.report.mode=poll and drains reports
  # on a Ruby thread of its own (see Producer). kp's callbacks (delivery
  # reports served inside flush/close, log lines) run inside those blocking
  # calls on the Ruby thread that made them; ffi takes the GVL back for them.
  module Native
    extend FFI::Library

    # Where libkp is looked for, first match wins: $KP_LIBRARY; the kp repository
    # this file sits in (target/release/libkp.so, as `make lib` builds it); the
    # system's library path (`make install`).
    def self.library_candidates
      repo = File.expand_path("../../../../target/release/libkp.so", __dir__)
      [ENV["KP_LIBRARY"], (repo if File.exist?(repo)), "kp"].compact.reject(&:empty?)
    end

    ffi_lib library_candidates

    # kp_record_t (kp.h section 4)
    class Record < FFI::Struct
      layout :struct_size, :size_t,
             :topic, :pointer,
             :partition, :int32,
             :key, :pointer,
             :key_len, :size_t,
             :value, :pointer,
             :value_len, :size_t,
             :headers, :pointer,
             :header_count, :size_t,
             :timestamp_ms, :int64,
             :value_free, :pointer,
             :value_free_opaque, :pointer
    end

    # kp_header_t
    class Header < FFI::Struct
      layout :key, :pointer, :key_len, :size_t, :value, :pointer, :value_len, :size_t
    end

    # kp_report_info_t (kp.h section 5)
    class ReportInfo < FFI::Struct
      layout :struct_size, :size_t,
             :topic, :pointer,
             :partition, :int32,
             :offset, :int64,
             :timestamp, :int64,
             :error, :int32,
             :error_class, :int32,
             :persistence, :int32,
             :ctx, :pointer
    end

    KP_PARTITION_ANY = -1
    KP_PURGE_QUEUED = 1
    KP_PURGE_IN_FLIGHT = 2
    KP_CONFIG_OK = 0
    KP_CONFIG_UNKNOWN = -2

    callback :delivery_cb, %i[pointer pointer], :void
    # kp_log_fn_t (kp.h section 3): level, facility, message, ctx
    callback :log_cb, %i[int32 string string pointer], :void

    # errors
    attach_function :kp_err_name, [:int32], :string
    attach_function :kp_err_str, [:int32], :string
    attach_function :kp_err_class, [:int32], :int32
    attach_function :kp_error_code, [:pointer], :int32
    attach_function :kp_error_message, [:pointer], :string
    attach_function :kp_error_is_retriable, [:pointer], :bool
    attach_function :kp_error_is_fatal, [:pointer], :bool
    attach_function :kp_error_txn_requires_abort, [:pointer], :bool
    attach_function :kp_error_destroy, [:pointer], :void

    # config
    attach_function :kp_config_new, [], :pointer
    attach_function :kp_config_destroy, [:pointer], :void
    attach_function :kp_config_set, %i[pointer string string pointer size_t], :int32
    attach_function :kp_config_set_log_callback, %i[pointer log_cb pointer], :int32

    # producer
    attach_function :kp_producer_new, %i[pointer pointer size_t], :pointer, blocking: true
    attach_function :kp_producer_fatal_error, %i[pointer pointer size_t], :int32
    attach_function :kp_flush, %i[pointer int32], :int32, blocking: true
    attach_function :kp_purge, %i[pointer int32], :int32
    attach_function :kp_producer_outstanding, [:pointer], :size_t
    attach_function :kp_producer_close, %i[pointer int32], :int32, blocking: true
    attach_function :kp_producer_destroy, [:pointer], :void, blocking: true

    # sending: kp_send only blocks when the buffer is full and max.block.ms > 0
    # (the ctx argument, a void *, is passed as the record's id, an integer)
    attach_function :kp_send_with_errstr, %i[pointer pointer delivery_cb uintptr_t pointer size_t], :int32
    attach_function :kp_send_with_errstr_blocking, :kp_send_with_errstr,
                    %i[pointer pointer delivery_cb uintptr_t pointer size_t], :int32, blocking: true

    attach_function :kp_send_batch, %i[pointer pointer size_t delivery_cb pointer pointer], :size_t
    attach_function :kp_send_batch_blocking, :kp_send_batch,
                    %i[pointer pointer size_t delivery_cb pointer pointer], :size_t, blocking: true

    # reports
    attach_function :kp_report_partition, [:pointer], :int32
    attach_function :kp_report_offset, [:pointer], :int64
    attach_function :kp_report_timestamp, [:pointer], :int64
    attach_function :kp_report_error, [:pointer], :int32
    attach_function :kp_report_error_message, [:pointer], :string
    attach_function :kp_report_error_class, [:pointer], :int32
    attach_function :kp_poll_reports, %i[pointer pointer size_t int32], :int, blocking: true

    # metadata
    attach_function :kp_partitions_for, %i[pointer string int32 pointer pointer size_t], :int32, blocking: true
    attach_function :kp_topic_info_partition_count, [:pointer], :int32
    attach_function :kp_topic_info_destroy, [:pointer], :void

    # transactions (each returns NULL or a kp_error_t to free)
    attach_function :kp_init_transactions, %i[pointer int32], :pointer, blocking: true
    attach_function :kp_begin_transaction, [:pointer], :pointer
    attach_function :kp_commit_transaction, %i[pointer int32], :pointer, blocking: true
    attach_function :kp_abort_transaction, %i[pointer int32], :pointer, blocking: true
    attach_function :kp_send_offsets_to_transaction, %i[pointer pointer string int32], :pointer, blocking: true
    attach_function :kp_offsets_new, [], :pointer
    attach_function :kp_offsets_add, %i[pointer string int32 int64], :int32
    attach_function :kp_offsets_destroy, [:pointer], :void

    attach_function :kp_version_str, [], :string
  end
end
