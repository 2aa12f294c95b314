// kp.hpp on its own: compiled by tests/cpp/run.sh as C++17 and C++20 with
// every warning (-fsyntax-only). Under C++20, std::span is a Bytes source
// and a Records source (send_batch).
#include "kp.hpp"

#if __cplusplus >= 202002L
#include <span>
static kp::Bytes from_span(std::span<const std::byte> s) { return s; }
static kp::Records records_from_span(std::span<const kp::Record> s) { return s; }
#endif

int main() {
#if __cplusplus >= 202002L
    const std::byte raw[2] = {std::byte{1}, std::byte{2}};
    if (from_span(raw).size() != 2)
        return 1;
    const kp::Record recs[3];
    if (records_from_span(recs).size() != 3)
        return 1;
#endif
    return kp::Bytes("x").size() == 1 && kp::Bytes().is_null() ? 0 : 1;
}
