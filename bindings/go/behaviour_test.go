package kp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kp.dev/kp"
)

// Records kp refuses get one promise with an *kp.Error that errors.Is
// matches to the sentinel (before Flush returns: Produce buffers records);
// nothing else is lost.
func TestErrorsByClass(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 1)
	p := newProducer(t, kp.Config{"max.request.size": "10000"})
	defer p.Close(context.Background())

	check := func(r *kp.Record, sentinel *kp.Error, class kp.ErrorClass) {
		t.Helper()
		called := 0
		var got error
		var mu sync.Mutex
		p.Produce(context.Background(), r, func(_ *kp.Record, err error) { mu.Lock(); called++; got = err; mu.Unlock() })
		if err := p.Flush(ctxTimeout(t, 30*time.Second)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if called != 1 {
			t.Fatalf("promise called %d times before Flush returned, want 1", called)
		}
		var ke *kp.Error
		if !errors.Is(got, sentinel) || !errors.As(got, &ke) {
			t.Fatalf("got %v, want %v", got, sentinel)
		}
		if ke.Class != class || ke.Retriable() != (class == kp.ClassRetriable) || ke.Fatal() || ke.TxnRequiresAbort() {
			t.Fatalf("%v: class %v retriable %v", ke, ke.Class, ke.Retriable())
		}
	}
	check(&kp.Record{Topic: topic, Value: make([]byte, 20000)}, kp.ErrRecordTooLarge, kp.ClassApplicationRecoverable)
	check(&kp.Record{Topic: "not a valid topic!", Value: []byte("x")}, kp.ErrInvalidTopic, kp.ClassApplicationRecoverable)
	check(&kp.Record{Topic: "", Value: []byte("x")}, kp.ErrInvalidTopic, kp.ClassApplicationRecoverable)

	// ProduceSync reports refusals per record and still delivers the rest.
	res := p.ProduceSync(ctxTimeout(t, 30*time.Second),
		&kp.Record{Topic: topic, Value: []byte("ok-1")},
		&kp.Record{Topic: topic, Value: make([]byte, 20000)},
		&kp.Record{Topic: "bad/topic", Value: []byte("x")},
		&kp.Record{Topic: topic, Value: []byte("ok-2")})
	if res[0].Err != nil || res[3].Err != nil || !errors.Is(res[1].Err, kp.ErrRecordTooLarge) || !errors.Is(res[2].Err, kp.ErrInvalidTopic) {
		t.Fatalf("results: %v / %v / %v / %v", res[0].Err, res[1].Err, res[2].Err, res[3].Err)
	}
	if res[3].Record.Offset != res[0].Record.Offset+1 {
		t.Fatalf("offsets %d and %d", res[0].Record.Offset, res[3].Record.Offset)
	}
	if errors.Is(res[1].Err, kp.ErrQueueFull) {
		t.Fatal("errors.Is matched another code")
	}

	// Bad configuration is an invalid-configuration error.
	_, err := kp.NewProducer(kp.Config{"bootstrap.servers": bootstrap(t), "acks": "7"})
	var ke *kp.Error
	if !errors.As(err, &ke) || ke.Class != kp.ClassInvalidConfiguration || !strings.Contains(ke.Message, "acks") {
		t.Fatalf("bad acks: %v", err)
	}
}

// A full buffer with max.block.ms=0 refuses records with ErrQueueFull
// (retriable); closing with the rest queued gives every accepted record
// exactly one result. go.produce.batch.records=1: each Produce crosses into
// kp at once, so refusals come before it returns.
func TestQueueFullAndCloseWithRecordsQueued(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 1)
	p := newProducer(t, kp.Config{
		"buffer.memory": "262144", "max.block.ms": "0", "linger.ms": "60000", "batch.size": "1000000",
		"go.produce.batch.records": "1",
	})
	pr := newPromises(t)
	const n = 400
	refused := 0
	for i := 0; i < n; i++ {
		r := &kp.Record{Topic: topic, Value: bytes.Repeat([]byte{byte(i)}, 4096)}
		p.Produce(context.Background(), r, pr.fn)
	}
	for _, err := range pr.results() {
		if errors.Is(err, kp.ErrQueueFull) {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("no record was refused with ErrQueueFull")
	}
	var ke *kp.Error
	for _, err := range pr.results() {
		if errors.As(err, &ke) && errors.Is(err, kp.ErrQueueFull) && !ke.Retriable() {
			t.Fatalf("queue full not retriable: %v", ke)
		}
	}
	// Linger is 60 s: the accepted records are still queued. Close with a
	// context that is already done: each gets ErrClosed, none is lost.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close(canceled ctx) = %v", err)
	}
	if got := pr.calls.Load(); got != n {
		t.Fatalf("%d results after Close, want %d", got, n)
	}
	closed := 0
	for _, err := range pr.results() {
		if errors.Is(err, kp.ErrClosed) {
			closed++
		}
	}
	if closed != n-refused {
		outcomes := map[string]int{}
		for _, err := range pr.results() {
			outcomes[fmt.Sprint(err)]++
		}
		t.Fatalf("%d ErrClosed results, want %d (accepted); outcomes %v", closed, n-refused, outcomes)
	}
	// The closed producer refuses new records with ErrClosed.
	var after error
	p.Produce(context.Background(), &kp.Record{Topic: topic}, func(_ *kp.Record, err error) { after = err })
	if !errors.Is(after, kp.ErrClosed) {
		t.Fatalf("Produce after Close: %v", after)
	}
	if res := p.ProduceSync(context.Background(), &kp.Record{Topic: topic}); !errors.Is(res[0].Err, kp.ErrClosed) {
		t.Fatalf("ProduceSync after Close: %v", res[0].Err)
	}
	if err := p.Flush(context.Background()); !errors.Is(err, kp.ErrClosed) {
		t.Fatalf("Flush after Close: %v", err)
	}
}

