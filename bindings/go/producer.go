// Package kp is a Kafka producer for Go on kp's engine (libkp, through cgo),
// with franz-go's Produce/ProduceSync shape.
//
// Threads: kp runs in delivery.report.mode=poll. A goroutine of the
// producer waits on kp's report fd and drains reports in batches
// (kp_poll_reports); another runs the promises, in report order. kp never
// calls into Go: reports that kp_flush()/kp_producer_close() serve on the
// calling thread are collected by a C function and handed to the same
// queue. Go memory reaches C only as pointer-free arrays during a call
// (records are described by offsets into one byte blob), and a record's
// report context is an index into a table of the producer, not a Go pointer.
package kp

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Config holds producer properties by name: the Java producer's names (and
// librdkafka's aliases), as kp's C API takes them. "bootstrap.servers" is
// required. The binding always sets delivery.report.mode=poll. Two
// properties are the binding's own: "partitioner"="manual" sends each record
// to its Record.Partition instead of letting kp's partitioner choose, and
// "go.produce.batch.records" (default 256) is how many Produce calls are
// gathered into one crossing into kp (see Produce; "1": each call crosses
// alone).
type Config map[string]string

// RecordHeader is one record header; a nil Value is a null value.
type RecordHeader struct {
	Key   string
	Value []byte
}

// Record is a record to produce. On successful delivery kp fills in
// Partition, Offset and Timestamp (the broker's LogAppendTime when the topic
// uses it). A nil Key is a null key, a nil Value a null value (tombstone).
type Record struct {
	Topic string
	// Partition is where the record went (set on success). As input it is
	// used only with the "manual" partitioner (see Config).
	Partition int32
	Key       []byte
	Value     []byte
	Headers   []RecordHeader
	// Timestamp is the record's CreateTime; the zero time means now.
	Timestamp time.Time
	// Offset is the record's offset in its partition (set on success).
	Offset int64
}

// ProduceResult is the outcome of one record of ProduceSync.
type ProduceResult struct {
	Record *Record
	Err    error
}

// Results are ProduceSync's outcomes, in the order of its records.
type Results []ProduceResult

// FirstErr returns the first error of the results, or nil.
func (rs Results) FirstErr() error {
	for _, r := range rs {
		if r.Err != nil {
			return r.Err
		}
	}
	return nil
}

// First returns the first record and its error (for one-record calls).
func (rs Results) First() (*Record, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	return rs[0].Record, rs[0].Err
}

// Producer sends records to Kafka. All methods are safe for concurrent use.
// Promises run on one goroutine of the producer, one at a time, in the order
// kp reports (per partition, the order records were accepted); they must not
// call Flush or Close (which wait for the promises) and should return soon.
type Producer struct {
	mu     sync.RWMutex // guards p against kp_producer_destroy
	p      *C.kp_producer_t
	manual bool

	// Produce's records wait in pend until batchMax records (or
	// batchBytes) are gathered, window passes, or Flush, Close, Purge,
	// ProduceSync or a transaction call sends them: one kp_send_batch.
	batchMax int
	window   time.Duration
	pendMu   sync.Mutex
	pend     *encoder // nil while empty
	armed    bool     // the window timer is running
	closing  bool     // Close has begun: Produce refuses with ErrClosed
	timer    *time.Timer
	sendMu   sync.Mutex // taken before pendMu is released: crossings keep pend's order

	drainMu sync.Mutex // one drain of kp's report queue at a time, in order
	logq    *C.kpgo_logq
	logFn   func(LogLevel, string, string)
	logMu   sync.Mutex // log lines reach logFn in kp's order
	table   table
	queue   dqueue

	inflight atomic.Int64 // records taken from pend or sent whose promise has not yet run
	waitMu   sync.Mutex
	waiters  []chan struct{}

	reports    *C.kp_report_info_t // the poller's drain buffer (C memory)
	reportFd   *os.File            // a copy of kp_poll_fd, in Go's netpoller
	pollerDone chan struct{}
	dispatched chan struct{}

	closeOnce sync.Once
	closeErr  error
}

const (
	batchDefault = 256
	batchBytes   = 256 << 10
	windowMax    = time.Millisecond // longest wait of a record in pend (at most linger.ms)
	drainMax     = 1024
	drainBusy    = 64                     // a drain of this many reports or more...
	drainPause   = 500 * time.Microsecond // ...is followed by this pause
	takeSlice    = 32
	syncChunk    = 4096 // ProduceSync's records per crossing (at most)
	sliceMs      = 100  // longest C wait between looks at a context
	errstrSize   = 512
)

