/*
 * producer.cpp - kp's C++ API (kp.hpp): callbacks, futures, synchronous
 * sends, a batch send, headers, a logger, metrics and a clean close.
 *
 *   producer <bootstrap-servers> <topic> [count]
 *
 * Sends `count` records each way (4 x count), prints a summary, exits
 * non-zero if any record failed.
 */
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kp.hpp"

using namespace std::chrono_literals;

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s <bootstrap-servers> <topic> [count]\n", argv[0]);
        return 2;
    }
    const std::string topic = argv[2];
    const int count = argc > 3 ? std::atoi(argv[3]) : 10;
    if (kp::version() != KP_VERSION_STR)
        std::fprintf(stderr, "warning: header %s, library %s\n", KP_VERSION_STR, std::string(kp::version()).c_str());

    try {
        kp::Config config{
            {"bootstrap.servers", argv[1]},
            {"linger.ms", "5"},
            {"compression.type", "lz4"},
            {"log_level", "4"}, /* warnings and worse */
        };
        // kp prints nothing itself: its log lines go to this callable.
        config.set_logger([](kp::LogLevel level, std::string_view facility, std::string_view message) {
            std::fprintf(stderr, "kp log %d %.*s: %.*s\n", static_cast<int>(level), static_cast<int>(facility.size()),
                         facility.data(), static_cast<int>(message.size()), message.data());
        });
        kp::Producer producer(std::move(config));

        // 1. asynchronous, with a callback: any callable, captures included.
        std::atomic<int> ok{0}, failed{0};
        for (int i = 0; i < count; i++) {
            const std::string key = "key-" + std::to_string(i);
            const std::string value = "callback " + std::to_string(i);
            const std::vector<kp::Header> headers{{"origin", "producer.cpp"}};
            kp::Record record(topic, key, value);
            record.headers = headers;
            producer.send(record, [&ok, &failed, i](const kp::DeliveryReport& r) {
                if (r.ok()) {
                    ok++;
                } else {
                    failed++;
                    std::fprintf(stderr, "record %d failed: %s (%s): %s\n", i, r.error_name(),
                                 kp::to_string(r.error_class()), std::string(r.error_message()).c_str());
                }
            });
        }

        // 2. futures: wait later for each record's metadata (or its error).
        std::vector<std::future<kp::RecordMetadata>> futures;
        for (int i = 0; i < count; i++)
            futures.push_back(producer.send_future(kp::Record(topic, "future " + std::to_string(i))));
        for (auto& f : futures) {
            try {
                kp::RecordMetadata m = f.get();
                ok++;
                if (&f == &futures.front())
                    std::printf("first future: %s [%d] at offset %lld\n", m.topic.c_str(), static_cast<int>(m.partition),
                                static_cast<long long>(m.offset));
            } catch (const kp::Error& e) {
                failed++;
                std::fprintf(stderr, "future failed: %s\n", e.what());
            }
        }

        // 3. synchronous: one record at a time.
        for (int i = 0; i < count; i++) {
            try {
                producer.send_sync(kp::Record(topic, "sync " + std::to_string(i)), 30s);
                ok++;
            } catch (const kp::Error& e) {
                failed++;
                std::fprintf(stderr, "send_sync failed: %s (retriable: %s)\n", e.what(), e.is_retriable() ? "yes" : "no");
            }
        }

        // 4. a batch: all records in one call into kp, one callable for all.
        std::vector<std::string> values;
        for (int i = 0; i < count; i++)
            values.push_back("batch " + std::to_string(i));
        std::vector<kp::Record> batch;
        for (const std::string& v : values)
            batch.emplace_back(topic, v);
        const kp::BatchResult sent = producer.send_batch(batch, [&ok, &failed](const kp::DeliveryReport& r, std::size_t i) {
            if (r.ok())
                ok++;
            else {
                failed++;
                std::fprintf(stderr, "batch record %zu failed: %s\n", i, r.error_name());
            }
        });
        for (std::size_t i = 0; i < sent.results.size(); i++) {
            if (sent.results[i] != KP_OK) { /* refused: no report will come for it */
                failed++;
                std::fprintf(stderr, "batch record %zu refused: %s\n", i, sent.error(i).what());
            }
        }

        if (!producer.flush(30s))
            std::fprintf(stderr, "flush timed out\n");
        const kp::Metrics m = producer.metrics();
        producer.close(30s);
        std::printf("delivered: %d ok, %d failed\n", ok.load(), failed.load());
        std::printf("metrics: %llu delivered, %llu failed, %llu requests\n",
                    static_cast<unsigned long long>(m.records_delivered), static_cast<unsigned long long>(m.records_failed),
                    static_cast<unsigned long long>(m.produce_requests));
        return failed == 0 && ok == 4 * count ? 0 : 1;
    } catch (const kp::Error& e) {
        std::fprintf(stderr, "kp: %s\n", e.what());
        return 1;
    }
}
