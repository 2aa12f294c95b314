package kp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kp.dev/kp"
)

// The tests run against the real Kafka cluster in KP_BOOTSTRAP and read back
// with the repository's independent consumer (tests/verify/, confluent-kafka).

var runID = strconv.FormatInt(time.Now().UnixNano()%1e10, 36)

func bootstrap(t *testing.T) string {
	t.Helper()
	b := os.Getenv("KP_BOOTSTRAP")
	if b == "" {
		t.Skip("KP_BOOTSTRAP is not set (bindings/go/run-tests.sh needs a cluster)")
	}
	return b
}

func repoRoot() string { return filepath.Join("..", "..") }

// topicSeq makes topic names unique also across -count repetitions.
var topicSeq atomic.Int64

// newTopic creates a topic unique to this run with the verifier's admin
// client and returns its name.
func newTopic(t *testing.T, partitions int) string {
	t.Helper()
	name := topicName(t)
	createTopic(t, name, partitions)
	return name
}

// topicName is a topic name of this run not used before (the topic is not
// created: the test cluster does not create topics on first use).
func topicName(t *testing.T) string {
	return fmt.Sprintf("go-%s-%s-%d", t.Name(), runID, topicSeq.Add(1))
}

func createTopic(t *testing.T, name string, partitions int) {
	t.Helper()
	cmd := exec.Command("python3", filepath.Join(repoRoot(), "tests/verify/create_topics.py"),
		bootstrap(t), "1", fmt.Sprintf("%s:%d", name, partitions))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("create topic %s: %v\n%s", name, err, out)
	}
}

// consumed is one record as the independent consumer read it.
type consumed struct {
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       *string     `json:"key"`
	Value     *string     `json:"value"`
	Headers   [][]*string `json:"headers"`
	Timestamp int64       `json:"timestamp"`
}

func b64(b []byte) *string {
	if b == nil {
		return nil
	}
	s := base64.StdEncoding.EncodeToString(b)
	return &s
}

// consume reads n records of topic with confluent-kafka's consumer.
func consume(t *testing.T, topic string, n int, isolation string) []consumed {
	t.Helper()
	cmd := exec.Command("python3", filepath.Join(repoRoot(), "tests/verify/consume.py"),
		bootstrap(t), topic, strconv.Itoa(n), "--timeout", "60", "--isolation", isolation)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("consume %s: %v\n%s", topic, err, stderr.String())
	}
	var recs []consumed
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var c consumed
		if err := json.Unmarshal(line, &c); err != nil {
			t.Fatalf("verifier output %q: %v", line, err)
		}
		recs = append(recs, c)
	}
	return recs
}

func newProducer(t *testing.T, extra kp.Config) *kp.Producer {
	t.Helper()
	cfg := kp.Config{"bootstrap.servers": bootstrap(t)}
	for k, v := range extra {
		cfg[k] = v
	}
	p, err := kp.NewProducer(cfg)
	if err != nil {
		t.Fatalf("NewProducer: %v", err)
	}
	return p
}

// topicAndProducer creates a topic and a producer (with extra properties)
// that is closed when the test ends.
func topicAndProducer(t *testing.T, partitions int, extra kp.Config) (string, *kp.Producer) {
	t.Helper()
	topic := newTopic(t, partitions)
	p := newProducer(t, extra)
	t.Cleanup(func() { p.Close(context.Background()) })
	return topic, p
}

// promises counts promise calls per record and fails on a second call.
type promises struct {
	t     *testing.T
	mu    sync.Mutex
	seen  map[*kp.Record]error
	last  map[int32]int64
	calls atomic.Int64
}

func newPromises(t *testing.T) *promises {
	return &promises{t: t, seen: map[*kp.Record]error{}, last: map[int32]int64{}}
}

func (p *promises) fn(r *kp.Record, err error) {
	p.calls.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.seen[r]; dup {
		p.t.Errorf("second result for record %p (%v)", r, err)
	}
	p.seen[r] = err
	if err == nil {
		// Promises of one partition run in offset order.
		if last, ok := p.last[r.Partition]; ok && r.Offset <= last {
			p.t.Errorf("partition %d: promise for offset %d after %d", r.Partition, r.Offset, last)
		}
		p.last[r.Partition] = r.Offset
	}
}

func (p *promises) results() map[*kp.Record]error {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[*kp.Record]error, len(p.seen))
	for k, v := range p.seen {
		out[k] = v
	}
	return out
}

func decodeB64(s *string) (string, error) {
	if s == nil {
		return "", nil
	}
	b, err := base64.StdEncoding.DecodeString(*s)
	return string(b), err
}

// produceN sends n records (values "0".."n-1") with Produce and this promise.
func (p *promises) produceN(prod *kp.Producer, topic string, n int) {
	for i := 0; i < n; i++ {
		prod.Produce(context.Background(), &kp.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}, p.fn)
	}
}

// allDelivered checks that n promises ran, all without error, and that the
// independent consumer reads n records of topic.
func (p *promises) allDelivered(topic string, n int) {
	p.t.Helper()
	if got := p.calls.Load(); got != int64(n) {
		p.t.Fatalf("%d results, want %d", got, n)
	}
	for _, err := range p.results() {
		if err != nil {
			p.t.Fatal(err)
		}
	}
	if got := consume(p.t, topic, n, "read_uncommitted"); len(got) != n {
		p.t.Fatalf("read %d, want %d", len(got), n)
	}
}