// NewProducer creates a producer. It connects in the background:
// unreachable brokers show up as delivery errors (and log lines), not here.
func NewProducer(cfg Config, opts ...ProducerOption) (*Producer, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	c := C.kp_config_new()
	if c == nil {
		return nil, newError(C.KP_ERR_INTERNAL, "kp_config_new failed")
	}
	prod := &Producer{logFn: o.logFn}
	var errstr [errstrSize]C.char
	set := func(k, v string) error {
		ck, cv := C.CString(k), C.CString(v)
		defer C.free(unsafe.Pointer(ck))
		defer C.free(unsafe.Pointer(cv))
		if C.kp_config_set(c, ck, cv, &errstr[0], errstrSize) != C.KP_CONFIG_OK {
			return newErrorClass(C.KP_ERR_INVALID_ARG, C.GoString(&errstr[0]), ClassInvalidConfiguration)
		}
		return nil
	}
	prod.batchMax = batchDefault
	for k, v := range cfg {
		var err error
		switch {
		case k == "partitioner" && v == "manual":
			prod.manual = true
		case k == "go.produce.batch.records":
			n, perr := strconv.Atoi(v)
			if perr != nil || n < 1 || n > 1<<16 {
				err = newErrorClass(C.KP_ERR_INVALID_ARG,
					fmt.Sprintf("go.produce.batch.records: %q is not a count of 1..65536", v), ClassInvalidConfiguration)
			}
			prod.batchMax = n
		case k == "delivery.report.mode" && v != "poll":
			err = newErrorClass(C.KP_ERR_INVALID_ARG,
				"the Go binding runs kp with delivery.report.mode=poll", ClassInvalidConfiguration)
		default:
			err = set(k, v)
		}
		if err != nil {
			C.kp_config_destroy(c)
			return nil, err
		}
	}
	if err := set("delivery.report.mode", "poll"); err != nil {
		C.kp_config_destroy(c)
		return nil, err
	}
	prod.window = windowMax
	if linger := configInt(c, "linger.ms"); linger >= 0 && time.Duration(linger)*time.Millisecond < prod.window {
		prod.window = time.Duration(linger) * time.Millisecond
	}
	if prod.window == 0 {
		prod.batchMax = 1
	}
	if prod.logFn != nil {
		if prod.logq = C.kpgo_logq_new(c); prod.logq == nil {
			C.kp_config_destroy(c)
			return nil, newError(C.KP_ERR_INTERNAL, "no memory for the log queue")
		}
	}
	p := C.kp_producer_new(c, &errstr[0], errstrSize)
	if p == nil {
		C.kpgo_logq_free(prod.logq)
		C.kp_config_destroy(c)
		return nil, newErrorClass(C.KP_ERR_INVALID_ARG, C.GoString(&errstr[0]), ClassInvalidConfiguration)
	}
	reportFd, rc, err := waitableCopy(C.kp_poll_fd(p))
	if err != nil {
		C.kp_producer_destroy(p)
		C.kpgo_logq_free(prod.logq)
		return nil, err
	}
	prod.p = p
	prod.reportFd = reportFd
	prod.reports = (*C.kp_report_info_t)(C.calloc(drainMax, C.sizeof_kp_report_info_t))
	prod.reports.struct_size = C.sizeof_kp_report_info_t
	prod.queue.wake = make(chan struct{}, 1)
	prod.pollerDone = make(chan struct{})
	prod.dispatched = make(chan struct{})
	prod.timer = time.AfterFunc(time.Hour, prod.windowEnded)
	prod.timer.Stop()
	go prod.poll(rc)
	go prod.dispatch()
	return prod, nil
}

