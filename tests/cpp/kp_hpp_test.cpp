/*
 * kp_hpp_test.cpp - tests of include/kp.hpp against a real Kafka cluster.
 *
 *   kp_hpp_test <bootstrap> <send-topic> <txn-topic> <transactional-id> <close-topic> <batch-topic>
 *
 * The topics must exist (tests/cpp/run.sh creates them: send-topic and
 * batch-topic with 3 partitions). What lands in Kafka is checked afterwards
 * by run.sh with an independent consumer (confluent-kafka): 4 x N records
 * on send-topic with their headers, on txn-topic only the committed
 * transaction for a read_committed consumer, and on batch-topic the
 * batch-sent records (with headers), the drained ones and the fork test's. Prints one "ok:"/"FAILED:" line per check and
 * "N passed, M failed"; exits non-zero on any failure.
 */
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "kp.hpp"

using namespace std::chrono_literals;

static int passed = 0, failed = 0;

static void check(bool cond, const std::string& what) {
    if (cond) {
        passed++;
        std::printf("ok: %s\n", what.c_str());
    } else {
        failed++;
        std::printf("FAILED: %s\n", what.c_str());
    }
    std::fflush(stdout);
}

/* A callable that counts its live copies: proves kp.hpp destroys every callable it owns. */
static std::atomic<int> live_callables{0};
struct Counted {
    std::atomic<int>* calls;
    bool throws;
    Counted(std::atomic<int>* c, bool t) : calls(c), throws(t) { live_callables++; }
    Counted(const Counted& o) : calls(o.calls), throws(o.throws) { live_callables++; }
    Counted(Counted&& o) noexcept : calls(o.calls), throws(o.throws) { live_callables++; }
    Counted& operator=(const Counted&) = delete;
    ~Counted() { live_callables--; }
    void operator()(const kp::DeliveryReport&) const {
        (*calls)++;
        if (throws)
            throw std::runtime_error("thrown by a delivery callback");
    }
};

static kp::Config base_config(const std::string& bootstrap) {
    return kp::Config{{"bootstrap.servers", bootstrap}, {"linger.ms", "5"}};
}

static void test_config() {
    kp::Config c;
    c.set("acks", "1");
    check(c.get("acks") == "1", "Config::set/get round-trips acks=1");
    check(c.get("linger.ms") == "5", "Config::get returns the default of an unset property (linger.ms=5)");
    try {
        c.set("no.such.property", "1");
        check(false, "unknown property throws");
    } catch (const kp::ConfigError& e) {
        check(e.unknown_property() && std::string(e.what()).find("no.such.property") != std::string::npos,
              std::string("unknown property throws ConfigError naming it: ") + e.what());
    }
    try {
        c.set("acks", "7");
        check(false, "invalid value throws");
    } catch (const kp::ConfigError& e) {
        check(!e.unknown_property(), std::string("invalid value throws ConfigError: ") + e.what());
    }
    kp::Config copy = c;
    copy.set("acks", "0");
    check(c.get("acks") == "1" && copy.get("acks") == "0", "a copied Config is independent (kp_config_dup)");
    try {
        kp::Producer p{kp::Config{}};
        check(false, "Producer without bootstrap.servers throws");
    } catch (const kp::Error& e) {
        check(std::string(e.what()).find("bootstrap.servers") != std::string::npos,
              std::string("Producer without bootstrap.servers throws: ") + e.what());
    }
}

