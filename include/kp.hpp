/*
 * kp.hpp - the C++17 API of kp, a Kafka producer. Header-only, over the C
 * ABI in kp.h (link with -lkp as for C).
 *
 *   kp::Producer p(kp::Config{{"bootstrap.servers", "127.0.0.1:9092"}});
 *   p.send(kp::Record("orders", "id-42", "hello"),
 *          [&](const kp::DeliveryReport& r) { if (!r.ok()) log(r.error_message()); });
 *   kp::RecordMetadata m = p.send_sync(kp::Record("orders", "hello"));
 *   std::future<kp::RecordMetadata> f = p.send_future(kp::Record("orders", "hi"));
 *   kp::BatchResult b = p.send_batch(records, [&](const kp::DeliveryReport& r, std::size_t i) { ... });
 *   p.close();
 *
 * Also: poll_reports() (the batched drain of poll mode: reports as plain
 * values), Config::set_logger() (kp's log lines to any callable), error
 * classes (kp::ErrorClass) on errors and reports.
 *
 * Errors are exceptions (kp::Error, with the C API's code and error class):
 * C++17 has no std::expected, a constructor (Config, Producer) can only
 * report failure by throwing, std::future already carries exceptions, and
 * a call that fails here (bad config, record refused, transaction error) is
 * the exception rather than the rule. Outcomes that are expected results
 * are values instead: a delivery report (ok or not) is passed to the
 * callback, and flush()/close() return false when their timeout expires.
 *
 * Ownership: every class here owns its C handle (RAII). Producer is
 * move-only; Config is copyable (kp_config_dup). A callable given to send()
 * is moved into a heap node that kp owns until the record's one report:
 * the callable runs once and is then destroyed, also when the report is an
 * error, when the producer is closed or destroyed with records queued
 * (every accepted record gets exactly one report before ~Producer returns),
 * or when the callable throws. If send() throws, the record was not
 * accepted and the callable is destroyed without being called.
 *
 * send_batch() owns its one callable likewise until the last accepted
 * record's report.
 *
 * Exceptions thrown by a delivery callback never cross into kp (its frames
 * are C/Rust): kp.hpp catches them, keeps the first one and counts the
 * rest; the next poll(), flush() or close() on the producer rethrows it
 * (after finishing its own work), and take_callback_exception() hands it
 * over without throwing. Other records keep getting their reports.
 *
 * Threads: as in kp.h. Producer's member functions may be called from any
 * number of threads at once, except moves, assignment and destruction.
 * Callbacks run on kp's delivery thread (delivery.report.mode=thread, the
 * default) or inside poll()/flush()/close() (delivery.report.mode=poll).
 */
#ifndef KP_HPP
#define KP_HPP

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <future>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "kp.h"

#if !defined(__cplusplus) || __cplusplus < 201703L
#error "kp.hpp needs C++17 or later"
#endif

namespace kp {

using Metrics = kp_metrics_t;

/* The library's version string (e.g. "0.1.0"); KP_VERSION_STR is the header's. */
inline std::string_view version() noexcept { return kp_version_str(); }

/*
 * What the application can do about an error (KP_ERROR_CLASS_*, after
 * KIP-1050, as the Java client classifies since Kafka 4.1).
 */
enum class ErrorClass : std::int32_t {
    None = KP_ERROR_CLASS_NONE,                                     /* no error */
    Retriable = KP_ERROR_CLASS_RETRIABLE,                           /* retry the call or the record */
    RefreshRetriable = KP_ERROR_CLASS_REFRESH_RETRIABLE,            /* retry (kp refreshes metadata itself) */
    Abortable = KP_ERROR_CLASS_ABORTABLE,                           /* abort the transaction, then go on */
    ApplicationRecoverable = KP_ERROR_CLASS_APPLICATION_RECOVERABLE, /* fix or drop the record */
    InvalidConfiguration = KP_ERROR_CLASS_INVALID_CONFIGURATION,    /* a setting, permission or feature */
    Fatal = KP_ERROR_CLASS_FATAL,                                   /* create a new producer */
};

/* "RETRIABLE", "ABORTABLE", ... ("UNKNOWN" for a value kp.hpp does not know). */
inline const char* to_string(ErrorClass c) noexcept {
    switch (c) {
    case ErrorClass::None: return "NONE";
    case ErrorClass::Retriable: return "RETRIABLE";
    case ErrorClass::RefreshRetriable: return "REFRESH_RETRIABLE";
    case ErrorClass::Abortable: return "ABORTABLE";
    case ErrorClass::ApplicationRecoverable: return "APPLICATION_RECOVERABLE";
    case ErrorClass::InvalidConfiguration: return "INVALID_CONFIGURATION";
    case ErrorClass::Fatal: return "FATAL";
    }
    return "UNKNOWN";
}

/*
 * An error from kp: the C API's code (kp_err_t), its symbolic name, a
 * message and its error class. After fork() every call on a producer
 * created before it throws Error with code KP_ERR_FORKED (class Fatal):
 * destroy that Producer (its destructor returns at once in the child) and
 * create a new one.
 */
class Error : public std::runtime_error {
  public:
    /* The code's own class and retriability (kp_err_class, kp_err_is_retriable). */
    Error(kp_err_t code, const std::string& message)
        : Error(code, message, static_cast<ErrorClass>(kp_err_class(code)), kp_err_is_retriable(code)) {}
    Error(kp_err_t code, const std::string& message, ErrorClass error_class, bool retriable)
        : std::runtime_error(std::string(kp_err_name(code)) + ": " + message), code_(code), class_(error_class),
          retriable_(retriable) {}