// configInt reads an integer property of cfg (its value or kp's default);
// -1 when it cannot.
func configInt(cfg *C.kp_config_t, name string) int64 {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var buf [32]C.char
	size := C.size_t(len(buf))
	if C.kp_config_get(cfg, cname, &buf[0], &size) != C.KP_OK {
		return -1
	}
	n, err := strconv.ParseInt(C.GoString(&buf[0]), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// Produce sends a record asynchronously. The promise (which may be nil) is
// called exactly once: with the record filled in on delivery, or with the
// error. Once accepted, a record is never canceled by ctx.
//
// Produce copies the record's bytes into a buffer of the producer; the
// buffer crosses into kp in one call when it holds go.produce.batch.records
// records (or 256 KiB), after at most 1 ms (never longer than linger.ms;
// linger.ms=0 sends each record at once), or when Flush, Close, Purge,
// ProduceSync or a transaction call comes. That call may block up to
// max.block.ms while kp's buffer is full. Records of one goroutine reach kp
// in the order of its Produce calls. A record refused before it is
// buffered (empty topic, ctx already done, closed producer) has its promise
// called before Produce returns; a record kp refuses when the buffer
// crosses (invalid topic, too large, buffer full past max.block.ms) gets
// its promise on the promise goroutine, like a delivery error. With
// go.produce.batch.records=1 every Produce crosses at once and all
// refusals come before it returns.
//
// The record's bytes may be changed as soon as Produce returns (they were
// copied); the Record itself is written (Partition, Offset, Timestamp) until
// its promise runs and not touched after the promise returns, so it may be
// reused from then on (no allocation per record).
func (p *Producer) Produce(ctx context.Context, r *Record, promise func(*Record, error)) {
	if err := ctx.Err(); err != nil {
		callPromise(promise, r, err)
		return
	}
	if p.batchMax > 1 {
		p.produceBuffered(r, promise)
		return
	}
	e := getEncoder()
	defer putEncoder(e)
	if err := e.add(r, p.manual); err != nil {
		callPromise(promise, r, err)
		return
	}
	e.pend = append(e.pend, pending{rec: r, promise: promise})
	e.pend = p.table.put(e.pend, &e.ctxs)
	if p.send(e, true) == 0 {
		p.table.take(uintptr(e.ctxs[0]))
		callPromise(promise, r, e.err(0))
	}
}

// produceBuffered adds a record to pend, sending pend when it is full.
func (p *Producer) produceBuffered(r *Record, promise func(*Record, error)) {
	p.pendMu.Lock()
	if p.closing {
		p.pendMu.Unlock()
		callPromise(promise, r, ErrClosed)
		return
	}
	if p.pend == nil {
		p.pend = getEncoder()
	}
	e := p.pend
	if err := e.add(r, p.manual); err != nil {
		p.pendMu.Unlock()
		callPromise(promise, r, err)
		return
	}
	e.pend = append(e.pend, pending{rec: r, promise: promise})
	if len(e.pend) >= p.batchMax || len(e.blob) >= batchBytes {
		if p.armed {
			// Full before the window ended: no timer wake-up for
			// an empty buffer (the next record arms it again).
			p.armed = false
			p.timer.Stop()
		}
		p.sendPendLocked()
		return
	}
	if !p.armed {
		p.armed = true
		p.timer.Reset(p.window)
	}
	p.pendMu.Unlock()
}

// windowEnded sends pend when the window timer fires.
func (p *Producer) windowEnded() {
	p.pendMu.Lock()
	p.armed = false
	p.sendPendLocked()
}

// sendPending sends pend now and waits for a crossing of pend that another
// goroutine (a full buffer's Produce, the window timer) has begun, so that
// a crossing that follows comes after every record buffered so far.
func (p *Producer) sendPending() {
	p.pendMu.Lock()
	p.sendPendLocked()
	p.sendMu.Lock()
	p.sendMu.Unlock()
}

// sendPendLocked hands pend to kp in one crossing; pendMu is held on entry
// and released. Records kp refuses go to the promise goroutine.
func (p *Producer) sendPendLocked() {
	e := p.pend
	if e == nil || len(e.pend) == 0 {
		p.pendMu.Unlock()
		return
	}
	p.pend = nil
	p.inflight.Add(int64(len(e.pend))) // counted per buffer, not per Produce
	p.sendMu.Lock()
	p.pendMu.Unlock()
	defer p.sendMu.Unlock()
	defer putEncoder(e)
	n := len(e.pend)
	e.pend = p.table.put(e.pend, &e.ctxs)
	if p.send(e, false) == n {
		return
	}
	var refused []delivery
	for i, res := range e.results {
		if res != C.KP_OK {
			d := delivery{pending: p.table.take(uintptr(e.ctxs[i])), code: C.kp_err_t(res), class: ErrorClass(C.kp_err_class(C.kp_err_t(res)))}
			refused = append(refused, d)
		}
	}
	p.queue.push(refused)
}

func callPromise(promise func(*Record, error), r *Record, err error) {
	if promise != nil {
		promise(r, err)
	}
}

// ProduceSync sends the records in one call into kp and waits for their
// results. When ctx ends first it returns at once: records not yet reported
// then carry an error wrapping ErrWaitCanceled and ctx.Err() (they were
// accepted and may still be delivered; they are not touched afterwards).
// The records cross into kp in chunks of up to 4,096 records (or 256 KiB),
// in order; then kp sends what it holds without waiting for linger.ms
// (kp_send_queued). When ProduceSync returns the Records are the caller's again
// (to reuse for the next call, say).
func (p *Producer) ProduceSync(ctx context.Context, rs ...*Record) Results {
	results := make(Results, len(rs))
	for i, r := range rs {
		results[i].Record = r
	}
	if len(rs) == 0 {
		return results
	}
	if err := ctx.Err(); err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	p.sendPending()
	b := &syncBatch{results: results, reported: make([]bool, len(rs)), remaining: len(rs), done: make(chan struct{})}
	for i := 0; i < len(rs); {
		i = p.sendSyncChunk(b, rs, i)
	}
	p.sendQueued()
	select {
	case <-b.done:
	case <-ctx.Done():
		b.abandon(ctx.Err())
	}
	return results
}

// sendSyncChunk hands ProduceSync's records from rs[i:] to kp in one
// crossing of up to syncChunk records (or batchBytes), through a pooled
// encoder (a large call reuses the same buffers instead of growing one
// crossing's buffers to the whole call). Returns where the next chunk starts.
func (p *Producer) sendSyncChunk(b *syncBatch, rs []*Record, i int) int {
	e := getEncoder()
	defer putEncoder(e)
	for ; i < len(rs) && len(e.recs) < syncChunk && len(e.blob) < batchBytes; i++ {
		if err := e.add(rs[i], p.manual); err != nil {
			b.finish(i, err)
			continue
		}
		e.pend = append(e.pend, pending{rec: rs[i], batch: b, idx: i})
	}
	if len(e.recs) == 0 {
		return i
	}
	e.pend = p.table.put(e.pend, &e.ctxs)
	if p.send(e, true) < len(e.recs) {
		for k, res := range e.results {
			if res != C.KP_OK {
				b.finish(p.table.take(uintptr(e.ctxs[k])).idx, e.err(k))
			}
		}
	}
	return i
}

// sendQueued has kp send what it holds now instead of waiting for
// linger.ms (ProduceSync's last batches would otherwise linger while the
// caller waits for them).
func (p *Producer) sendQueued() {
	if !p.acquire() {
		return
	}
	defer p.mu.RUnlock()
	C.kp_send_queued(p.p)
}

// acquire read-locks the handle against Close; false (and unlocked) when
// the producer is closed.
func (p *Producer) acquire() bool {
	p.mu.RLock()
	if p.p == nil {
		p.mu.RUnlock()
		return false
	}
	return true
}

// send hands the encoded records to kp in one call. Returns how many were
// accepted; e.results says why the others were not. count: add the records
// to inflight (Produce's buffered records are counted when taken from pend).
func (p *Producer) send(e *encoder, count bool) int {
	n := len(e.recs)
	e.results = e.results[:0]
	for range e.recs {
		e.results = append(e.results, C.KP_ERR_CLOSED)
	}
	if !p.acquire() {
		return 0
	}
	defer p.mu.RUnlock()
	if count {
		p.inflight.Add(int64(n))
	}
	var hdrs *C.kpgo_hdr
	if len(e.hdrs) > 0 {
		hdrs = &e.hdrs[0]
	}
	accepted := int(C.kpgo_send(p.p, (*C.uint8_t)(unsafe.Pointer(&e.blob[0])), &e.recs[0], C.size_t(n),
		hdrs, &e.ctxs[0], (*C.int32_t)(unsafe.Pointer(&e.results[0]))))
	if accepted < n && count {
		p.recordsDone(int64(n - accepted))
	}
	return accepted
}

// Flush sends everything queued now (ignoring linger.ms) and waits until
// every record handed to the producer has had its promise run, or ctx ends
// (then it returns ctx.Err(); no record is canceled).
func (p *Producer) Flush(ctx context.Context) error {
	p.sendPending()
	if err := p.flushKp(ctx); err != nil {
		return err
	}
	return p.waitIdle(ctx)
}

// flushKp runs kp_flush in slices until kp has reported every record.
func (p *Producer) flushKp(ctx context.Context) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !p.acquire() {
			return ErrClosed
		}
		var out *C.kp_report_info_t
		var n C.size_t
		p.drainMu.Lock()
		code := C.kpgo_flush(p.p, sliceOf(ctx), &out, &n)
		p.handOver(out, int(n))
		C.free(unsafe.Pointer(out))
		p.unlockDrain()
		p.mu.RUnlock()
		switch code {
		case C.KP_OK:
			return nil
		case C.KP_ERR_TIMED_OUT:
		default:
			return newError(code, "")
		}
	}
}