static void test_send_modes(const std::string& bootstrap, const std::string& topic, int n) {
    kp::Producer p(base_config(bootstrap));

    // 1. fire-and-forget
    for (int i = 0; i < n; i++) {
        std::string v = "fire-" + std::to_string(i);
        p.send(kp::Record(topic, v));
    }

    // 2. callback: a lambda with captures, record with key and headers
    std::atomic<int> cb_ok{0}, cb_failed{0};
    std::vector<int> partitions_seen(3, 0);
    std::mutex mu;
    for (int i = 0; i < n; i++) {
        std::string k = "key-" + std::to_string(i), v = "callback-" + std::to_string(i);
        std::string hv = "hv-" + std::to_string(i);
        std::vector<kp::Header> hs{{"origin", "kp.hpp"}, {"index", hv}, {"null-header", nullptr}};
        kp::Record r(topic, k, v);
        r.headers = hs;
        p.send(r, [&, i](const kp::DeliveryReport& rep) {
            if (rep.ok() && rep.topic() == topic && rep.offset() >= 0) {
                cb_ok++;
                std::lock_guard<std::mutex> g(mu);
                if (rep.partition() >= 0 && rep.partition() < 3)
                    partitions_seen[static_cast<std::size_t>(rep.partition())]++;
            } else {
                cb_failed++;
                std::fprintf(stderr, "record %d: %s %.*s\n", i, rep.error_name(), static_cast<int>(rep.error_message().size()),
                             rep.error_message().data());
            }
        });
    }

    // 3. synchronous
    int sync_ok = 0;
    for (int i = 0; i < n; i++) {
        std::string v = "sync-" + std::to_string(i);
        kp::RecordMetadata m = p.send_sync(kp::Record(topic, v), 30s);
        if (m.topic == topic && m.partition >= 0 && m.offset >= 0)
            sync_ok++;
    }
    check(sync_ok == n, "send_sync: " + std::to_string(sync_ok) + " of " + std::to_string(n) + " returned partition and offset");

    // 4. futures, with an explicit partition
    std::vector<std::future<kp::RecordMetadata>> fs;
    for (int i = 0; i < n; i++) {
        std::string v = "future-" + std::to_string(i);
        kp::Record r(topic, v);
        r.partition = 1;
        fs.push_back(p.send_future(r));
    }
    int fut_ok = 0;
    for (auto& f : fs) {
        if (f.wait_for(60s) == std::future_status::ready) {
            kp::RecordMetadata m = f.get();
            if (m.partition == 1 && m.offset >= 0 && m.timestamp_ms > 0)
                fut_ok++;
        }
    }
    check(fut_ok == n, "send_future: " + std::to_string(fut_ok) + " of " + std::to_string(n) +
                           " futures got metadata on partition 1 with a timestamp");

    check(p.flush(60s), "flush returns true");
    check(cb_ok == n && cb_failed == 0, "callback: " + std::to_string(cb_ok.load()) + " ok, " +
                                            std::to_string(cb_failed.load()) + " failed of " + std::to_string(n));
    int spread = 0;
    for (int c : partitions_seen)
        spread += c > 0;
    check(spread >= 2, "keyed records spread over " + std::to_string(spread) + " partitions");

    kp::Metrics m = p.metrics();
    check(m.records_delivered == static_cast<std::uint64_t>(4 * n) && m.records_failed == 0,
          "metrics: " + std::to_string(m.records_delivered) + " delivered (4 x " + std::to_string(n) + "), " +
              std::to_string(m.records_failed) + " failed");
    std::vector<kp::PartitionInfo> parts = p.partitions_for(topic, 30s);
    bool leaders = parts.size() == 3;
    for (const auto& pi : parts)
        leaders = leaders && pi.leader >= 0;
    check(leaders, "partitions_for: " + std::to_string(parts.size()) + " partitions, each with a leader");

    // A record kp refuses: send throws, the callable is destroyed without a call.
    std::atomic<int> calls{0};
    int before = live_callables.load();
    try {
        p.send(kp::Record("bad topic name", "x"), Counted(&calls, false));
        check(false, "invalid topic throws");
    } catch (const kp::Error& e) {
        check(e.code() == KP_ERR_INVALID_TOPIC, std::string("invalid topic throws Error INVALID_TOPIC: ") + e.what());
    }
    try {
        p.send_sync(kp::Record(std::string_view("nul\0topic", 9), "x"));
        check(false, "topic with a NUL byte throws");
    } catch (const kp::Error& e) {
        check(e.code() == KP_ERR_INVALID_TOPIC, "a topic with a NUL byte throws INVALID_TOPIC");
    }
    try {
        p.send(kp::Record());
        check(false, "a record without a topic throws");
    } catch (const kp::Error& e) {
        check(e.code() == KP_ERR_INVALID_TOPIC, "a default Record (null topic view) throws INVALID_TOPIC");
    }
    check(calls == 0 && live_callables == before, "refused record: callable destroyed, never called");
    check(p.close(30s), "close returns true");
    try {
        p.send(kp::Record(topic, "after close"));
        check(false, "send after close throws");
    } catch (const kp::Error& e) {
        check(e.code() == KP_ERR_CLOSED, std::string("send after close throws CLOSED: ") + e.what());
    }
}

