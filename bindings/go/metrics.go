package kp

/*
#include <stdlib.h>
#include <kp.h>
*/
import "C"

import (
	"context"
	"unsafe"
)

// Metrics are a producer's counters (kp_metrics_t): totals since
// NewProducer unless the field says "now".
type Metrics struct {
	RecordsDelivered       uint64 // acknowledged as acks asks
	RecordsFailed          uint64 // reported with an error
	RecordsOutstanding     uint64 // now: accepted, not yet reported by kp
	BufferBytesUsed        uint64 // now: bytes of buffer.memory in use
	BufferBytesLimit       uint64 // the buffer.memory limit
	ProduceRequests        uint64 // produce requests sent (resends included)
	BatchesSent            uint64 // record batches, each counted once
	BatchRetries           uint64 // batches queued again after a retriable error
	BatchBytes             uint64 // bytes of sent batches as on the wire
	BatchBytesUncompressed uint64 // the same batches before compression
	RequestLatencyUsSum    uint64 // sum of produce request latencies (µs)
	RequestLatencyCount    uint64 // number of latencies in that sum
	RequestLatencyUsMax    uint64 // largest produce request latency (µs)
	ThrottledResponses     uint64 // produce responses with throttle_time_ms > 0
	ThrottleTimeMsSum      uint64 // sum of throttle_time_ms
	ThrottleTimeMsMax      uint64 // largest throttle_time_ms
	ConnectionsOpened      uint64 // broker connections established
	ConnectionsClosed      uint64 // broker connections that ended while in use
}

// Metrics reads the producer's counters (cheap: atomic loads, no I/O).
func (p *Producer) Metrics() (Metrics, error) {
	if !p.acquire() {
		return Metrics{}, ErrClosed
	}
	defer p.mu.RUnlock()
	var m C.kp_metrics_t
	m.struct_size = C.sizeof_kp_metrics_t
	if code := C.kp_producer_metrics(p.p, &m); code != C.KP_OK {
		return Metrics{}, newError(code, "")
	}
	return Metrics{
		RecordsDelivered:       uint64(m.records_delivered),
		RecordsFailed:          uint64(m.records_failed),
		RecordsOutstanding:     uint64(m.records_outstanding),
		BufferBytesUsed:        uint64(m.buffer_bytes_used),
		BufferBytesLimit:       uint64(m.buffer_bytes_limit),
		ProduceRequests:        uint64(m.produce_requests),
		BatchesSent:            uint64(m.batches_sent),
		BatchRetries:           uint64(m.batch_retries),
		BatchBytes:             uint64(m.batch_bytes),
		BatchBytesUncompressed: uint64(m.batch_bytes_uncompressed),
		RequestLatencyUsSum:    uint64(m.request_latency_us_sum),
		RequestLatencyCount:    uint64(m.request_latency_count),
		RequestLatencyUsMax:    uint64(m.request_latency_us_max),
		ThrottledResponses:     uint64(m.throttled_responses),
		ThrottleTimeMsSum:      uint64(m.throttle_time_ms_sum),
		ThrottleTimeMsMax:      uint64(m.throttle_time_ms_max),
		ConnectionsOpened:      uint64(m.connections_opened),
		ConnectionsClosed:      uint64(m.connections_closed),
	}, nil
}

// PartitionInfo is one partition of a topic and its leader broker (-1 when
// unknown).
type PartitionInfo struct {
	Partition int32
	Leader    int32
}

// PartitionsFor returns a topic's partitions and their leaders from the
// producer's metadata, waiting for it until ctx ends.
func (p *Producer) PartitionsFor(ctx context.Context, topic string) ([]PartitionInfo, error) {
	t := C.CString(topic)
	defer C.free(unsafe.Pointer(t))
	var errstr [errstrSize]C.char
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !p.acquire() {
			return nil, ErrClosed
		}
		var info *C.kp_topic_info_t
		code := C.kp_partitions_for(p.p, t, sliceOf(ctx), &info, &errstr[0], errstrSize)
		p.mu.RUnlock()
		if code == C.KP_ERR_TIMED_OUT && ctx.Err() == nil {
			continue
		}
		if code != C.KP_OK {
			return nil, newError(code, C.GoString(&errstr[0]))
		}
		n := C.kp_topic_info_partition_count(info)
		out := make([]PartitionInfo, n)
		for i := range out {
			out[i] = PartitionInfo{Partition: int32(i), Leader: int32(C.kp_topic_info_leader(info, C.int32_t(i)))}
		}
		C.kp_topic_info_destroy(info)
		return out, nil
	}
}

// Version returns the version of the kp library in use, e.g. "0.1.0".
func Version() string { return C.GoString(C.kp_version_str()) }
