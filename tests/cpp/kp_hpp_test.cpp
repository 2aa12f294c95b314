/*
 * kp_hpp_test.cpp - tests of include/kp.hpp against a real Kafka cluster.
 *
 *   kp_hpp_test <bootstrap> <send-topic> <txn-topic> <transactional-id> <close-topic>
 *
 * The topics must exist (tests/cpp/run.sh creates them: send-topic with 3
 * partitions). What lands in Kafka is checked afterwards by run.sh with an
 * independent consumer (confluent-kafka): 4 x N records on send-topic with
 * their headers, and on txn-topic only the committed transaction for a
 * read_committed consumer. Prints one "ok:"/"FAILED:" line per check and
 * "N passed, M failed"; exits non-zero on any failure.
 */
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
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
        check(e.code() != KP_OK, std::string("commit without an open transaction throws: ") + e.what());
    }
    check(p.close(30s), "transactional producer closes");
}

int main(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr, "usage: %s <bootstrap> <send-topic> <txn-topic> <transactional-id> <close-topic>\n", argv[0]);
        return 2;
    }
    const std::string bootstrap = argv[1], send_topic = argv[2], txn_topic = argv[3], tid = argv[4], close_topic = argv[5];
    check(kp::version() == KP_VERSION_STR, "library version " + std::string(kp::version()) + " matches the header");
    try {
        test_config();
        test_send_modes(bootstrap, send_topic, 25);
        test_failed_delivery();
        test_throwing_callback(bootstrap, close_topic);
        test_move_semantics(bootstrap, close_topic);
        test_close_with_queued(bootstrap, close_topic);
        test_transactions(bootstrap, txn_topic, tid);
    } catch (const std::exception& e) {
        check(false, std::string("unexpected exception: ") + e.what());
    }
    check(live_callables == 0, "every counted callable destroyed");
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