static void test_failed_delivery() {
    // Nothing listens on port 1: the record is accepted, its delivery fails.
    kp::Config c{{"bootstrap.servers", "127.0.0.1:1"}, {"delivery.timeout.ms", "1500"}, {"request.timeout.ms", "1000"},
                 {"linger.ms", "0"}};
    kp::Producer p(c);
    std::future<kp::RecordMetadata> f = p.send_future(kp::Record("t", "v"));
    bool threw = false;
    if (f.wait_for(30s) == std::future_status::ready) {
        try {
            f.get();
        } catch (const kp::Error& e) {
            threw = e.code() != KP_OK;
            std::printf("   (future error: %s)\n", e.what());
        }
    }
    check(threw, "send_future: a failed delivery makes future.get() throw kp::Error");
    std::atomic<int> classes_ok{0};
    p.send(kp::Record("t", "v"), [&](const kp::DeliveryReport& r) {
        const kp::Error e = r.error();
        classes_ok = !r.ok() && r.error_class() == kp::ErrorClass::Retriable && e.error_class() == r.error_class() &&
                     e.is_retriable() && !e.is_fatal();
        std::printf("   (report %s, class %s)\n", r.error_name(), kp::to_string(r.error_class()));
    });
    p.flush(30s);
    check(classes_ok == 1, "an undeliverable record's report (unreachable broker) has class RETRIABLE, as its Error");
    try {
        p.send_sync(kp::Record("t", "v"), 30s);
        check(false, "send_sync to an unreachable cluster throws");
    } catch (const kp::Error& e) {
        check(e.code() != KP_OK, std::string("send_sync failure throws: ") + e.what());
    }
}

static void test_throwing_callback(const std::string& bootstrap, const std::string& topic) {
    std::atomic<int> calls{0};
    {
        kp::Producer p(base_config(bootstrap));
        for (int i = 0; i < 10; i++)
            p.send(kp::Record(topic, "throw-" + std::to_string(i)), Counted(&calls, i % 2 == 1));
        bool rethrown = false;
        try {
            p.flush(60s);
        } catch (const std::runtime_error& e) {
            rethrown = std::string(e.what()) == "thrown by a delivery callback";
        }
        check(rethrown, "an exception thrown by a callback is rethrown by the next flush()");
        check(calls == 10, "every callback ran although 5 threw (" + std::to_string(calls.load()) + " calls)");
        check(p.dropped_callback_exceptions() == 4, "4 later exceptions counted as dropped (" +
                                                        std::to_string(p.dropped_callback_exceptions()) + ")");
        check(p.flush(10s), "the following flush() does not throw again");

        // poll mode: the callback runs on this thread inside flush(), and its exception comes out of it
        kp::Config pc = base_config(bootstrap);
        pc.set("delivery.report.mode", "poll");
        kp::Producer pp(std::move(pc));
        const std::thread::id me = std::this_thread::get_id();
        std::atomic<bool> on_caller{false};
        pp.send(kp::Record(topic, "poll-mode"), [&](const kp::DeliveryReport&) {
            on_caller = std::this_thread::get_id() == me;
            throw 42; /* not even a std::exception */
        });
        bool got = false;
        try {
            pp.flush(60s);
        } catch (int v) {
            got = v == 42;
        }
        check(got && on_caller, "poll mode: callback ran inside flush() on the caller's thread; its exception (int 42) came out of flush()");
    }
    check(live_callables == 0, "no callable left alive after the producers are gone");
}

static void test_move_semantics(const std::string& bootstrap, const std::string& topic) {
    static_assert(!std::is_copy_constructible_v<kp::Producer> && !std::is_copy_assignable_v<kp::Producer>,
                  "Producer is move-only");
    static_assert(std::is_nothrow_move_constructible_v<kp::Producer> && std::is_nothrow_move_assignable_v<kp::Producer>,
                  "Producer moves do not throw");
    std::atomic<int> reports{0}, ok{0};
    auto cb = [&](const kp::DeliveryReport& r) {
        reports++;
        ok += r.ok();
    };
    kp::Producer a(base_config(bootstrap));
    for (int i = 0; i < 50; i++)
        a.send(kp::Record(topic, "move-a-" + std::to_string(i)), cb);
    kp::Producer b(std::move(a)); /* records in flight follow the handle */
    check(!a && b, "moved-from producer is empty, the new one owns the handle");
    try {
        a.send(kp::Record(topic, "x"));
        check(false, "send on a moved-from producer throws");
    } catch (const kp::Error& e) {
        check(e.code() == KP_ERR_INVALID_ARG, std::string("send on a moved-from producer throws INVALID_ARG: ") + e.what());
    }
    for (int i = 0; i < 50; i++)
        b.send(kp::Record(topic, "move-b-" + std::to_string(i)), cb);

    kp::Producer c(base_config(bootstrap));
    for (int i = 0; i < 50; i++)
        c.send(kp::Record(topic, "move-c-" + std::to_string(i)), cb);
    c = std::move(b); /* c's own producer is destroyed here: its 50 records are reported first */
    check(reports >= 50, "move-assignment destroyed the old producer after reporting its records (" +
                             std::to_string(reports.load()) + " reports so far)");
    kp::Producer& alias = c;
    c = std::move(alias); /* self-move leaves it usable */
    check(static_cast<bool>(c), "self move-assignment keeps the producer");
    check(c.close(60s), "close after the moves delivers the rest");
    check(reports == 150, "exactly one report for each of 150 records across moves (" + std::to_string(reports.load()) + ")");
    check(ok >= 100, std::to_string(ok.load()) + " of 150 delivered (the 50 of the move-assigned producer may be CLOSED)");
}