// sliceOf is the next C wait: at most sliceMs, and not past ctx's deadline.
func sliceOf(ctx context.Context) C.int32_t {
	ms := int64(sliceMs)
	if d, ok := ctx.Deadline(); ok {
		if left := int64(time.Until(d) / time.Millisecond); left < ms {
			ms = left
		}
		if ms < 1 {
			ms = 1
		}
	}
	return C.int32_t(ms)
}

// Close sends what is queued and waits for it until ctx ends; records still
// unreported then fail with ErrClosed. When Close returns, every record ever
// accepted has had its promise run. Later calls return the first call's
// result. Must not be called from a promise.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() { p.closeErr = p.close(ctx) })
	return p.closeErr
}

func (p *Producer) close(ctx context.Context) error {
	p.pendMu.Lock()
	p.closing = true
	p.timer.Stop()
	p.pendMu.Unlock()
	p.sendPending()
	ferr := p.flushKp(ctx)
	var out *C.kp_report_info_t
	var n C.size_t
	p.mu.RLock()
	p.drainMu.Lock()
	code := C.kpgo_close(p.p, 0, &out, &n)
	p.handOver(out, int(n))
	C.free(unsafe.Pointer(out))
	p.unlockDrain()
	p.mu.RUnlock()
	p.reportFd.Close() // ends the poller's wait
	<-p.pollerDone
	p.queue.close()
	<-p.dispatched
	p.mu.Lock()
	C.kp_producer_destroy(p.p)
	p.p = nil
	p.mu.Unlock()
	C.kpgo_logq_free(p.logq)
	C.free(unsafe.Pointer(p.reports))
	if ferr != nil {
		return fmt.Errorf("kp: close: records not delivered in time failed with CLOSED: %w", ferr)
	}
	if code != C.KP_OK {
		return newError(code, "")
	}
	return nil
}