    kp_err_t code() const noexcept { return code_; }
    /* Symbolic name, e.g. "QUEUE_FULL" (static string). */
    const char* name() const noexcept { return kp_err_name(code_); }
    /* The class: what to do about it. A failed record's class can differ
       from its code's (inside a transaction a retriable error that ran out
       of retries is Abortable). */
    ErrorClass error_class() const noexcept { return class_; }
    /* Calling the same function again (or re-sending the record) may succeed. */
    bool is_retriable() const noexcept { return retriable_; }
    /* The producer can no longer be used: destroy it and create a new one. */
    bool is_fatal() const noexcept { return class_ == ErrorClass::Fatal; }
    /* The transaction must be aborted (abort_transaction()) before going on. */
    bool txn_requires_abort() const noexcept { return class_ == ErrorClass::Abortable; }

  private:
    kp_err_t code_;
    ErrorClass class_;
    bool retriable_;
};

/* Config::set() failed: unknown property or invalid value (code
   KP_ERR_INVALID_ARG, class InvalidConfiguration). */
class ConfigError : public Error {
  public:
    ConfigError(kp_config_result_t result, const std::string& message)
        : Error(KP_ERR_INVALID_ARG, message, ErrorClass::InvalidConfiguration, false),
          unknown_(result == KP_CONFIG_UNKNOWN) {}
    /* No property of that name exists (else: the value is invalid). */
    bool unknown_property() const noexcept { return unknown_; }

  private:
    bool unknown_;
};

namespace detail {
/* 1-byte trivially copyable element types (char, unsigned char, std::byte, ...). */
template <class E, class = void>
struct is_byte_like : std::false_type {};
template <class E>
struct is_byte_like<E, std::enable_if_t<std::is_trivially_copyable_v<E> && sizeof(E) == 1>> : std::true_type {};
}  // namespace detail

/*
 * A nullable view of bytes (key, value or header value). Null (the default,
 * nullptr, a default std::string_view) is Kafka's null, distinct from empty
 * (""). Built from a C string, std::string_view, (pointer, size), or any
 * contiguous container of 1-byte elements: std::string, std::vector<char>,
 * std::vector<uint8_t>, std::array<std::byte, N>, C++20
 * std::span<const std::byte>. It does not own the bytes: they must stay
 * valid during the send call (kp copies them before send returns).
 */
class Bytes {
  public:
    constexpr Bytes() noexcept = default;
    constexpr Bytes(std::nullptr_t) noexcept {}
    constexpr Bytes(const void* data, std::size_t size) noexcept : data_(data), size_(data ? size : 0) {}
    Bytes(const char* cstr) noexcept : data_(cstr), size_(cstr ? std::strlen(cstr) : 0) {}
    constexpr Bytes(std::string_view s) noexcept : data_(s.data()), size_(s.data() ? s.size() : 0) {}
    template <class C,
              class E = std::remove_cv_t<std::remove_pointer_t<decltype(std::data(std::declval<const C&>()))>>,
              class = std::enable_if_t<!std::is_array_v<C> && detail::is_byte_like<E>::value &&
                                       std::is_convertible_v<decltype(std::size(std::declval<const C&>())), std::size_t>>>
    Bytes(const C& c) noexcept : data_(std::data(c)), size_(std::size(c)) {}

    constexpr const void* data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool is_null() const noexcept { return data_ == nullptr; }

  private:
    const void* data_ = nullptr;
    std::size_t size_ = 0;
};

/* One record header. The key must not be empty; a null value is allowed. */
struct Header {
    std::string_view key;
    Bytes value;
};

namespace detail {
/* A view of contiguous Ts (std::vector<T>, std::array<T, N>, T[N], C++20
   std::span<const T>, or pointer and count); it does not own them. */
template <class T>
class View {
  public:
    constexpr View() noexcept = default;
    constexpr View(const T* data, std::size_t size) noexcept : data_(data), size_(data ? size : 0) {}
    template <class C, class = std::enable_if_t<std::is_same_v<
                           std::remove_cv_t<std::remove_pointer_t<decltype(std::data(std::declval<const C&>()))>>, T>>>
    View(const C& c) noexcept : data_(std::data(c)), size_(std::size(c)) {}

    constexpr const T* begin() const noexcept { return data_; }
    constexpr const T* end() const noexcept { return data_ + size_; }
    constexpr const T& operator[](std::size_t i) const noexcept { return data_[i]; }
    constexpr std::size_t size() const noexcept { return size_; }

  private:
    const T* data_ = nullptr;
    std::size_t size_ = 0;
};
}  // namespace detail

/* A view of contiguous headers (std::vector<Header>, std::array<Header, N>,
   Header[N], or pointer and count). It does not own them. */
using Headers = detail::View<Header>;

/*
 * A record to send. All fields are views: the bytes must stay valid until
 * the send call returns (kp copies them; nothing is kept after).
 */
struct Record {
    std::string_view topic;
    Bytes key;   /* null key by default */
    Bytes value; /* null value (a tombstone) by default */
    Headers headers;
    std::int32_t partition = KP_PARTITION_ANY; /* or an explicit partition */
    std::int64_t timestamp_ms = 0;             /* CreateTime; 0 means now */

    Record() = default;
    explicit Record(std::string_view topic_) : topic(topic_) {}
    Record(std::string_view topic_, Bytes value_) : topic(topic_), value(value_) {}
    Record(std::string_view topic_, Bytes key_, Bytes value_) : topic(topic_), key(key_), value(value_) {}
};

/* Where a delivered record landed (an owned copy; see DeliveryReport). */
struct RecordMetadata {
    std::string topic;
    std::int32_t partition = -1;
    std::int64_t offset = -1;       /* -1 when unknown (acks=0) */
    std::int64_t timestamp_ms = -1; /* -1 when unknown (send_sync does not learn it) */
};

enum class Persistence : int {
    NotPersisted = KP_NOT_PERSISTED,
    PossiblyPersisted = KP_POSSIBLY_PERSISTED,
    Persisted = KP_PERSISTED,
};

/*
 * A delivery report: a view valid only during the callback that receives it
 * (copy what you keep, e.g. with metadata()).
 */
class DeliveryReport {
  public:
    explicit DeliveryReport(const kp_report_t* r) noexcept : r_(r) {}