static void test_close_with_queued(const std::string& bootstrap, const std::string& topic) {
    const int n = 2000;
    std::vector<std::atomic<int>> seen(n);
    std::atomic<int> closed{0}, delivered{0}, other{0};
    {
        kp::Config c = base_config(bootstrap);
        c.set("linger.ms", "60000"); /* keep records queued */
        kp::Producer p(c);
        for (int i = 0; i < n; i++) {
            p.send(kp::Record(topic, "queued-" + std::to_string(i)), [&, i](const kp::DeliveryReport& r) {
                seen[static_cast<std::size_t>(i)]++;
                if (r.ok())
                    delivered++;
                else if (r.error_code() == KP_ERR_CLOSED)
                    closed++;
                else
                    other++;
            });
        }
        check(p.outstanding() > 0, "records are queued before the destructor (" + std::to_string(p.outstanding()) + ")");
    } /* ~Producer: destroy with records queued */
    int once = 0;
    for (auto& s : seen)
        once += s.load() == 1;
    check(once == n, "destructor with records queued: each of " + std::to_string(n) + " got exactly one report (" +
                         std::to_string(once) + ")");
    check(closed + delivered == n && other == 0, std::to_string(closed.load()) + " reported CLOSED, " +
                                                     std::to_string(delivered.load()) + " delivered, " +
                                                     std::to_string(other.load()) + " other");

    // close(timeout) with records queued behind a long linger: all delivered
    std::atomic<int> ok{0}, reports{0};
    kp::Config c = base_config(bootstrap);
    c.set("linger.ms", "60000");
    kp::Producer p(c);
    for (int i = 0; i < n; i++)
        p.send(kp::Record(topic, "close-" + std::to_string(i)), [&](const kp::DeliveryReport& r) {
            reports++;
            ok += r.ok();
        });
    const bool closed_in_time = p.close(60s); /* not inside check(): argument order is unspecified */
    check(closed_in_time && reports == n && ok == n, "close(60s) with " + std::to_string(n) + " queued records: " +
                                                         std::to_string(ok.load()) + " delivered, " +
                                                         std::to_string(reports.load()) + " reports");
}

static void test_transactions(const std::string& bootstrap, const std::string& topic, const std::string& tid) {
    kp::Config c = base_config(bootstrap);
    c.set("transactional.id", tid);
    kp::Producer p(c);
    p.init_transactions(60s);
    check(p.transaction_protocol_version() >= 1,
          "init_transactions: protocol v" + std::to_string(p.transaction_protocol_version()));
    std::atomic<int> ok{0}, purged{0};
    auto cb = [&](const kp::DeliveryReport& r) {
        if (r.ok())
            ok++;
        else if (r.error_code() == KP_ERR_PURGED_QUEUED)
            purged++;
    };
    p.begin_transaction();
    for (int i = 0; i < 10; i++)
        p.send(kp::Record(topic, "committed-" + std::to_string(i)), cb);
    p.commit_transaction(60s);
    check(ok == 10, "commit_transaction: 10 records delivered (" + std::to_string(ok.load()) + ")");

    p.begin_transaction();
    for (int i = 0; i < 10; i++)
        p.send_sync(kp::Record(topic, "aborted-" + std::to_string(i)));
    p.abort_transaction(60s);
    check(true, "abort_transaction after 10 synchronous sends");

    try {
        p.commit_transaction(10s);
        check(false, "commit without a transaction throws");
    } catch (const kp::Error& e) {
        check(e.code() != KP_OK && e.error_class() != kp::ErrorClass::None,
              std::string("commit without an open transaction throws: ") + e.what() + ", class " +
                  kp::to_string(e.error_class()));
    }
    check(p.close(30s), "transactional producer closes");
}