// Purge drops records not yet sent (and with inFlight, gives up on records
// whose request is in flight: they may still land in the log). Each purged
// record's promise gets ErrPurgedQueued or ErrPurgedInFlight.
func (p *Producer) Purge(inFlight bool) error {
	flags := C.int32_t(C.KP_PURGE_QUEUED)
	if inFlight {
		flags |= C.KP_PURGE_IN_FLIGHT
	}
	p.sendPending()
	if !p.acquire() {
		return ErrClosed
	}
	defer p.mu.RUnlock()
	if code := C.kp_purge(p.p, flags); code != C.KP_OK {
		return newError(code, "")
	}
	return nil
}

// Outstanding returns the number of records handed to the producer whose
// promise has not run yet.
func (p *Producer) Outstanding() int {
	p.pendMu.Lock()
	defer p.pendMu.Unlock()
	n := p.inflight.Load()
	if p.pend != nil {
		n += int64(len(p.pend.pend))
	}
	return int(n)
}

// FatalError returns the error that made the producer unusable, or nil.
func (p *Producer) FatalError() error {
	if !p.acquire() {
		return nil
	}
	defer p.mu.RUnlock()
	var errstr [errstrSize]C.char
	if code := C.kp_producer_fatal_error(p.p, &errstr[0], errstrSize); code != C.KP_OK {
		return newErrorClass(code, C.GoString(&errstr[0]), ClassFatal)
	}
	return nil
}

// waitableCopy duplicates kp's report fd (an eventfd, non-blocking) into an
// os.File that Go's netpoller waits on: the poller goroutine parks in the
// runtime instead of blocking a thread in C (a blocked cgo call costs a
// handoff of its P and keeps sysmon waking every 20 us). Closing the copy
// ends the wait and leaves kp's fd open.
func waitableCopy(fd C.int) (*os.File, syscall.RawConn, error) {
	dup := C.kpgo_dup_fd(fd)
	if fd < 0 || dup < 0 {
		return nil, nil, newError(C.KP_ERR_INTERNAL, "no file descriptor to wait for delivery reports")
	}
	f := os.NewFile(uintptr(dup), "kp-reports")
	if err := f.SetReadDeadline(time.Time{}); err != nil { // ErrNoDeadline: not in the netpoller
		f.Close()
		return nil, nil, newError(C.KP_ERR_INTERNAL, "cannot wait for kp's report fd in Go's netpoller: "+err.Error())
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, nil, newError(C.KP_ERR_INTERNAL, "cannot wait for kp's report fd: "+err.Error())
	}
	return f, rc, nil
}

