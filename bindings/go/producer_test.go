package kp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kp.dev/kp"
)

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// Produce with promises: every record's bytes (key, value, headers with a
// null value, binary data, empty key) and timestamp read back identical, at
// the partition and offset its promise reported.
func TestProduceAsyncReadBack(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 3)
	p := newProducer(t, nil)
	pr := newPromises(t)
	const n = 300
	base := time.UnixMilli(1700000000123)
	recs := make([]*kp.Record, n)
	for i := range recs {
		r := &kp.Record{
			Topic:     topic,
			Key:       []byte(fmt.Sprintf("key-%d", i%17)),
			Value:     append([]byte{0, 0xff, byte(i)}, bytes.Repeat([]byte("v"), i%50)...),
			Timestamp: base.Add(time.Duration(i) * time.Millisecond),
			Headers: []kp.RecordHeader{
				{Key: "h1", Value: []byte{1, 2, 0, 3}},
				{Key: "null", Value: nil},
				{Key: "empty", Value: []byte{}},
			},
		}
		switch i % 10 {
		case 3:
			r.Key = nil // null key
		case 4:
			r.Key = []byte{} // empty key
		case 5:
			r.Value = nil // tombstone
		case 6:
			r.Headers = nil
		}
		recs[i] = r
		p.Produce(context.Background(), r, pr.fn)
	}
	if err := p.Flush(ctxTimeout(t, 60*time.Second)); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	if got := pr.calls.Load(); got != n {
		t.Fatalf("%d promise calls after Flush, want %d", got, n)
	}
	if p.Outstanding() != 0 {
		t.Fatalf("Outstanding %d after Flush", p.Outstanding())
	}
	for r, err := range pr.results() {
		if err != nil {
			t.Fatalf("record %p: %v", r, err)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := consume(t, topic, n, "read_uncommitted")
	if len(got) != n {
		t.Fatalf("consumer read %d records, want %d", len(got), n)
	}
	at := map[[2]int64]consumed{}
	for _, c := range got {
		at[[2]int64{int64(c.Partition), c.Offset}] = c
	}
	for i, r := range recs {
		c, ok := at[[2]int64{int64(r.Partition), r.Offset}]
		if !ok {
			t.Fatalf("record %d reported at %d/%d, not read there", i, r.Partition, r.Offset)
		}
		if !eqPtr(c.Key, b64(r.Key)) || !eqPtr(c.Value, b64(r.Value)) {
			t.Fatalf("record %d: key/value differ: read %v/%v", i, deref(c.Key), deref(c.Value))
		}
		if c.Timestamp != r.Timestamp.UnixMilli() || !r.Timestamp.Equal(base.Add(time.Duration(i)*time.Millisecond)) {
			t.Fatalf("record %d: timestamp read %d, record says %v", i, c.Timestamp, r.Timestamp)
		}
		if len(c.Headers) != len(r.Headers) {
			t.Fatalf("record %d: %d headers read, want %d", i, len(c.Headers), len(r.Headers))
		}
		for j, h := range r.Headers {
			if deref(c.Headers[j][0]) != h.Key || !eqPtr(c.Headers[j][1], b64(h.Value)) {
				t.Fatalf("record %d header %d differs: %v", i, j, c.Headers[j])
			}
		}
	}
}

func eqPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return *s
}

// ProduceSync: one call for the batch, every result filled in, offsets
// consecutive per partition, and the consumer reads the same values.
func TestProduceSyncBatch(t *testing.T) {
	t.Parallel()
	produceSyncAndReadBack(t, 2000)
}

// A ProduceSync batch larger than one slot of the producer's context table
// (65,536 records) spans several slots.
func TestProduceSyncLargerThanASlot(t *testing.T) {
	t.Parallel()
	produceSyncAndReadBack(t, 70000)
}

