package kp

/*
#include <stdlib.h>
#include <kp.h>
*/
import "C"

import (
	"context"
	"time"
	"unsafe"
)

// txnCall runs a blocking transactional call in slices of at most sliceMs,
// calling it again while it fails with a retriable error (a timeout, or e.g.
// a coordinator not yet ready; kp documents these calls as safe to repeat
// then) until it succeeds, fails otherwise, or ctx ends.
func (p *Producer) txnCall(ctx context.Context, call func(p *C.kp_producer_t, ms C.int32_t) *C.kp_error_t) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !p.acquire() {
			return ErrClosed
		}
		err := fromKpError(call(p.p, sliceOf(ctx)))
		p.mu.RUnlock()
		e, ok := err.(*Error)
		if !ok || !e.Retriable() {
			return err
		}
		if e.Code != C.KP_ERR_TIMED_OUT {
			select {
			case <-time.After(retryBackoff):
			case <-ctx.Done():
				return err
			}
		}
	}
}

const retryBackoff = 100 * time.Millisecond

// InitTransactions initialises transactions (needs "transactional.id"):
// fences older producers with the same id and aborts their open
// transaction. Call once before the first BeginTransaction.
func (p *Producer) InitTransactions(ctx context.Context) error {
	return p.txnCall(ctx, func(h *C.kp_producer_t, ms C.int32_t) *C.kp_error_t {
		return C.kp_init_transactions(h, ms)
	})
}

// BeginTransaction starts a transaction (local; no network).
func (p *Producer) BeginTransaction() error {
	if !p.acquire() {
		return ErrClosed
	}
	defer p.mu.RUnlock()
	return fromKpError(C.kp_begin_transaction(p.p))
}

// CommitTransaction flushes the transaction's records and commits it. On
// error: TxnRequiresAbort() -> AbortTransaction; Retriable() -> commit
// again; Fatal() -> close the producer. The records' promises run as their
// reports come (Flush waits for them).
func (p *Producer) CommitTransaction(ctx context.Context) error {
	p.sendPending()
	return p.txnCall(ctx, func(h *C.kp_producer_t, ms C.int32_t) *C.kp_error_t {
		return C.kp_commit_transaction(h, ms)
	})
}

// AbortTransaction aborts the transaction: unsent records fail with
// ErrPurgedQueued, and read_committed consumers never see its records.
func (p *Producer) AbortTransaction(ctx context.Context) error {
	p.sendPending()
	return p.txnCall(ctx, func(h *C.kp_producer_t, ms C.int32_t) *C.kp_error_t {
		return C.kp_abort_transaction(h, ms)
	})
}

// TopicPartitionOffset is a consumer position: the next offset to consume
// (last processed + 1).
type TopicPartitionOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// SendOffsetsToTransaction adds a consumer group's offsets to the
// transaction (consume-transform-produce): they are committed only if the
// transaction commits.
func (p *Producer) SendOffsetsToTransaction(ctx context.Context, groupID string, offsets []TopicPartitionOffset) error {
	o := C.kp_offsets_new()
	if o == nil {
		return newError(C.KP_ERR_INTERNAL, "kp_offsets_new failed")
	}
	defer C.kp_offsets_destroy(o)
	for _, tpo := range offsets {
		t := C.CString(tpo.Topic)
		code := C.kp_offsets_add(o, t, C.int32_t(tpo.Partition), C.int64_t(tpo.Offset))
		C.free(unsafe.Pointer(t))
		if code != C.KP_OK {
			return newError(code, "")
		}
	}
	g := C.CString(groupID)
	defer C.free(unsafe.Pointer(g))
	return p.txnCall(ctx, func(h *C.kp_producer_t, ms C.int32_t) *C.kp_error_t {
		return C.kp_send_offsets_to_transaction(h, o, g, ms)
	})
}

// TransactionProtocolVersion is the transaction protocol InitTransactions
// negotiated: 2 (KIP-890, Kafka 4), 1 (classic) or 0 (not initialised).
func (p *Producer) TransactionProtocolVersion() int {
	if !p.acquire() {
		return 0
	}
	defer p.mu.RUnlock()
	return int(C.kp_transaction_protocol_version(p.p))
}