    bool ok() const noexcept { return kp_report_error(r_) == KP_OK; }
    kp_err_t error_code() const noexcept { return kp_report_error(r_); }
    const char* error_name() const noexcept { return kp_err_name(kp_report_error(r_)); }
    std::string_view error_message() const noexcept {
        const char* m = kp_report_error_message(r_);
        return m ? std::string_view(m) : std::string_view();
    }
    bool is_retriable() const noexcept { return kp_report_is_retriable(r_); }
    /* The report's class (None when ok()): inside a transaction a
       retriable error that ran out of retries is Abortable. */
    ErrorClass error_class() const noexcept { return static_cast<ErrorClass>(kp_report_error_class(r_)); }
    Persistence persistence() const noexcept { return static_cast<Persistence>(kp_report_persistence(r_)); }
    std::string_view topic() const noexcept {
        const char* t = kp_report_topic(r_);
        return t ? std::string_view(t) : std::string_view();
    }
    std::int32_t partition() const noexcept { return kp_report_partition(r_); }
    std::int64_t offset() const noexcept { return kp_report_offset(r_); }
    std::int64_t timestamp_ms() const noexcept { return kp_report_timestamp(r_); }

    RecordMetadata metadata() const { return RecordMetadata{std::string(topic()), partition(), offset(), timestamp_ms()}; }
    /* The report's error as an exception object (meaningful when !ok()). */
    Error error() const { return Error(error_code(), std::string(error_message()), error_class(), is_retriable()); }
    const kp_report_t* native_handle() const noexcept { return r_; }

  private:
    const kp_report_t* r_;
};

/*
 * A delivery report as a plain value, taken by Producer::poll_reports()
 * (kp_report_info_t): copy it, keep it, hand it to another thread. Only
 * topic() points into the producer: it stays valid until the producer is
 * destroyed. There is no error message (error().what() names the code).
 */
class ReportInfo {
  public:
    explicit ReportInfo(const kp_report_info_t& i) noexcept : i_(i) {}

    bool ok() const noexcept { return i_.error == KP_OK; }
    kp_err_t error_code() const noexcept { return i_.error; }
    const char* error_name() const noexcept { return kp_err_name(i_.error); }
    ErrorClass error_class() const noexcept { return static_cast<ErrorClass>(i_.error_class); }
    Persistence persistence() const noexcept { return static_cast<Persistence>(i_.persistence); }
    std::string_view topic() const noexcept { return i_.topic ? std::string_view(i_.topic) : std::string_view(); }
    std::int32_t partition() const noexcept { return i_.partition; }
    std::int64_t offset() const noexcept { return i_.offset; }
    std::int64_t timestamp_ms() const noexcept { return i_.timestamp; }
    /* The ctx given with the record (send_batch() with ctxs, or the C-form
       send() with a non-null cb); null otherwise (kp keeps no ctx without a cb). */
    void* ctx() const noexcept { return i_.ctx; }

    RecordMetadata metadata() const { return RecordMetadata{std::string(topic()), partition(), offset(), timestamp_ms()}; }
    /* The report's error as an exception object (meaningful when !ok()). */
    Error error() const { return Error(i_.error, kp_err_str(i_.error), error_class(), kp_err_is_retriable(i_.error)); }
    const kp_report_info_t& native() const noexcept { return i_; }

  private:
    kp_report_info_t i_;
};

/* Log levels (syslog's, KP_LOG_*): kp uses Crit .. Debug. */
enum class LogLevel : std::int32_t {
    Emerg = KP_LOG_EMERG,
    Alert = KP_LOG_ALERT,
    Crit = KP_LOG_CRIT,
    Err = KP_LOG_ERR,
    Warning = KP_LOG_WARNING,
    Notice = KP_LOG_NOTICE,
    Info = KP_LOG_INFO,
    Debug = KP_LOG_DEBUG,
};

/* A view of contiguous records for send_batch() (std::vector<Record>,
   std::array<Record, N>, Record[N], C++20 std::span<const Record>, or
   pointer and count). It does not own them. */
using Records = detail::View<Record>;

/*
 * What send_batch() did with each record: results[i] is KP_OK (accepted:
 * one report will come) or why record i was refused (no report will come
 * for it; kp did not keep it and will not retry it).
 */
struct BatchResult {
    std::size_t accepted = 0;
    std::vector<kp_err_t> results;

    bool all_accepted() const noexcept { return accepted == results.size(); }
    /* Why record i was refused, as an exception object (code and class; no message). */
    Error error(std::size_t i) const { return Error(results.at(i), kp_err_str(results.at(i))); }
};

/* One partition of a topic and its leader broker (-1 when unknown). */
struct PartitionInfo {
    std::int32_t partition;
    std::int32_t leader;
};

/* Consumer offset for send_offsets_to_transaction(): the next offset to consume. */
struct TopicPartitionOffset {
    std::string topic;
    std::int32_t partition;
    std::int64_t offset;
};

namespace detail {

inline std::int32_t to_ms(std::chrono::milliseconds t) noexcept {
    auto c = t.count();
    if (c < 0)
        return 0;
    if (c > std::numeric_limits<std::int32_t>::max())
        return std::numeric_limits<std::int32_t>::max();
    return static_cast<std::int32_t>(c);
}

/* Throws the error of a transactional call (NULL means success). */
inline void check(kp_error_t* e) {
    if (!e)
        return;
    std::unique_ptr<kp_error_t, void (*)(kp_error_t*)> owned(e, kp_error_destroy);
    throw Error(kp_error_code(e), kp_error_message(e), static_cast<ErrorClass>(kp_error_class(e)),
                kp_error_is_retriable(e));
}

/* Per-producer state shared with callback nodes; its address never changes. */
class CallbackErrors {
  public:
    void store(std::exception_ptr e) noexcept {
        std::lock_guard<std::mutex> g(mu_);
        if (!first_)
            first_ = std::move(e);
        else
            dropped_++;
    }
    std::exception_ptr take() noexcept {
        std::lock_guard<std::mutex> g(mu_);
        std::exception_ptr e = std::move(first_);
        first_ = nullptr;
        return e;
    }
    std::size_t dropped() const noexcept {
        std::lock_guard<std::mutex> g(mu_);
        return dropped_;
    }