// poll is the poller goroutine: drains kp's reports in batches and queues
// them for the promises; when none wait it parks until kp's report fd is
// readable (kp writes it when its queue turns non-empty, and Go's poller
// keeps an edge that comes between a drain and the wait), until Close
// closes the fd's copy.
func (p *Producer) poll(rc syscall.RawConn) {
	defer close(p.pollerDone)
	for {
		var n int
		err := rc.Read(func(uintptr) bool {
			n = p.drainReports()
			return n > 0 // 0 (or an error): wait for the fd
		})
		if err != nil {
			return
		}
		if n >= drainBusy && n < drainMax {
			// A busy producer: let reports gather for a moment
			// instead of waking for every few (fewer wake-ups on
			// both goroutines); a drain of fewer reports looks
			// again at once.
			time.Sleep(drainPause)
		}
	}
}

// drainReports takes up to drainMax reports from kp into the queue.
func (p *Producer) drainReports() int {
	p.drainMu.Lock()
	n := int(C.kp_poll_reports(p.p, p.reports, drainMax, 0))
	if n > 0 {
		p.handOver(p.reports, n)
	}
	p.unlockDrain()
	return n
}

// unlockDrain releases drainMu, then passes the lines kp logged during the
// drain to the log function.
func (p *Producer) unlockDrain() {
	if p.logq == nil {
		p.drainMu.Unlock()
		return
	}
	lines := p.takeLogs()
	p.logMu.Lock()
	p.drainMu.Unlock()
	p.emitLogs(lines)
}

// handOver turns n reports into deliveries for the dispatcher (drainMu held,
// so that the queue keeps kp's order).
func (p *Producer) handOver(infos *C.kp_report_info_t, n int) {
	if n == 0 {
		return
	}
	// Filled in place at the end of the queue (no allocation once the
	// queue's two slices have grown). Read through reportInfo: a copy of
	// kp_report_info_t on a Go stack would put the ctx integer in a
	// pointer-typed slot. The table lock is taken per slice of takeSlice
	// entries so that Produce never waits long.
	q := &p.queue
	q.mu.Lock()
	base := len(q.items)
	q.items = growDeliveries(q.items, n)
	ds := q.items[base:]
	for i, info := range unsafe.Slice((*reportInfo)(unsafe.Pointer(infos)), n) {
		if i%takeSlice == 0 {
			if i > 0 {
				p.table.mu.Unlock()
			}
			p.table.mu.Lock()
		}
		ds[i] = delivery{
			pending:   p.table.takeLocked(info.ctx),
			partition: info.partition,
			offset:    info.offset,
			timestamp: info.timestamp,
			code:      C.kp_err_t(info.err),
			class:     ErrorClass(info.errorClass),
		}
	}
	p.table.mu.Unlock()
	q.mu.Unlock()
	q.signal()
}

// growDeliveries extends ds by n zero entries.
func growDeliveries(ds []delivery, n int) []delivery {
	if len(ds)+n <= cap(ds) {
		return ds[:len(ds)+n]
	}
	grown := make([]delivery, len(ds)+n, 2*(len(ds)+n))
	copy(grown, ds)
	return grown
}

// reportInfo is kp_report_info_t with its pointers as integers: the
// reports' ctx values are table indices, which Go must never see in a
// pointer-typed variable. init checks that the layouts agree.
type reportInfo struct {
	structSize  uintptr
	topic       uintptr
	partition   int32
	offset      int64
	timestamp   int64
	err         int32
	errorClass  int32
	persistence int32
	ctx         uintptr
}

func init() {
	var c C.kp_report_info_t
	var g reportInfo
	if unsafe.Sizeof(c) != unsafe.Sizeof(g) ||
		unsafe.Offsetof(c.partition) != unsafe.Offsetof(g.partition) ||
		unsafe.Offsetof(c.offset) != unsafe.Offsetof(g.offset) ||
		unsafe.Offsetof(c.timestamp) != unsafe.Offsetof(g.timestamp) ||
		unsafe.Offsetof(c.error) != unsafe.Offsetof(g.err) ||
		unsafe.Offsetof(c.error_class) != unsafe.Offsetof(g.errorClass) ||
		unsafe.Offsetof(c.ctx) != unsafe.Offsetof(g.ctx) {
		panic("kp: kp_report_info_t layout differs from the binding's")
	}
}

// dispatch is the goroutine that runs the promises.
func (p *Producer) dispatch() {
	defer close(p.dispatched)
	var batch []delivery
	for {
		var ok bool
		batch, ok = p.queue.pop(batch[:0])
		if !ok {
			return
		}
		for i := 0; i < len(batch); {
			b := batch[i].batch
			if b == nil {
				batch[i].run()
				batch[i] = delivery{}
				i++
				continue
			}
			// A run of one ProduceSync call's reports: one lock.
			j := i + 1
			for j < len(batch) && batch[j].batch == b {
				j++
			}
			b.finishRun(batch[i:j])
			for k := i; k < j; k++ {
				batch[k] = delivery{}
			}
			i = j
		}
		p.recordsDone(int64(len(batch)))
	}
}

