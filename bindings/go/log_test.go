//go:build go1.21

package kp_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"kp.dev/kp"
)

type logRecorder struct {
	mu    sync.Mutex
	lines []string
	found chan struct{}
	match func(level kp.LogLevel, facility, message string) bool
	once  sync.Once
}

func (r *logRecorder) fn(level kp.LogLevel, facility, message string) {
	r.mu.Lock()
	r.lines = append(r.lines, level.String()+" "+facility+" "+message)
	r.mu.Unlock()
	if r.match(level, facility, message) {
		r.once.Do(func() { close(r.found) })
	}
}

func (r *logRecorder) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-r.found:
	case <-time.After(30 * time.Second):
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("no %s log line in 30 s; got %q", what, r.lines)
	}
}

// An unreachable bootstrap broker is logged at WARNING (facility broker)
// through WithLogFunc, on a goroutine of the producer.
func TestLogUnreachableBroker(t *testing.T) {
	t.Parallel()
	rec := &logRecorder{found: make(chan struct{}), match: func(l kp.LogLevel, f, _ string) bool {
		return l == kp.LogWarning && f == "broker"
	}}
	p, err := kp.NewProducer(kp.Config{"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": "60000"},
		kp.WithLogFunc(rec.fn))
	if err != nil {
		t.Fatal(err)
	}
	pr := newPromises(t)
	p.Produce(context.Background(), &kp.Record{Topic: "go-log-unreachable", Value: []byte("x")}, pr.fn)
	rec.wait(t, "WARNING broker")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.Close(ctx)
	if pr.calls.Load() != 1 {
		t.Fatalf("%d results, want 1", pr.calls.Load())
	}
}

// slogCapture is a slog.Handler keeping the records it gets.
type slogCapture struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

func (h slogCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h slogCapture) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	*h.recs = append(*h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h slogCapture) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slogCapture) WithGroup(string) slog.Handler      { return h }

// A real connection is logged at INFO ("connected to broker", facility
// broker) through WithLogger; with log_level=4 it is not.
func TestLogConnectSlog(t *testing.T) {
	t.Parallel()
	topic := newTopic(t, 1)
	run := func(level string) []slog.Record {
		var mu sync.Mutex
		var recs []slog.Record
		p, err := kp.NewProducer(kp.Config{"bootstrap.servers": bootstrap(t), "log_level": level},
			kp.WithLogger(slog.New(slogCapture{&mu, &recs})))
		if err != nil {
			t.Fatal(err)
		}
		res := p.ProduceSync(ctxTimeout(t, 30*time.Second), &kp.Record{Topic: topic, Value: []byte("v")})
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(ctxTimeout(t, 30*time.Second)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return recs
	}
	connected := func(recs []slog.Record) bool {
		for _, r := range recs {
			facility, syslog := "", int64(-1)
			r.Attrs(func(a slog.Attr) bool {
				switch a.Key {
				case "facility":
					facility = a.Value.String()
				case "syslog_level":
					syslog = a.Value.Int64()
				}
				return true
			})
			if r.Level == slog.LevelInfo && syslog == int64(kp.LogInfo) && facility == "broker" &&
				strings.Contains(r.Message, "connected to broker") {
				return true
			}
		}
		return false
	}
	if recs := run("6"); !connected(recs) {
		t.Fatalf("no INFO broker \"connected to broker\" record among %d: %v", len(recs), recs)
	}
	if recs := run("4"); connected(recs) {
		t.Fatal("log_level=4 still logged the INFO connect line")
	}
}