  private:
    mutable std::mutex mu_;
    std::exception_ptr first_;
    std::size_t dropped_ = 0;
};

/* Owns a callable until its one report, then runs and destroys it. */
template <class Fn>
struct CallbackNode {
    CallbackErrors* errors;
    Fn fn;

    template <class F>
    CallbackNode(CallbackErrors* e, F&& f) : errors(e), fn(std::forward<F>(f)) {}

    static void invoke(const kp_report_t* report, void* ctx) noexcept {
        std::unique_ptr<CallbackNode> self(static_cast<CallbackNode*>(ctx));
        try {
            const DeliveryReport r(report);
            self->fn(r);
        } catch (...) {
            self->errors->store(std::current_exception());
        }
    }
};

/* A header in C form (views, as the Header). */
inline kp_header_t to_c(const Header& h) noexcept {
    return kp_header_t{h.key.data() ? h.key.data() : "", h.key.size(), h.value.data(), h.value.size()};
}

/* Sets a kp_record_t's fields from a Record, except topic and headers. */
inline void set_fields(kp_record_t& c, const Record& r) noexcept {
    c.partition = r.partition;
    c.key = r.key.data();
    c.key_len = r.key.size();
    c.value = r.value.data();
    c.value_len = r.value.size();
    c.timestamp_ms = r.timestamp_ms;
}

/*
 * A kp_record_t built from a Record: a NUL-terminated copy of the topic and
 * the headers in C form, on the stack unless unusually large.
 */
class CRecord {
  public:
    explicit CRecord(const Record& r) {
        const std::size_t tn = r.topic.size();
        if (tn < sizeof topic_) {
            if (tn)
                std::memcpy(topic_, r.topic.data(), tn);
            topic_[tn] = '\0';
            rec_.topic = topic_;
        } else {
            long_topic_.assign(r.topic); /* longer than Kafka allows: kp says INVALID_TOPIC */
            rec_.topic = long_topic_.c_str();
        }
        set_fields(rec_, r);
        const std::size_t hn = r.headers.size();
        if (hn) {
            kp_header_t* h = headers_;
            if (hn > sizeof headers_ / sizeof headers_[0]) {
                long_headers_.resize(hn);
                h = long_headers_.data();
            }
            std::size_t i = 0;
            for (const Header& src : r.headers)
                h[i++] = to_c(src);
            rec_.headers = h;
            rec_.header_count = hn;
        }
    }
    CRecord(const CRecord&) = delete;
    CRecord& operator=(const CRecord&) = delete;

    const kp_record_t* get() const noexcept { return &rec_; }
    /* Topics with a NUL byte inside are refused before reaching kp. */
    bool topic_has_nul(const Record& r) const noexcept {
        return r.topic.find('\0') != std::string_view::npos; /* (memchr on a null view would be UB) */
    }

  private:
    kp_record_t rec_ = KP_RECORD_INIT;
    char topic_[256];
    std::string long_topic_;
    kp_header_t headers_[8];
    std::vector<kp_header_t> long_headers_;
};

/*
 * The C form of a batch: kp_record_t[n], the topics NUL-terminated (one
 * copy per run of records with the same topic; a topic with a NUL byte
 * becomes "", which kp refuses with INVALID_TOPIC) and the headers.
 */
class CBatch {
  public:
    explicit CBatch(Records records) {
        const kp_record_t init = KP_RECORD_INIT;
        recs_.assign(records.size(), init);
        std::size_t header_count = 0, topic_bytes = 0;
        for (const Record& r : records) {
            header_count += r.headers.size();
            topic_bytes += r.topic.size() + 1;
        }
        std::vector<std::size_t> topic_at(records.size());
        topics_.reserve(topic_bytes);
        headers_.reserve(header_count);
        for (std::size_t i = 0; i < records.size(); i++) {
            const Record& r = records[i];
            if (i > 0 && r.topic == records[i - 1].topic) {
                topic_at[i] = topic_at[i - 1];
            } else {
                topic_at[i] = topics_.size();
                if (r.topic.find('\0') == std::string_view::npos)
                    topics_.append(r.topic.data() ? r.topic : std::string_view(""));
                topics_.push_back('\0');
            }
            kp_record_t& c = recs_[i];
            set_fields(c, r);
            if (r.headers.size()) {
                c.headers = headers_.data() + headers_.size(); /* reserved: no reallocation */
                c.header_count = r.headers.size();
                for (const Header& h : r.headers)
                    headers_.push_back(to_c(h));
            }
        }
        for (std::size_t i = 0; i < recs_.size(); i++)
            recs_[i].topic = topics_.c_str() + topic_at[i];
    }
    CBatch(const CBatch&) = delete;
    CBatch& operator=(const CBatch&) = delete;

    const kp_record_t* data() const noexcept { return recs_.data(); }
    std::size_t size() const noexcept { return recs_.size(); }

  private:
    std::vector<kp_record_t> recs_;
    std::string topics_;
    std::vector<kp_header_t> headers_;
};

/*
 * Owns the callable of one send_batch() until the last accepted record's
 * report. Record i's ctx is &self[i] (which points back here), so the
 * index is its distance from self.data(). `pending` counts the reports
 * still to come plus one for send_batch() itself, which takes back the
 * refused records' share after kp_send_batch returns (reports may run
 * before it does).
 */
template <class Fn>
struct BatchNode {
    CallbackErrors* errors;
    Fn fn;
    std::vector<BatchNode*> self;
    std::atomic<std::size_t> pending;

    template <class F>
    BatchNode(CallbackErrors* e, F&& f, std::size_t n)
        : errors(e), fn(std::forward<F>(f)), self(n, this), pending(n + 1) {}

    /* Drops `n` of the pending count; the last one frees the node. */
    void release(std::size_t n) noexcept {
        if (pending.fetch_sub(n, std::memory_order_acq_rel) == n)
            delete this;
    }