// Produce's buffered records that kp refuses when they cross (a full
// buffer, max.block.ms=0) get ErrQueueFull on the promise goroutine; the
// others are delivered, each record exactly once, in order per partition.
func TestQueueFullBuffered(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 1)
	p := newProducer(t, kp.Config{
		"buffer.memory": "262144", "max.block.ms": "0", "linger.ms": "60000", "batch.size": "1000000",
	})
	defer p.Close(context.Background())
	pr := newPromises(t)
	const n = 400
	for i := 0; i < n; i++ {
		p.Produce(context.Background(), &kp.Record{Topic: topic, Value: bytes.Repeat([]byte{byte(i)}, 4096)}, pr.fn)
	}
	if err := p.Flush(ctxTimeout(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := pr.calls.Load(); got != n {
		t.Fatalf("%d results after Flush, want %d", got, n)
	}
	refused, delivered := 0, 0
	for _, err := range pr.results() {
		switch {
		case err == nil:
			delivered++
		case errors.Is(err, kp.ErrQueueFull):
			refused++
		default:
			t.Fatalf("unexpected result %v", err)
		}
	}
	if refused == 0 || delivered == 0 {
		t.Fatalf("%d refused, %d delivered: want both", refused, delivered)
	}
	// A bad value of the binding's property is a configuration error.
	_, err := kp.NewProducer(kp.Config{"bootstrap.servers": bootstrap(t), "go.produce.batch.records": "0"})
	var ke *kp.Error
	if !errors.As(err, &ke) || ke.Class != kp.ClassInvalidConfiguration {
		t.Fatalf("go.produce.batch.records=0: %v", err)
	}
}

// Close with a live context delivers what is queued (linger ignored).
func TestCloseDeliversQueued(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 1)
	p := newProducer(t, kp.Config{"linger.ms": "60000", "batch.size": "1000000"})
	pr := newPromises(t)
	const n = 500
	pr.produceN(p, topic, n)
	// Buffered or crossed, each record is outstanding until its promise.
	if got := p.Outstanding(); got != n {
		t.Fatalf("Outstanding() = %d after %d Produce calls, want %d", got, n, n)
	}
	start := time.Now()
	if err := p.Close(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatalf("Close waited %v: linger.ms was not ignored", time.Since(start))
	}
	pr.allDelivered(topic, n)
}