/* A batch callable that counts its live copies (as Counted does) and its calls per index. */
struct BatchCounter {
    std::vector<std::atomic<int>>* calls;
    std::atomic<int>* delivered;
    BatchCounter(std::vector<std::atomic<int>>* c, std::atomic<int>* d) : calls(c), delivered(d) { live_callables++; }
    BatchCounter(const BatchCounter& o) : calls(o.calls), delivered(o.delivered) { live_callables++; }
    BatchCounter(BatchCounter&& o) noexcept : calls(o.calls), delivered(o.delivered) { live_callables++; }
    BatchCounter& operator=(const BatchCounter&) = delete;
    ~BatchCounter() { live_callables--; }
    void operator()(const kp::DeliveryReport& r, std::size_t index) const {
        (*calls)[index]++;
        if (r.ok() && r.offset() >= 0 && r.error_class() == kp::ErrorClass::None)
            (*delivered)++;
    }
};

struct LogLine {
    kp::LogLevel level;
    std::string facility, message;
    bool on_caller; /* on the thread that created the test's producer */
};

/*
 * send_batch with a callable (mixed with records kp refuses), the logger at
 * debug level, a throwing logger, and the error class of a record the
 * broker refuses. `topic` gets n records "batch-<i>" with a header.
 */
static void test_batch_and_logger(const std::string& bootstrap, const std::string& topic, int n) {
    const std::thread::id me = std::this_thread::get_id();
    std::mutex log_mu;
    std::vector<LogLine> lines;
    std::unique_ptr<kp::Producer> p;
    {
        kp::Config c = base_config(bootstrap);
        c.set("debug", "broker,metadata");
        c.set("max.request.size", "100000");
        c.set_logger([&lines, &log_mu, me](kp::LogLevel level, std::string_view facility, std::string_view message) {
            std::lock_guard<std::mutex> g(log_mu);
            lines.push_back(LogLine{level, std::string(facility), std::string(message), std::this_thread::get_id() == me});
        });
        p = std::make_unique<kp::Producer>(c);
    } /* the Config is gone: the producer keeps the logger alive (ASan checks) */

    std::vector<std::string> values, hvals;
    for (int i = 0; i < n; i++) {
        values.push_back("batch-" + std::to_string(i));
        hvals.push_back("bh-" + std::to_string(i));
    }
    std::vector<std::vector<kp::Header>> hs;
    for (int i = 0; i < n; i++)
        hs.push_back({{"batch", hvals[static_cast<std::size_t>(i)]}});
    const std::string big(200000, 'x'); /* > max.request.size: refused by kp */
    std::vector<kp::Record> recs;
    std::vector<kp_err_t> want_refused; /* per record: KP_OK or the expected refusal */
    for (int i = 0; i < n; i++) {
        recs.emplace_back(topic, values[static_cast<std::size_t>(i)]);
        recs.back().headers = hs[static_cast<std::size_t>(i)];
        want_refused.push_back(KP_OK);
        if (i == 1) {
            recs.emplace_back("bad topic name", "refused");
            want_refused.push_back(KP_ERR_INVALID_TOPIC);
        } else if (i == n / 2) {
            recs.emplace_back(topic, big);
            want_refused.push_back(KP_ERR_RECORD_TOO_LARGE);
        } else if (i == n - 2) {
            recs.emplace_back(std::string_view("nul\0topic", 9), "refused");
            want_refused.push_back(KP_ERR_INVALID_TOPIC);
        }
    }
    std::vector<std::atomic<int>> calls(recs.size());
    std::atomic<int> delivered{0};
    const int live_before = live_callables.load();
    const kp::BatchResult res = p->send_batch(recs, BatchCounter(&calls, &delivered));
    check(res.results == want_refused && res.accepted == static_cast<std::size_t>(n) && !res.all_accepted(),
          "send_batch: " + std::to_string(res.accepted) + " of " + std::to_string(recs.size()) +
              " accepted; the invalid topic, the NUL topic and the oversized record refused in their slots");
    const kp::Error too_large = res.error(static_cast<std::size_t>(n / 2 + 2));
    check(too_large.code() == KP_ERR_RECORD_TOO_LARGE &&
              too_large.error_class() == kp::ErrorClass::ApplicationRecoverable && !too_large.is_retriable(),
          std::string("BatchResult::error: ") + too_large.what() + ", class " + kp::to_string(too_large.error_class()));
    check(p->flush(60s), "flush after send_batch");
    int once = 0, never = 0;
    for (std::size_t i = 0; i < recs.size(); i++) {
        once += want_refused[i] == KP_OK && calls[i] == 1;
        never += want_refused[i] != KP_OK && calls[i] == 0;
    }
    check(once == n && never == 3 && delivered == n,
          "send_batch callable: called once for each of the " + std::to_string(n) + " accepted records with its index (" +
              std::to_string(once) + "), never for the 3 refused, " + std::to_string(delivered.load()) + " delivered");
    check(live_callables == live_before, "the batch callable was destroyed after the last report");

    // A batch kp refuses entirely: the callable is destroyed at once, never called.
    std::atomic<int> none{0};
    std::vector<kp::Record> bad{kp::Record("bad topic", "a"), kp::Record("", "b"), kp::Record()};
    const kp::BatchResult r2 = p->send_batch(bad, [c = Counted(&none, false)](const kp::DeliveryReport& r) { c(r); });
    check(r2.accepted == 0 && r2.results[0] == KP_ERR_INVALID_TOPIC && r2.results[1] == KP_ERR_INVALID_TOPIC &&
              r2.results[2] == KP_ERR_INVALID_TOPIC && none == 0 && live_callables == live_before,
          "a batch with no record accepted (bad, empty, default topic): results INVALID_TOPIC, callable (report-only form) destroyed uncalled");
    check(p->send_batch(kp::Records()).accepted == 0, "an empty batch accepts nothing");

    // The broker refuses a record kp accepted: its report and Error carry the class.
    {
        kp::Producer big_p(kp::Config{{"bootstrap.servers", bootstrap}, {"max.request.size", "3000000"}, {"linger.ms", "0"}});
        const std::string huge(1200000, 'y'); /* > the broker's max.message.bytes (1 MiB) */
        std::atomic<int> report_class{-1};
        big_p.send(kp::Record(topic, huge), [&](const kp::DeliveryReport& r) {
            report_class = static_cast<int>(r.error_class());
            std::printf("   (oversized record: %s, class %s)\n", r.error_name(), kp::to_string(r.error_class()));
        });
        std::future<kp::RecordMetadata> f = big_p.send_future(kp::Record(topic, huge));
        bool got = false;
        try {
            if (f.wait_for(60s) == std::future_status::ready)
                f.get();
        } catch (const kp::Error& e) {
            got = e.code() == KP_ERR_MESSAGE_TOO_LARGE && e.error_class() == kp::ErrorClass::ApplicationRecoverable &&
                  !e.is_retriable() && !e.is_fatal();
        }
        big_p.flush(30s);
        check(got && report_class == static_cast<int>(kp::ErrorClass::ApplicationRecoverable),
              "a record over the broker's max.message.bytes: MESSAGE_TOO_LARGE, class APPLICATION_RECOVERABLE "
              "(report and future's Error)");
        try {
            big_p.send(kp::Record(topic, std::string(4000000, 'z')));
            check(false, "a record over max.request.size throws");
        } catch (const kp::Error& e) {
            check(e.code() == KP_ERR_RECORD_TOO_LARGE && e.error_class() == kp::ErrorClass::ApplicationRecoverable,
                  std::string("send() refusal carries its class: ") + e.what() + ", " + kp::to_string(e.error_class()));
        }
    }

    check(p->close(30s), "close the batch producer");
    p.reset();
    bool connected = false, metadata = false, off_thread = true;
    for (const auto& l : lines) {
        connected |= l.level == kp::LogLevel::Info && l.facility == "broker" && l.message.rfind("connected to broker", 0) == 0;
        metadata |= l.level == kp::LogLevel::Debug && l.facility == "metadata" && l.message == topic + ": 3 partition(s)";
        off_thread = off_thread && !l.on_caller;
    }
    check(connected && metadata,
          "logger (lambda with captures, debug=broker,metadata): " + std::to_string(lines.size()) +
              " lines, incl. broker 'connected to broker' (info) and metadata '" + topic + ": 3 partition(s)' (debug)");
    check(off_thread, "thread mode: every log line came on kp's delivery thread, none on the caller's");

    // A logger that throws (the int-level form; not even a std::exception) loses its lines, nothing else.
    std::atomic<int> thrown{0};
    {
        kp::Config c = base_config(bootstrap);
        c.set("debug", "all");
        c.set_logger([&thrown](int level, std::string_view, std::string_view) {
            thrown++;
            if (level >= 0)
                throw 7;
        });
        kp::Producer tp(std::move(c));
        int ok = 0;
        for (int i = 0; i < 5; i++)
            ok += tp.send_sync(kp::Record(topic, "logger-threw-" + std::to_string(i)), 30s).offset >= 0;
        check(tp.close(30s) && ok == 5, "a producer whose logger throws delivers its 5 records and closes");
    }
    check(thrown > 0, "the throwing logger ran " + std::to_string(thrown.load()) + " times, nothing escaped into kp");
}