    static void invoke(const kp_report_t* report, void* ctx) noexcept {
        BatchNode* const* slot = static_cast<BatchNode* const*>(ctx);
        BatchNode* node = *slot;
        try {
            const DeliveryReport r(report);
            if constexpr (std::is_invocable_v<Fn&, const DeliveryReport&, std::size_t>)
                node->fn(r, static_cast<std::size_t>(slot - node->self.data()));
            else
                node->fn(r);
        } catch (...) {
            node->errors->store(std::current_exception());
        }
        node->release(1);
    }
};

/* send_batch()'s callables: f(const DeliveryReport&, std::size_t index) or f(const DeliveryReport&). */
template <class Fn>
struct is_batch_callback
    : std::bool_constant<std::is_invocable_v<Fn&, const DeliveryReport&, std::size_t> ||
                         std::is_invocable_v<Fn&, const DeliveryReport&>> {};

/* A delivery callback that does nothing (kp keeps a record's ctx only with a callback). */
inline void ignore_report(const kp_report_t*, void*) noexcept {}

/* Owns a log callable; shared by the configs and the producer that use it. */
template <class Fn>
struct LogNode {
    Fn fn;

    template <class F>
    explicit LogNode(F&& f) : fn(std::forward<F>(f)) {}

    static void invoke(std::int32_t level, const char* facility, const char* message, void* ctx) noexcept {
        const std::string_view fac = facility ? std::string_view(facility) : std::string_view();
        const std::string_view msg = message ? std::string_view(message) : std::string_view();
        try {
            Fn& fn = static_cast<LogNode*>(ctx)->fn;
            if constexpr (std::is_invocable_v<Fn&, LogLevel, std::string_view, std::string_view>)
                fn(static_cast<LogLevel>(level), fac, msg);
            else
                fn(static_cast<int>(level), fac, msg);
        } catch (...) {
            /* A logger that throws loses that line, nothing else: nothing may unwind into kp. */
        }
    }
};

}  // namespace detail

/*
 * Producer configuration (RAII over kp_config_t). Property names and values
 * as in the C API (Java producer names, librdkafka aliases).
 */
class Config {
  public:
    Config() : h_(kp_config_new()) {
        if (!h_)
            throw std::bad_alloc();
    }
    Config(std::initializer_list<std::pair<std::string_view, std::string_view>> props) : Config() {
        for (const auto& kv : props)
            set(kv.first, kv.second);
    }
    Config(const Config& o) : h_(kp_config_dup(o.h_)), logger_(o.logger_) {
        if (o.h_ && !h_)
            throw std::bad_alloc();
    }
    Config(Config&& o) noexcept : h_(std::exchange(o.h_, nullptr)), logger_(std::move(o.logger_)) {}
    Config& operator=(const Config& o) {
        if (this != &o)
            *this = Config(o);
        return *this;
    }
    Config& operator=(Config&& o) noexcept {
        if (this != &o) {
            kp_config_destroy(h_);
            h_ = std::exchange(o.h_, nullptr);
            logger_ = std::move(o.logger_);
        }
        return *this;
    }
    ~Config() { kp_config_destroy(h_); }

    /* Sets a property; throws ConfigError naming it when unknown or invalid. */
    Config& set(std::string_view name, std::string_view value) {
        char errstr[512] = "";
        const std::string n(name), v(value);
        kp_config_result_t rc = kp_config_set(h_, n.c_str(), v.c_str(), errstr, sizeof errstr);
        if (rc != KP_CONFIG_OK)
            throw ConfigError(rc, errstr[0] ? std::string(errstr) : "cannot set " + n);
        return *this;
    }

    /*
     * Sets the logger: `f(kp::LogLevel level, std::string_view facility,
     * std::string_view message)` (or with `int level`), any callable. The
     * views are valid during the call only. The "log_level" (default 6,
     * Info) and "debug" properties (contexts broker, protocol, metadata,
     * producer, txn, security, all) choose the lines. It runs where
     * delivery callbacks run: on kp's delivery thread, or in poll mode
     * inside poll()/poll_reports()/flush()/close(); never twice at once for
     * one producer (a logger shared by several producers, through copies of
     * this Config, may be). An exception it throws is caught and that line
     * is lost; nothing unwinds into kp. Copies of this Config and the
     * producer made from it share the callable; the last of them frees it.
     */
    template <class F>
    Config& set_logger(F&& f) {
        using Fn = std::decay_t<F>;
        static_assert(std::is_invocable_v<Fn&, LogLevel, std::string_view, std::string_view> ||
                          std::is_invocable_v<Fn&, int, std::string_view, std::string_view>,
                      "the logger must be callable as f(kp::LogLevel, std::string_view, std::string_view)");
        auto node = std::make_shared<detail::LogNode<Fn>>(std::forward<F>(f));
        kp_err_t rc = kp_config_set_log_callback(h_, &detail::LogNode<Fn>::invoke, node.get());
        if (rc != KP_OK)
            throw Error(rc, "kp_config_set_log_callback failed");
        logger_ = std::move(node);
        return *this;
    }
    /* Removes the logger (kp then logs nothing). */
    Config& set_logger(std::nullptr_t) {
        kp_err_t rc = kp_config_set_log_callback(h_, nullptr, nullptr);
        if (rc != KP_OK)
            throw Error(rc, "kp_config_set_log_callback failed");
        logger_.reset();
        return *this;
    }

    /* A property's value (or its default); throws Error for an unknown name. */
    std::string get(std::string_view name) const {
        const std::string n(name);
        std::size_t size = 0;
        if (kp_config_get(h_, n.c_str(), nullptr, &size) != KP_OK || size == 0)
            throw Error(KP_ERR_INVALID_ARG, "unknown property " + n);
        std::string out(size, '\0');
        if (kp_config_get(h_, n.c_str(), out.data(), &size) != KP_OK)
            throw Error(KP_ERR_INVALID_ARG, "cannot read property " + n);
        out.resize(size - 1);
        return out;
    }