// recordsDone counts records whose outcome was handled, waking Flush
// waiters when none is left.
func (p *Producer) recordsDone(n int64) {
	if p.inflight.Add(-n) != 0 {
		return
	}
	p.waitMu.Lock()
	if p.inflight.Load() == 0 {
		for _, ch := range p.waiters {
			close(ch)
		}
		p.waiters = nil
	}
	p.waitMu.Unlock()
}

// waitIdle waits until no record is outstanding or ctx ends.
func (p *Producer) waitIdle(ctx context.Context) error {
	p.waitMu.Lock()
	if p.inflight.Load() == 0 {
		p.waitMu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	p.waiters = append(p.waiters, ch)
	p.waitMu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pending is what the producer keeps per record until its report.
type pending struct {
	rec     *Record
	promise func(*Record, error)
	batch   *syncBatch
	idx     int
}

// delivery is a report (or a refusal of kp_send_batch) matched with its
// record, for the dispatcher.
type delivery struct {
	pending
	partition int32
	offset    int64
	timestamp int64
	code      C.kp_err_t
	class     ErrorClass
}

// run calls a Produce record's promise (ProduceSync's records go through
// syncBatch.finishRun).
func (d *delivery) run() {
	var err error
	if d.code != C.KP_OK {
		err = newErrorClass(d.code, "", d.class)
	}
	if err == nil {
		d.fill(d.rec)
	}
	callPromise(d.promise, d.rec, err)
}

func (d *delivery) fill(r *Record) {
	r.Partition = d.partition
	r.Offset = d.offset
	if d.timestamp >= 0 {
		r.Timestamp = time.UnixMilli(d.timestamp)
	}
}

// table maps the integer contexts that travel through kp to pending records
// (no Go pointer is ever given to C). Each crossing into kp takes one slot
// holding its records' pendings (up to slotRecords of them); a record's
// context is its slot's number << slotShift | its index in the slot. A slot
// is freed when its last record is taken. Slot 0 is never used, so no
// context is 0.
type table struct {
	mu    sync.Mutex
	slots []slot
	free  []uintptr
}

type slot struct {
	pend []pending // zeroed as taken; kept for reuse when the slot is freed
	left int       // records not yet taken
}

const (
	slotShift   = 16
	slotRecords = 1 << slotShift
)

// put moves the pendings of one crossing into slots, appending each
// record's context to ctxs, and returns an empty slice (of a freed slot) to
// gather the next crossing's pendings in.
func (t *table) put(ps []pending, ctxs *[]C.uintptr_t) (spare []pending) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(ps) > 0 {
		n := len(ps)
		if n > slotRecords {
			n = slotRecords
		}
		var i uintptr
		if k := len(t.free); k > 0 {
			i = t.free[k-1]
			t.free = t.free[:k-1]
		} else {
			if len(t.slots) == 0 {
				t.slots = append(t.slots, slot{})
			}
			t.slots = append(t.slots, slot{})
			i = uintptr(len(t.slots) - 1)
		}
		s := &t.slots[i]
		if spare == nil {
			spare = s.pend[:0]
		}
		s.pend, s.left = ps[:n:n], n
		for k := 0; k < n; k++ {
			*ctxs = append(*ctxs, C.uintptr_t(i<<slotShift|uintptr(k)))
		}
		ps = ps[n:]
	}
	return spare
}

func (t *table) takeLocked(ctx uintptr) pending {
	i := ctx >> slotShift
	s := &t.slots[i]
	p := &s.pend[ctx&(slotRecords-1)]
	e := *p
	*p = pending{}
	if s.left--; s.left == 0 {
		t.free = append(t.free, i)
	}
	return e
}

func (t *table) take(ctx uintptr) pending {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.takeLocked(ctx)
}

// dqueue is the unbounded FIFO from the drains to the dispatcher.
type dqueue struct {
	mu     sync.Mutex
	items  []delivery
	closed bool
	wake   chan struct{}
}

func (q *dqueue) push(ds []delivery) {
	q.mu.Lock()
	q.items = append(q.items, ds...)
	q.mu.Unlock()
	q.signal()
}

func (q *dqueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *dqueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop swaps the queued deliveries into spare; false once closed and empty.
func (q *dqueue) pop(spare []delivery) ([]delivery, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			items := q.items
			q.items = spare
			q.mu.Unlock()
			return items, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		<-q.wake
	}
}

// syncBatch collects the results of one ProduceSync call.
type syncBatch struct {
	mu        sync.Mutex
	results   Results
	reported  []bool
	remaining int
	abandoned bool
	done      chan struct{}
}

// finish records the refusal of record i (before or at its crossing).
func (b *syncBatch) finish(i int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.abandoned {
		b.results[i].Err = err
	}
	b.reported[i] = true
	b.remaining--
	if b.remaining == 0 {
		close(b.done)
	}
}

// finishRun records the outcomes of ds, all of them b's, under one lock.
func (b *syncBatch) finishRun(ds []delivery) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range ds {
		d := &ds[k]
		if !b.abandoned {
			if d.code == C.KP_OK {
				d.fill(b.results[d.idx].Record)
				b.results[d.idx].Err = nil
			} else {
				b.results[d.idx].Err = newErrorClass(d.code, "", d.class)
			}
		}
		b.reported[d.idx] = true
	}
	if b.remaining -= len(ds); b.remaining == 0 {
		close(b.done)
	}
}