// Buffered Produce records cross into kp without a Flush: full buffers at
// once, the rest when the window (at most 1 ms) ends, also right after a
// full buffer was sent (600 records = two full crossings of 256 and 88
// waiting for the window). Every promise runs, with no Flush or Close.
func TestBufferedRecordsCrossWithoutFlush(t *testing.T) {
	t.Parallel()
	topic, p := topicAndProducer(t, 1, kp.Config{"linger.ms": "20"})
	const n = 600
	done := make(chan error, n)
	for i := 0; i < n; i++ {
		p.Produce(context.Background(), &kp.Record{Topic: topic, Value: []byte(strconv.Itoa(i))},
			func(_ *kp.Record, err error) { done <- err })
	}
	timeout := time.After(30 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("promise %d: %v", i, err)
			}
		case <-timeout:
			t.Fatalf("%d of %d promises ran in 30 s without Flush (%d outstanding)", i, n, p.Outstanding())
		}
	}
}

// A Record may be reused once its promise has run: Produce copied its
// bytes when called and the binding does not touch it after the promise.
// Eight Records carry 3,000 values, each handed back by its promise (which
// notes the partition and offset it was given) before it is filled anew;
// every value is read back at the offset its promise saw.
func TestRecordsReusedAfterTheirPromise(t *testing.T) {
	t.Parallel()
	topic, p := topicAndProducer(t, 3, nil)
	const n, kept = 3000, 8
	free := make(chan *kp.Record, kept)
	for i := 0; i < kept; i++ {
		free <- new(kp.Record)
	}
	var mu sync.Mutex
	at := map[[2]int64]string{}
	var failed error
	for i := 0; i < n; i++ {
		r := <-free
		*r = kp.Record{Topic: topic, Key: []byte(strconv.Itoa(i % 7)), Value: []byte(fmt.Sprintf("value-%d", i))}
		p.Produce(context.Background(), r, func(r *kp.Record, err error) {
			mu.Lock()
			k := [2]int64{int64(r.Partition), r.Offset}
			if _, dup := at[k]; err == nil && !dup {
				at[k] = string(r.Value)
			} else if failed == nil {
				failed = fmt.Errorf("%s: error %v, or offset %v reported twice", r.Value, err, k)
			}
			mu.Unlock()
			free <- r
		})
	}
	if err := p.Flush(ctxTimeout(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if failed != nil || len(at) != n {
		t.Fatalf("%d distinct offsets, want %d: %v", len(at), n, failed)
	}
	for _, c := range consume(t, topic, n, "read_uncommitted") {
		if v := at[[2]int64{int64(c.Partition), c.Offset}]; !eqPtr(c.Value, b64([]byte(v))) {
			t.Fatalf("%d/%d: read %s, want %q", c.Partition, c.Offset, deref(c.Value), v)
		}
	}
}

// A ProduceSync call crosses into kp in chunks of a few thousand records:
// refusals in the first, a middle and the last chunk (before the crossing:
// an invalid topic; at it: too large) land on their own records; every
// other record is delivered once, in call order (one partition: offsets
// increase with the index across chunks) and read back at its offset. The
// same Records are then sent again by a second call (a returned call's
// Records are the caller's again).
func TestProduceSyncChunksKeepOrderAndRefusals(t *testing.T) {
	t.Parallel()
	topic, p := topicAndProducer(t, 1, kp.Config{"max.request.size": "10000"})
	const n = 10000
	invalid := map[int]bool{5: true, 9000: true}
	tooLarge := map[int]bool{4100: true, n - 1: true}
	recs := make([]kp.Record, n)
	ptrs := make([]*kp.Record, n)
	offsets := map[int64]string{}
	for round := 0; round < 2; round++ {
		for i := range recs {
			recs[i] = kp.Record{Topic: topic, Value: []byte(fmt.Sprintf("r%d-%d", round, i))}
			switch {
			case invalid[i]:
				recs[i].Topic = "bad topic!"
			case tooLarge[i]:
				recs[i].Value = make([]byte, 20000)
			}
			ptrs[i] = &recs[i]
		}
		res := p.ProduceSync(ctxTimeout(t, 60*time.Second), ptrs...)
		if len(res) != n {
			t.Fatalf("%d results, want %d", len(res), n)
		}
		last := int64(-1)
		for i, r := range res {
			switch {
			case r.Record != ptrs[i]:
				t.Fatalf("result %d is another record's", i)
			case invalid[i]:
				if !errors.Is(r.Err, kp.ErrInvalidTopic) {
					t.Fatalf("record %d: %v, want ErrInvalidTopic", i, r.Err)
				}
			case tooLarge[i]:
				if !errors.Is(r.Err, kp.ErrRecordTooLarge) {
					t.Fatalf("record %d: %v, want ErrRecordTooLarge", i, r.Err)
				}
			case r.Err != nil:
				t.Fatalf("record %d: %v", i, r.Err)
			case r.Record.Offset <= last:
				t.Fatalf("record %d at offset %d after %d: not in call order", i, r.Record.Offset, last)
			default:
				last = r.Record.Offset
				offsets[last] = string(r.Record.Value)
			}
		}
	}
	want := 2 * (n - len(invalid) - len(tooLarge))
	if len(offsets) != want {
		t.Fatalf("%d distinct offsets, want %d", len(offsets), want)
	}
	for _, c := range consume(t, topic, want, "read_uncommitted") {
		if v, ok := offsets[c.Offset]; !ok || !eqPtr(c.Value, b64([]byte(v))) {
			t.Fatalf("offset %d: read %s, want %q", c.Offset, deref(c.Value), v)
		}
	}
}

func produceSyncAndReadBack(t *testing.T, n int) {
	topic := newTopic(t, 2)
	p := newProducer(t, nil)
	defer p.Close(context.Background())
	recs := make([]*kp.Record, n)
	for i := range recs {
		recs[i] = &kp.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}
	}
	res := p.ProduceSync(ctxTimeout(t, 60*time.Second), recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}
	seen := map[[2]int64]bool{}
	for i, r := range res {
		if r.Record != recs[i] || r.Record.Offset < 0 || r.Record.Partition < 0 || r.Record.Partition > 1 {
			t.Fatalf("result %d: %+v", i, r)
		}
		k := [2]int64{int64(r.Record.Partition), r.Record.Offset}
		if seen[k] {
			t.Fatalf("offset %v twice", k)
		}
		seen[k] = true
	}
	got := consume(t, topic, n, "read_uncommitted")
	if len(got) != n {
		t.Fatalf("read %d, want %d", len(got), n)
	}
	values := map[string]bool{}
	for _, c := range got {
		values[deref(c.Value)] = true
	}
	for i := range recs {
		if !values[*b64([]byte(strconv.Itoa(i)))] {
			t.Fatalf("value %d not read back", i)
		}
	}
}

// Keyed records land where the Java producer's partitioner (murmur2, kp's
// default for keys) puts them: compared with librdkafka's murmur2_random,
// which reproduces Java's placement, through confluent-kafka.
func TestKeysLandWhereJavaPutsThem(t *testing.T) {
	t.Parallel()
	const parts, n = 7, 200
	topic := newTopic(t, parts)
	p := newProducer(t, nil)
	defer p.Close(context.Background())
	recs := make([]*kp.Record, n)
	keys := make([]string, n)
	for i := range recs {
		keys[i] = fmt.Sprintf("user-%d-%x", i, i*7919)
		recs[i] = &kp.Record{Topic: topic, Key: []byte(keys[i]), Value: []byte("x")}
	}
	if err := p.ProduceSync(ctxTimeout(t, 60*time.Second), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	other := topic + "-librdkafka"
	cmd := exec.Command("python3", filepath.Join(repoRoot(), "tests/verify/create_topics.py"),
		bootstrap(t), "1", fmt.Sprintf("%s:%d", other, parts))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create topic: %v\n%s", err, out)
	}
	script := `
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "partitioner": "murmur2_random"})
out = {}
def cb(err, msg):
    assert err is None, err
    out[msg.key().decode()] = msg.partition()
for k in sys.stdin.read().split():
    p.produce(sys.argv[2], key=k.encode(), value=b"x", on_delivery=cb)
p.flush(60)
for k, v in out.items():
    print(k, v)
`
	py := exec.Command("python3", "-c", script, bootstrap(t), other)
	py.Stdin = strings.NewReader(strings.Join(keys, "\n"))
	out, err := py.Output()
	if err != nil {
		t.Fatalf("confluent-kafka producer: %v", err)
	}
	want := map[string]int32{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		v, _ := strconv.Atoi(f[1])
		want[f[0]] = int32(v)
	}
	used := map[int32]bool{}
	for i, r := range recs {
		w, ok := want[keys[i]]
		if !ok {
			t.Fatalf("no placement for key %s from confluent-kafka", keys[i])
		}
		if r.Partition != w {
			t.Fatalf("key %s: kp put it in partition %d, the Java partitioner in %d", keys[i], r.Partition, w)
		}
		used[w] = true
	}
	if len(used) != parts {
		t.Fatalf("keys spread over %d partitions, want %d", len(used), parts)
	}
	// And the consumer sees each record where its promise said.
	for _, c := range consume(t, topic, n, "read_uncommitted") {
		key, _ := decodeB64(c.Key)
		if want[key] != c.Partition {
			t.Fatalf("key %s read from partition %d, want %d", key, c.Partition, want[key])
		}
	}
}

// ProduceSync and Purge come after the Produce calls before them: the
// buffered records cross first. One goroutine, one partition: each round's
// Produce records land before its ProduceSync record, and a Purge right
// after Produce purges every buffered record (none crosses after it).
func TestBufferedCrossingsComeBeforeLaterCalls(t *testing.T) {
	t.Parallel()
	topic, p := topicAndProducer(t, 1, kp.Config{"linger.ms": "5"})
	const rounds, each = 5, 3000
	for round := 0; round < rounds; round++ {
		var mu sync.Mutex
		maxAsync := int64(-1)
		pending := make(chan struct{}, each)
		for i := 0; i < each; i++ {
			p.Produce(context.Background(), &kp.Record{Topic: topic, Value: []byte(strconv.Itoa(i))},
				func(r *kp.Record, err error) {
					if err != nil {
						t.Errorf("promise: %v", err)
					}
					mu.Lock()
					if r.Offset > maxAsync {
						maxAsync = r.Offset
					}
					mu.Unlock()
					pending <- struct{}{}
				})
		}
		res := p.ProduceSync(ctxTimeout(t, 30*time.Second), &kp.Record{Topic: topic, Value: []byte("sync")})
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < each; i++ {
			<-pending
		}
		mu.Lock()
		if res[0].Record.Offset <= maxAsync {
			t.Fatalf("round %d: ProduceSync's record at offset %d, before a Produce record of the call before it (offset %d)",
				round, res[0].Record.Offset, maxAsync)
		}
		mu.Unlock()
	}

	q, err := kp.NewProducer(kp.Config{"bootstrap.servers": bootstrap(t), "linger.ms": "60000", "batch.size": "1000000"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close(context.Background())
	pr := newPromises(t)
	const n = 3000
	pr.produceN(q, topic, n)
	if err := q.Purge(false); err != nil {
		t.Fatal(err)
	}
	if err := q.Flush(ctxTimeout(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, err := range pr.results() {
		if !errors.Is(err, kp.ErrPurgedQueued) {
			t.Fatalf("a record buffered before Purge: %v, want ErrPurgedQueued", err)
		}
	}
	if got := pr.calls.Load(); got != n {
		t.Fatalf("%d results, want %d", got, n)
	}
}

// ProduceSync does not wait for linger.ms: once its records have crossed,
// kp sends what it holds (kp_send_queued). With linger.ms at 60 s a call
// returns delivered records well within its 20 s context; the first call's
// records also wait for the topic's first metadata (a new producer).
func TestProduceSyncDoesNotLinger(t *testing.T) {
	t.Parallel()
	topic, p := topicAndProducer(t, 2, kp.Config{"linger.ms": "60000", "batch.size": "1000000"})
	for round := 0; round < 3; round++ {
		recs := make([]*kp.Record, 10)
		for i := range recs {
			recs[i] = &kp.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}
		}
		start := time.Now()
		if err := p.ProduceSync(ctxTimeout(t, 20*time.Second), recs...).FirstErr(); err != nil {
			t.Fatalf("round %d: ProduceSync after %v: %v", round, time.Since(start), err)
		}
	}
}