    kp_config_t* native_handle() const noexcept { return h_; }
    /* Gives up ownership of the C handle (the caller must free it). A
       logger stays owned by this object: keep it alive until a producer
       made from the handle is destroyed. */
    kp_config_t* release() noexcept { return std::exchange(h_, nullptr); }

  private:
    friend class Producer;
    kp_config_t* h_;
    std::shared_ptr<void> logger_; /* the set_logger() callable, if any */
};

/*
 * A Kafka producer (RAII over kp_producer_t, move-only). The destructor
 * destroys the producer as kp_producer_destroy() does: records still queued
 * get a KP_ERR_CLOSED report (callbacks run, then are freed) before it
 * returns; call close(timeout) first to deliver them.
 */
class Producer {
  public:
    /* Creates the producer; throws Error when the configuration is rejected. */
    explicit Producer(Config cfg) : errors_(new detail::CallbackErrors), logger_(cfg.logger_) {
        char errstr[512] = "";
        h_ = kp_producer_new(cfg.native_handle(), errstr, sizeof errstr);
        if (!h_)
            throw Error(KP_ERR_INVALID_ARG, errstr[0] ? errstr : "kp_producer_new failed",
                        ErrorClass::InvalidConfiguration, false);
        cfg.release(); /* consumed by kp_producer_new on success */
    }
    Producer(const Producer&) = delete;
    Producer& operator=(const Producer&) = delete;
    Producer(Producer&& o) noexcept
        : h_(std::exchange(o.h_, nullptr)), errors_(std::move(o.errors_)), logger_(std::move(o.logger_)),
          reports_(o.reports_.load(std::memory_order_relaxed)) {}
    Producer& operator=(Producer&& o) noexcept {
        if (this != &o) {
            reset();
            h_ = std::exchange(o.h_, nullptr);
            errors_ = std::move(o.errors_);
            logger_ = std::move(o.logger_);
            reports_.store(o.reports_.load(std::memory_order_relaxed), std::memory_order_relaxed);
        }
        return *this;
    }
    ~Producer() { reset(); }

    /*
     * Sends a record without a callback (fire-and-forget: a delivery error
     * shows only in metrics()). Throws Error when the record is not accepted
     * (INVALID_TOPIC, RECORD_TOO_LARGE, QUEUE_FULL, CLOSED, ...).
     */
    void send(const Record& r) { send(r, nullptr, nullptr); }

    /*
     * Sends a record; `on_delivery(const DeliveryReport&)` is called exactly
     * once with its report (any callable: lambdas with captures, function
     * objects; move-only ones too). kp owns the callable until then.
     * Throws Error when the record is not accepted (the callable is then
     * destroyed without a call).
     */
    template <class F>
    void send(const Record& r, F&& on_delivery) {
        using Fn = std::decay_t<F>;
        static_assert(std::is_invocable_v<Fn&, const DeliveryReport&>,
                      "the delivery callback must be callable as f(const kp::DeliveryReport&)");
        using Node = detail::CallbackNode<Fn>;
        use_reports(Reports::Callables);
        auto node = std::make_unique<Node>(errors_.get(), std::forward<F>(on_delivery));
        send(r, &Node::invoke, node.get());
        node.release(); /* accepted: owned by kp until the report */
    }

    /*
     * The C-style form (no allocation): `cb(report, ctx)` once per accepted
     * record. `cb` must not throw.
     */
    void send(const Record& r, kp_delivery_cb_t cb, void* ctx) {
        const detail::CRecord c(r);
        if (c.topic_has_nul(r))
            throw Error(KP_ERR_INVALID_TOPIC, "topic contains a NUL byte");
        char errstr[512];
        errstr[0] = '\0';
        kp_err_t rc = kp_send_with_errstr(h_, c.get(), cb, ctx, errstr, sizeof errstr);
        if (rc != KP_OK)
            throw Error(rc, errstr[0] ? std::string(errstr) : std::string(kp_err_str(rc)));
    }

    /*
     * Sends the records in one call into kp (kp_send_batch). Each record is
     * accepted or refused on its own, as send() would (a refused record
     * does not stop the others): the result says which, and why
     * (RECORD_TOO_LARGE, INVALID_TOPIC, UNKNOWN_PARTITION, QUEUE_FULL,
     * CLOSED, FORKED, ...). A refused record is not kept, not retried and
     * gets no report; nothing throws for it. This form has no callable
     * (fire-and-forget, or reports taken with poll_reports()).
     */
    BatchResult send_batch(Records records) { return send_batch_c(records, nullptr, nullptr); }

    /*
     * As above; record i's report carries ctxs[i] (ReportInfo::ctx() from
     * poll_reports()), so that a drained report can be matched with its
     * record. Throws Error(INVALID_ARG) unless there is one ctx per record.
     */
    BatchResult send_batch(Records records, const std::vector<void*>& ctxs) {
        if (ctxs.size() != records.size())
            throw Error(KP_ERR_INVALID_ARG, "send_batch: " + std::to_string(ctxs.size()) + " ctxs for " +
                                                std::to_string(records.size()) + " records");
        /* kp keeps a record's ctx only with a callback: this one does nothing
           (it runs only if poll()/flush() serve the report instead). */
        return send_batch_c(records, &detail::ignore_report, ctxs.data());
    }