func (b *syncBatch) abandon(cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.abandoned = true
	for i, done := range b.reported {
		if !done {
			b.results[i].Err = &waitCanceled{cause: cause}
		}
	}
}

// encoder lays records out for kpgo_send: bytes in one blob, records and
// headers as offsets into it (pointer-free, as cgo requires).
type encoder struct {
	blob     []byte
	recs     []C.kpgo_rec
	hdrs     []C.kpgo_hdr
	ctxs     []C.uintptr_t
	results  []C.int32_t
	pend     []pending // Produce's buffered records (in Producer.pend)
	topic    string
	topicOff uint64
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

func getEncoder() *encoder { return encoders.Get().(*encoder) }

func putEncoder(e *encoder) {
	if cap(e.blob) > 4<<20 || cap(e.recs) > 1<<16 {
		return
	}
	for i := range e.pend {
		e.pend[i] = pending{}
	}
	e.blob, e.recs, e.hdrs, e.ctxs, e.results, e.pend = e.blob[:0], e.recs[:0], e.hdrs[:0], e.ctxs[:0], e.results[:0], e.pend[:0]
	e.topic = ""
	encoders.Put(e)
}

func (e *encoder) bytes(b []byte) (off, n uint64) {
	off = uint64(len(e.blob))
	e.blob = append(e.blob, b...)
	return off, uint64(len(b))
}

// add encodes a record; an error means kp would refuse it anyway.
func (e *encoder) add(r *Record, manual bool) error {
	if len(e.blob) == 0 || r.Topic != e.topic {
		if strings.IndexByte(r.Topic, 0) >= 0 || r.Topic == "" {
			return newError(C.KP_ERR_INVALID_TOPIC, fmt.Sprintf("invalid topic name %q", r.Topic))
		}
		e.topicOff = uint64(len(e.blob))
		e.blob = append(e.blob, r.Topic...)
		e.blob = append(e.blob, 0)
		e.topic = r.Topic
	}
	g := C.kpgo_rec{
		topic_off: C.uint64_t(e.topicOff),
		hdr_first: C.uint64_t(len(e.hdrs)),
		hdr_count: C.uint64_t(len(r.Headers)),
		partition: C.KP_PARTITION_ANY,
	}
	if manual {
		g.partition = C.int32_t(r.Partition)
	}
	if !r.Timestamp.IsZero() {
		g.timestamp_ms = C.int64_t(r.Timestamp.UnixMilli())
	}
	if r.Key != nil {
		off, n := e.bytes(r.Key)
		g.key_off, g.key_len, g.flags = C.uint64_t(off), C.uint64_t(n), g.flags|C.KPGO_KEY
	}
	if r.Value != nil {
		off, n := e.bytes(r.Value)
		g.value_off, g.value_len, g.flags = C.uint64_t(off), C.uint64_t(n), g.flags|C.KPGO_VALUE
	}
	for _, h := range r.Headers {
		var ch C.kpgo_hdr
		ko := uint64(len(e.blob))
		e.blob = append(e.blob, h.Key...)
		ch.key_off, ch.key_len = C.uint64_t(ko), C.uint64_t(len(h.Key))
		if h.Value != nil {
			off, n := e.bytes(h.Value)
			ch.value_off, ch.value_len, ch.has_value = C.uint64_t(off), C.uint64_t(n), 1
		}
		e.hdrs = append(e.hdrs, ch)
	}
	e.recs = append(e.recs, g)
	return nil
}

// err is why encoded record i was not accepted.
func (e *encoder) err(i int) error {
	return newError(C.kp_err_t(e.results[i]), "")
}
