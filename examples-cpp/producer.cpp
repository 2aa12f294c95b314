/*
 * producer.cpp - kp's C++ API (kp.hpp): callbacks, futures, synchronous
 * sends, headers, metrics and a clean close.
 *
 *   producer <bootstrap-servers> <topic> [count]
 *
 * Sends `count` records each way (3 x count), prints a summary, exits
 * non-zero if any record failed.
 */
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
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
        kp::Producer producer(kp::Config{
            {"bootstrap.servers", argv[1]},
            {"linger.ms", "5"},
            {"compression.type", "lz4"},
        });

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
                    std::fprintf(stderr, "record %d failed: %s: %s\n", i, r.error_name(),
                                 std::string(r.error_message()).c_str());
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

        if (!producer.flush(30s))
            std::fprintf(stderr, "flush timed out\n");
        const kp::Metrics m = producer.metrics();
        producer.close(30s);
        std::printf("delivered: %d ok, %d failed\n", ok.load(), failed.load());
        std::printf("metrics: %llu delivered, %llu failed, %llu requests\n",
                    static_cast<unsigned long long>(m.records_delivered), static_cast<unsigned long long>(m.records_failed),
                    static_cast<unsigned long long>(m.produce_requests));
        return failed == 0 && ok == 3 * count ? 0 : 1;
    } catch (const kp::Error& e) {
        std::fprintf(stderr, "kp: %s\n", e.what());
        return 1;
    }
}