    /*
     * As above, with one callable for the whole batch:
     * `on_delivery(const DeliveryReport&, std::size_t index)` (or without
     * the index) is called exactly once for each accepted record, `index`
     * being the record's position in `records`; never for a refused one.
     * kp owns the callable until the last accepted record's report, then
     * destroys it (at once when none was accepted). Its calls do not
     * overlap in thread mode; in poll mode, threads polling at once may run
     * it concurrently for different records. Exceptions it throws are kept
     * as send()'s callbacks' are. Allocates the callable once per batch.
     */
    template <class F, class = std::enable_if_t<detail::is_batch_callback<std::decay_t<F>>::value>>
    BatchResult send_batch(Records records, F&& on_delivery) {
        using Node = detail::BatchNode<std::decay_t<F>>;
        const std::size_t n = records.size();
        if (!n)
            return BatchResult{};
        use_reports(Reports::Callables);
        auto node = std::make_unique<Node>(errors_.get(), std::forward<F>(on_delivery), n);
        std::vector<void*> ctxs(n);
        for (std::size_t i = 0; i < n; i++)
            ctxs[i] = &node->self[i];
        BatchResult res = send_batch_c(records, &Node::invoke, ctxs.data());
        node.release()->release(n - res.accepted + 1); /* the refused records' share and send_batch's own */
        return res;
    }

    /*
     * Sends a record; the future gets its metadata, or an Error when the
     * delivery failed. Throws Error at once when the record is not accepted.
     * With delivery.report.mode=poll the future completes only while
     * poll()/flush() run.
     */
    std::future<RecordMetadata> send_future(const Record& r) {
        std::promise<RecordMetadata> promise;
        std::future<RecordMetadata> f = promise.get_future();
        send(r, [pr = std::move(promise)](const DeliveryReport& rep) mutable {
            if (rep.ok())
                pr.set_value(rep.metadata());
            else
                pr.set_exception(std::make_exception_ptr(rep.error()));
        });
        return f;
    }

    /*
     * Sends a record and waits up to `timeout` for its report. Returns its
     * metadata (timestamp_ms -1); throws Error when it was not accepted, not
     * delivered, or TIMED_OUT when the wait ended (the record may still be
     * delivered later).
     */
    RecordMetadata send_sync(const Record& r, std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        const detail::CRecord c(r);
        if (c.topic_has_nul(r))
            throw Error(KP_ERR_INVALID_TOPIC, "topic contains a NUL byte");
        char errstr[512];
        errstr[0] = '\0';
        RecordMetadata m;
        kp_err_t rc = kp_send_sync(h_, c.get(), detail::to_ms(timeout), &m.partition, &m.offset, errstr, sizeof errstr);
        if (rc != KP_OK)
            throw Error(rc, errstr[0] ? std::string(errstr) : std::string(kp_err_str(rc)));
        m.topic.assign(r.topic);
        return m;
    }

    /*
     * Serves waiting reports on this thread (delivery.report.mode=poll),
     * waiting up to `timeout` for the first; returns how many were served.
     * Rethrows a pending callback exception.
     */
    int poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        int n = kp_poll(h_, detail::to_ms(timeout));
        rethrow_callback_exception();
        if (n < 0)
            throw Error(n, kp_err_str(n));
        return n;
    }

    /*
     * The batched drain (delivery.report.mode=poll, kp_poll_reports):
     * appends up to `max` waiting reports to `out` as plain values, waiting
     * up to `timeout` for the first; returns how many. No callback runs:
     * use it for records sent without a callable (send(r), send_batch(rs),
     * or the C form, whose ctx each ReportInfo carries). kp.hpp keeps the
     * two apart: once this producer ran poll_reports(), sending with a
     * callable throws Error(KP_ERR_STATE), and once it sent with a callable
     * (send_future() too), poll_reports() throws it (it would take their
     * reports without running them). Several threads may drain at once:
     * each report is returned once. Returns 0 in thread mode.
     */
    std::size_t poll_reports(std::vector<ReportInfo>& out, std::size_t max = 256,
                             std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        use_reports(Reports::Drain);
        constexpr std::size_t chunk = 64;
        kp_report_info_t buf[chunk];
        std::size_t total = 0;
        std::int32_t wait = detail::to_ms(timeout);
        while (total < max) {
            buf[0] = KP_REPORT_INFO_INIT;
            const std::size_t want = max - total < chunk ? max - total : chunk;
            const int n = kp_poll_reports(h_, buf, want, wait);
            if (n < 0) {
                if (total)
                    break; /* keep what was taken; the next call throws */
                throw Error(n, kp_err_str(n));
            }
            for (int i = 0; i < n; i++)
                out.emplace_back(buf[i]);
            total += static_cast<std::size_t>(n);
            if (static_cast<std::size_t>(n) < want)
                break;
            wait = 0; /* only the first call waits */
        }
        return total;
    }
    std::vector<ReportInfo> poll_reports(std::size_t max = 256,
                                         std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        std::vector<ReportInfo> out;
        poll_reports(out, max, timeout);
        return out;
    }

    /* Readable when reports wait (poll mode); owned by the producer. -1 if none. */
    int poll_fd() const noexcept { return kp_poll_fd(h_); }