/*
 * Poll mode: send_batch without a callable (and the C form with a ctx), the
 * reports taken with poll_reports() as values; log lines on the caller's
 * thread. `topic` gets n records "drain-<i>" and "drain-ctx".
 */
static void test_poll_reports(const std::string& bootstrap, const std::string& topic, int n) {
    const std::thread::id me = std::this_thread::get_id();
    std::atomic<int> log_lines{0}, log_elsewhere{0};
    kp::Config c{{"bootstrap.servers", bootstrap}, {"linger.ms", "5"}, {"delivery.report.mode", "poll"}, {"debug", "broker"}};
    c.set_logger([&](kp::LogLevel, std::string_view, std::string_view) {
        log_lines++;
        log_elsewhere += std::this_thread::get_id() != me;
    });
    kp::Producer p(std::move(c));
    std::vector<std::string> values;
    for (int i = 0; i < n; i++)
        values.push_back("drain-" + std::to_string(i));
    std::vector<kp::Record> recs;
    for (const auto& v : values)
        recs.emplace_back(topic, v);
    std::vector<void*> ctxs;
    for (auto& v : values)
        ctxs.push_back(&v);
    const kp::BatchResult res = p.send_batch(recs, ctxs);
    check(res.all_accepted() && res.accepted == static_cast<std::size_t>(n),
          "send_batch with a ctx per record accepts all " + std::to_string(n));
    int marker = 0;
    /* C form: the ctx comes back in the ReportInfo (kp keeps it only with a cb, which poll_reports does not run) */
    p.send(kp::Record(topic, "drain-ctx"), [](const kp_report_t*, void* ctx) { *static_cast<int*>(ctx) += 1; }, &marker);

    std::vector<kp::ReportInfo> got;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (got.size() < static_cast<std::size_t>(n + 1) && std::chrono::steady_clock::now() < deadline) {
        std::vector<kp::ReportInfo> part = p.poll_reports(16, 100ms);
        if (part.size() > 16)
            check(false, "poll_reports(16) returned " + std::to_string(part.size()));
        got.insert(got.end(), part.begin(), part.end());
    }
    int good = 0;
    std::set<std::pair<int, long long>> places;
    std::set<void*> ctxs_seen, ctxs_want(ctxs.begin(), ctxs.end());
    ctxs_want.insert(&marker);
    for (const kp::ReportInfo& r : got) {
        good += r.ok() && r.topic() == topic && r.offset() >= 0 && r.timestamp_ms() > 0 &&
                r.persistence() == kp::Persistence::Persisted && r.error_class() == kp::ErrorClass::None;
        ctxs_seen.insert(r.ctx());
        places.emplace(r.partition(), static_cast<long long>(r.offset()));
    }
    check(got.size() == static_cast<std::size_t>(n + 1) && good == n + 1 && places.size() == got.size(),
          "poll_reports: " + std::to_string(got.size()) + " reports as values, " + std::to_string(good) +
              " delivered (topic, offset, timestamp, persisted, class NONE), at distinct offsets");
    check(ctxs_seen == ctxs_want && marker == 0, "each drained report carries its record's ctx (" +
                                                     std::to_string(ctxs_seen.size()) +
                                                     " distinct, the batch's and the C form's); no callback ran");
    check(p.poll_reports(10, 200ms).empty(), "poll_reports after the last report: none (each report once)");
    check(log_lines > 0 && log_elsewhere == 0, "poll mode: " + std::to_string(log_lines.load()) +
                                                   " log lines, all on the caller's thread inside poll_reports()");
    try {
        p.send(kp::Record(topic, "x"), [](const kp::DeliveryReport&) {});
        check(false, "a callable after poll_reports throws");
    } catch (const kp::Error& e) {
        check(e.code() == KP_ERR_STATE, std::string("a callable after poll_reports() throws STATE: ") + e.what());
    }
    check(p.close(30s), "close in poll mode after the drain");

    // The other way round: after a callable, poll_reports() refuses (it would skip the callable).
    kp::Producer q(kp::Config{{"bootstrap.servers", bootstrap}, {"delivery.report.mode", "poll"}});
    std::atomic<int> ran{0};
    q.send_batch(std::vector<kp::Record>{kp::Record("bad topic", "x")}, [&](const kp::DeliveryReport&) { ran++; });
    try {
        q.poll_reports();
        check(false, "poll_reports after a callable throws");
    } catch (const kp::Error& e) {
        check(e.code() == KP_ERR_STATE && ran == 0, std::string("poll_reports() after a callable throws STATE: ") + e.what());
    }
}