// Canceling Flush's context ends the wait, never a record: every record
// still gets one result and the consumer reads them all.
func TestFlushCancelLosesNothing(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 3)
	p := newProducer(t, kp.Config{"linger.ms": "60000", "batch.size": "1000000"})
	defer p.Close(context.Background())
	pr := newPromises(t)
	const n = 3000
	pr.produceN(p, topic, n)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Flush(canceled) = %v", err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel2()
	if err := p.Flush(short); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush(1ms) = %v", err)
	}
	if err := p.Flush(ctxTimeout(t, 60*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	pr.allDelivered(topic, n)
}

// ProduceSync whose context ends before the reports returns at once with
// ErrWaitCanceled; the records are still delivered. They go to a topic that
// does not exist yet (kp holds them until its metadata names it), created
// once ProduceSync has returned.
func TestProduceSyncCanceledWait(t *testing.T) {
	t.Parallel()
	topic := topicName(t)
	p := newProducer(t, kp.Config{})
	recs := []*kp.Record{{Topic: topic, Value: []byte("a")}, {Topic: topic, Value: []byte("b")}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res := p.ProduceSync(ctx, recs...)
	for _, r := range res {
		if !errors.Is(r.Err, kp.ErrWaitCanceled) || !errors.Is(r.Err, context.DeadlineExceeded) {
			t.Fatalf("result: %v", r.Err)
		}
	}
	createTopic(t, topic, 1)
	if err := p.Close(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := consume(t, topic, 2, "read_uncommitted"); len(got) != 2 {
		t.Fatalf("read %d, want 2", len(got))
	}
}

// Many goroutines share one producer (Produce and ProduceSync mixed).
func TestConcurrentGoroutines(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 4)
	p := newProducer(t, nil)
	defer p.Close(context.Background())
	pr := newPromises(t)
	const workers, each = 8, 250
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var batch []*kp.Record
			for i := 0; i < each; i++ {
				r := &kp.Record{Topic: topic, Key: []byte(fmt.Sprintf("%d-%d", w, i)), Value: []byte("v")}
				if w%2 == 0 {
					p.Produce(context.Background(), r, pr.fn)
				} else {
					batch = append(batch, r)
				}
			}
			if len(batch) > 0 {
				if err := p.ProduceSync(context.Background(), batch...).FirstErr(); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := p.Flush(ctxTimeout(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := pr.calls.Load(); got != workers/2*each {
		t.Fatalf("%d promise calls, want %d", got, workers/2*each)
	}
	if got := consume(t, topic, workers*each, "read_uncommitted"); len(got) != workers*each {
		t.Fatalf("read %d, want %d", len(got), workers*each)
	}
}

// Records sent with the "manual" partitioner go to Record.Partition; a
// partition that does not exist is refused.
func TestManualPartitionAndMetadata(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 3)
	p := newProducer(t, kp.Config{"partitioner": "manual"})
	defer p.Close(context.Background())
	parts, err := p.PartitionsFor(ctxTimeout(t, 30*time.Second), topic)
	if err != nil || len(parts) != 3 {
		t.Fatalf("PartitionsFor: %v %v", parts, err)
	}
	for _, pi := range parts {
		if pi.Leader < 0 {
			t.Fatalf("no leader: %+v", parts)
		}
	}
	res := p.ProduceSync(ctxTimeout(t, 30*time.Second),
		&kp.Record{Topic: topic, Partition: 2, Value: []byte("two")},
		&kp.Record{Topic: topic, Partition: 1, Value: []byte("one")},
		&kp.Record{Topic: topic, Partition: 9, Value: []byte("nine")})
	if res[0].Err != nil || res[1].Err != nil || res[0].Record.Partition != 2 || res[1].Record.Partition != 1 {
		t.Fatalf("results: %+v %+v", res[0], res[1])
	}
	if !errors.Is(res[2].Err, kp.ErrUnknownPartition) {
		t.Fatalf("partition 9: %v", res[2].Err)
	}
	m, err := p.Metrics()
	if err != nil || m.RecordsDelivered != 2 || m.BatchesSent < 2 || m.ConnectionsOpened == 0 {
		t.Fatalf("metrics: %+v %v", m, err)
	}
	for _, c := range consume(t, topic, 2, "read_uncommitted") {
		v, _ := decodeB64(c.Value)
		if (v == "two") != (c.Partition == 2) {
			t.Fatalf("%q read from partition %d", v, c.Partition)
		}
	}
	if !strings.HasPrefix(kp.Version(), "0.") {
		t.Fatalf("Version %q", kp.Version())
	}
}

// Transactions: a committed transaction is visible to read_committed, an
// aborted one is not; offsets sent to the transaction are committed with it.
func TestTransactions(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 2)
	p := newProducer(t, kp.Config{"transactional.id": "go-txn-" + runID})
	defer p.Close(context.Background())
	ctx := ctxTimeout(t, 90*time.Second)
	if err := p.InitTransactions(ctx); err != nil {
		t.Fatalf("InitTransactions: %v", err)
	}
	if v := p.TransactionProtocolVersion(); v != 1 && v != 2 {
		t.Fatalf("protocol version %d", v)
	}
	group := "go-txn-group-" + runID
	send := func(prefix string, n int) {
		t.Helper()
		recs := make([]*kp.Record, n)
		for i := range recs {
			recs[i] = &kp.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
		}
		if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("ProduceSync in transaction: %v", err)
		}
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	send("committed", 20)
	if err := p.SendOffsetsToTransaction(ctx, group, []kp.TopicPartitionOffset{{Topic: topic, Partition: 0, Offset: 42}}); err != nil {
		t.Fatalf("SendOffsetsToTransaction: %v", err)
	}
	if err := p.CommitTransaction(ctx); err != nil {
		t.Fatalf("CommitTransaction: %v", err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	send("aborted", 15)
	if err := p.AbortTransaction(ctx); err != nil {
		t.Fatalf("AbortTransaction: %v", err)
	}
	// A commit without a transaction is a state error, not a hang.
	if err := p.CommitTransaction(ctx); err == nil {
		t.Fatal("commit without a transaction succeeded")
	}

	committed := consume(t, topic, 20, "read_committed")
	if len(committed) != 20 {
		t.Fatalf("read_committed read %d, want 20", len(committed))
	}
	for _, c := range committed {
		if v, _ := decodeB64(c.Value); !strings.HasPrefix(v, "committed-") {
			t.Fatalf("read_committed saw %q", v)
		}
	}
	if all := consume(t, topic, 35, "read_uncommitted"); len(all) != 35 {
		t.Fatalf("read_uncommitted read %d, want 35", len(all))
	}
	script := `
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": sys.argv[2]})
print(c.committed([TopicPartition(sys.argv[3], 0)], timeout=30)[0].offset)
c.close()
`
	out, err := exec.Command("python3", "-c", script, bootstrap(t), group, topic).Output()
	if err != nil || strings.TrimSpace(string(out)) != "42" {
		t.Fatalf("group offset: %q %v", out, err)
	}
}