    /*
     * Sends everything queued and waits up to `timeout` for every report.
     * Returns false when the timeout expired first. Rethrows a pending
     * callback exception; throws Error for other failures (e.g. STATE when
     * called from a delivery callback).
     */
    bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        kp_err_t rc = kp_flush(h_, detail::to_ms(timeout));
        rethrow_callback_exception();
        return timed_out_or_throw(rc);
    }

    /*
     * Sends the records queued so far without waiting for linger.ms and
     * returns at once; their reports come as usual (flush() waits for them).
     * Records sent afterwards linger as usual. Throws Error (e.g. FORKED
     * after fork()).
     */
    void send_queued() { throw_unless_ok(kp_send_queued(h_)); }

    /*
     * Stops accepting records, delivers the queued ones for up to `timeout`
     * and reports the rest as CLOSED: afterwards every accepted record has
     * had its one report. Returns false when records had to be failed.
     * Idempotent. Rethrows a pending callback exception.
     */
    bool close(std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        kp_err_t rc = kp_producer_close(h_, detail::to_ms(timeout));
        rethrow_callback_exception();
        return timed_out_or_throw(rc);
    }

    /* Purges records: KP_PURGE_QUEUED and/or KP_PURGE_IN_FLIGHT. */
    void purge(int flags) { throw_unless_ok(kp_purge(h_, flags)); }

    /* Records accepted and not yet reported. */
    std::size_t outstanding() const noexcept { return kp_producer_outstanding(h_); }

    Metrics metrics() const {
        Metrics m = KP_METRICS_INIT;
        kp_err_t rc = kp_producer_metrics(h_, &m);
        if (rc != KP_OK)
            throw Error(rc, "kp_producer_metrics failed");
        return m;
    }

    /* The error that made the producer fatal, if any. */
    std::optional<Error> fatal_error() const {
        char errstr[512] = "";
        kp_err_t rc = kp_producer_fatal_error(h_, errstr, sizeof errstr);
        if (rc == KP_OK)
            return std::nullopt;
        return Error(rc, errstr, ErrorClass::Fatal, false);
    }

    /* The topic's partitions and leaders, waiting up to `timeout` for metadata. */
    std::vector<PartitionInfo> partitions_for(std::string_view topic,
                                              std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
        char errstr[512] = "";
        kp_topic_info_t* raw = nullptr;
        const std::string t(topic);
        kp_err_t rc = kp_partitions_for(h_, t.c_str(), detail::to_ms(timeout), &raw, errstr, sizeof errstr);
        if (rc != KP_OK)
            throw Error(rc, errstr[0] ? std::string(errstr) : std::string(kp_err_str(rc)));
        std::unique_ptr<kp_topic_info_t, void (*)(kp_topic_info_t*)> info(raw, kp_topic_info_destroy);
        std::vector<PartitionInfo> out;
        const std::int32_t n = kp_topic_info_partition_count(raw);
        out.reserve(static_cast<std::size_t>(n > 0 ? n : 0));
        for (std::int32_t i = 0; i < n; i++)
            out.push_back(PartitionInfo{i, kp_topic_info_leader(raw, i)});
        return out;
    }

    /* Transactions (needs transactional.id). Each throws Error with the error class. */
    void init_transactions(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        detail::check(kp_init_transactions(h_, detail::to_ms(timeout)));
    }
    void begin_transaction() { detail::check(kp_begin_transaction(h_)); }
    void commit_transaction(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        detail::check(kp_commit_transaction(h_, detail::to_ms(timeout)));
    }
    void abort_transaction(std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        detail::check(kp_abort_transaction(h_, detail::to_ms(timeout)));
    }
    void send_offsets_to_transaction(const std::vector<TopicPartitionOffset>& offsets, std::string_view group_id,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
        std::unique_ptr<kp_offsets_t, void (*)(kp_offsets_t*)> o(kp_offsets_new(), kp_offsets_destroy);
        if (!o)
            throw std::bad_alloc();
        for (const TopicPartitionOffset& tpo : offsets) {
            kp_err_t rc = kp_offsets_add(o.get(), tpo.topic.c_str(), tpo.partition, tpo.offset);
            if (rc != KP_OK)
                throw Error(rc, "invalid offset for " + tpo.topic);
        }
        const std::string g(group_id);
        detail::check(kp_send_offsets_to_transaction(h_, o.get(), g.c_str(), detail::to_ms(timeout)));
    }
    /* 2 (KIP-890), 1 (classic) or 0 (not initialised). */
    int transaction_protocol_version() const noexcept { return kp_transaction_protocol_version(h_); }

    /* The first exception a delivery callback threw since the last take (or null). */
    std::exception_ptr take_callback_exception() noexcept {
        return errors_ ? errors_->take() : std::exception_ptr();
    }
    /* Callback exceptions dropped because an earlier one was still pending. */
    std::size_t dropped_callback_exceptions() const noexcept { return errors_ ? errors_->dropped() : 0; }

    /* The C handle, for C API calls (still owned by this object). */
    kp_producer_t* native_handle() const noexcept { return h_; }
    explicit operator bool() const noexcept { return h_ != nullptr; }

  private:
    void reset() noexcept {
        /* Every report has been served (and every callback node freed) when
           kp_producer_destroy returns, so errors_ can go after it. */
        kp_producer_destroy(std::exchange(h_, nullptr));
        errors_.reset();
        logger_.reset(); /* kp calls it no more */
    }
    BatchResult send_batch_c(Records records, kp_delivery_cb_t cb, void* const* ctxs) {
        BatchResult res;
        res.results.assign(records.size(), KP_OK);
        if (records.size()) {
            const detail::CBatch c(records);
            res.accepted = kp_send_batch(h_, c.data(), c.size(), cb, ctxs, res.results.data());
        }
        return res;
    }
    /* How this producer's reports are served: by running callables, or
       taken by poll_reports(); the first use decides (see poll_reports). */
    enum Reports : int { Unset, Callables, Drain };
    void use_reports(Reports want) {
        int cur = reports_.load(std::memory_order_relaxed);
        if (cur == Unset && reports_.compare_exchange_strong(cur, want, std::memory_order_relaxed))
            return;
        if (cur == want) /* set before, or by a racing call that wanted the same */
            return;
        throw Error(KP_ERR_STATE, want == Drain ? "poll_reports(): this producer has sent records with a callable, "
                                                  "whose reports poll()/flush() serve"
                                                : "a callable cannot be given to a producer whose reports "
                                                  "poll_reports() takes (it would never run)");
    }
    void rethrow_callback_exception() {
        if (std::exception_ptr e = take_callback_exception())
            std::rethrow_exception(e);
    }
    static void throw_unless_ok(kp_err_t rc) {
        if (rc != KP_OK)
            throw Error(rc, kp_err_str(rc));
    }
    static bool timed_out_or_throw(kp_err_t rc) {
        if (rc == KP_OK)
            return true;
        if (rc == KP_ERR_TIMED_OUT)
            return false;
        throw Error(rc, kp_err_str(rc));
    }

    kp_producer_t* h_ = nullptr;
    std::unique_ptr<detail::CallbackErrors> errors_;
    std::shared_ptr<void> logger_; /* the Config's logger: kp's ctx until kp_producer_destroy returns */
    std::atomic<int> reports_{Unset};
};

}  // namespace kp

#endif /* KP_HPP */