/* send_queued(): what is queued goes without waiting for linger.ms (15 minutes here). */
static void test_send_queued(const std::string& bootstrap, const std::string& topic) {
    kp::Producer p(kp::Config{{"bootstrap.servers", bootstrap}, {"linger.ms", "900000"}});
    std::atomic<int> delivered{0}, reports{0};
    for (int i = 0; i < 5; i++)
        p.send(kp::Record(topic, "queued-" + std::to_string(i)), [&](const kp::DeliveryReport& r) {
            reports++;
            delivered += r.ok();
        });
    std::this_thread::sleep_for(2s);
    check(reports == 0, "linger.ms=900000: no report before send_queued()");
    p.send_queued();
    for (int i = 0; i < 600 && reports < 5; i++)
        std::this_thread::sleep_for(100ms);
    check(delivered == 5 && reports == 5, "send_queued(): the 5 queued records delivered without a flush (" +
                                              std::to_string(delivered.load()) + " of 5)");
    check(p.close(30s), "close after send_queued");
}

/*
 * fork(): in the child every call on the parent's producer throws FORKED
 * (class FATAL) or refuses every record, the destructor returns at once;
 * the parent's producer carries on.
 */
static void test_fork(const std::string& bootstrap, const std::string& topic) {
    kp::Producer p(base_config(bootstrap));
    p.send_sync(kp::Record(topic, "fork-before"), 30s);
    std::fflush(stdout);
    const int failed_before = failed;
    const pid_t pid = fork();
    if (pid == 0) {
        std::atomic<int> calls{0};
        try {
            p.send(kp::Record(topic, "fork-child"));
            check(false, "child: send throws");
        } catch (const kp::Error& e) {
            check(e.code() == KP_ERR_FORKED && e.error_class() == kp::ErrorClass::Fatal && e.is_fatal(),
                  std::string("child: send throws ") + e.name() + " (" + kp::to_string(e.error_class()) + "): " + e.what());
        }
        const kp::BatchResult r = p.send_batch(std::vector<kp::Record>{kp::Record(topic, "fork-child-batch")},
                                               [&calls](const kp::DeliveryReport&, std::size_t) { calls++; });
        check(r.accepted == 0 && r.results[0] == KP_ERR_FORKED && calls == 0, "child: send_batch accepts nothing (FORKED)");
        try {
            p.send_queued();
            check(false, "child: send_queued throws");
        } catch (const kp::Error& e) {
            check(e.code() == KP_ERR_FORKED, "child: send_queued throws FORKED");
        }
        try {
            p.flush(10s);
            check(false, "child: flush throws");
        } catch (const kp::Error& e) {
            check(e.code() == KP_ERR_FORKED, "child: flush throws FORKED at once");
        }
        const auto t0 = std::chrono::steady_clock::now();
        { kp::Producer gone(std::move(p)); }
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        check(ms < 1000, "child: ~Producer returns at once (" + std::to_string(ms) + " ms)");
        std::fflush(stdout);
        _exit(failed == failed_before ? 0 : 1); /* no atexit handlers: the parent's engine is not ours */
    }
    int status = -1;
    for (int i = 0; i < 300 && pid > 0; i++) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        std::this_thread::sleep_for(100ms);
    }
    check(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork: the child's checks passed and it exited 0");
    kp::RecordMetadata m = p.send_sync(kp::Record(topic, "fork-after"), 30s);
    check(m.offset >= 0 && p.close(30s), "fork: the parent's producer still delivers after the fork");
}

int main(int argc, char** argv) {
    if (argc < 7) {
        std::fprintf(stderr, "usage: %s <bootstrap> <send-topic> <txn-topic> <transactional-id> <close-topic> <batch-topic>\n",
                     argv[0]);
        return 2;
    }
    const std::string bootstrap = argv[1], send_topic = argv[2], txn_topic = argv[3], tid = argv[4], close_topic = argv[5],
                      batch_topic = argv[6];
    check(kp::version() == KP_VERSION_STR, "library version " + std::string(kp::version()) + " matches the header");
    try {
        test_config();
        test_send_modes(bootstrap, send_topic, 25);
        test_failed_delivery();
        test_throwing_callback(bootstrap, close_topic);
        test_move_semantics(bootstrap, close_topic);
        test_close_with_queued(bootstrap, close_topic);
        test_send_queued(bootstrap, close_topic);
        test_transactions(bootstrap, txn_topic, tid);
        test_batch_and_logger(bootstrap, batch_topic, 40);
        test_poll_reports(bootstrap, batch_topic, 40);
        test_fork(bootstrap, batch_topic);
    } catch (const std::exception& e) {
        check(false, std::string("unexpected exception: ") + e.what());
    }
    check(live_callables == 0, "every counted callable destroyed");
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
