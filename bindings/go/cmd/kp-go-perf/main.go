// Command kp-go-perf is the producer benchmark of perf/ (the flags and the
// summary lines of perf/kp-perf.c and perf/franz-driver) over the Go binding,
// so that perf/harness.py's parser and BENCHMARKS.md's columns apply.
//
// --sync-batch N sends with ProduceSync in batches of N records (one cgo
// crossing per batch) instead of one Produce call per record.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"kp.dev/kp"
)

// latencies is a log-linear histogram of nanoseconds: 8 sub-buckets per
// power of two (< 7 % error), lock-free.
type latencies struct {
	counts    [64 * 8]atomic.Uint64
	n, sum    atomic.Uint64
	max, wmax atomic.Uint64
}

func slot(v uint64) int {
	if v < 8 {
		return int(v)
	}
	e := bits.Len64(v) - 1
	return e*8 + int((v>>(uint(e)-3))&7)
}

func slotValue(i int) float64 {
	if i < 8 {
		return float64(i)
	}
	e := uint(i / 8)
	return float64(uint64(8+i%8)<<(e-3)) * 1.0625
}

func raise(m *atomic.Uint64, v uint64) {
	for c := m.Load(); v > c && !m.CompareAndSwap(c, v); c = m.Load() {
	}
}

func (l *latencies) add(d time.Duration) {
	v := uint64(d)
	l.counts[slot(v)].Add(1)
	l.n.Add(1)
	l.sum.Add(v)
	raise(&l.max, v)
	raise(&l.wmax, v)
}

func (l *latencies) percentileMs(p float64) float64 {
	total := l.n.Load()
	rank := uint64(p*float64(total)) + 1
	var cum uint64
	for i := range l.counts {
		if cum += l.counts[i].Load(); cum >= rank {
			return slotValue(i) / 1e6
		}
	}
	return float64(l.max.Load()) / 1e6
}

// recycler hands Records whose promise has run (on the promise goroutine:
// successful ones only, refusals may run on the sender's) back to the
// senders, recycleChunk at a time, so that neither side locks per record.
type recycler struct {
	local []*kp.Record // the promise goroutine's chunk being filled
	mu    sync.Mutex
	full  [][]*kp.Record
	empty [][]*kp.Record
}

const recycleChunk = 256

func (c *recycler) put(r *kp.Record) {
	c.local = append(c.local, r)
	if len(c.local) < recycleChunk {
		return
	}
	c.mu.Lock()
	c.full = append(c.full, c.local)
	c.local = nil
	if k := len(c.empty) - 1; k >= 0 {
		c.local, c.empty = c.empty[k], c.empty[:k]
	}
	c.mu.Unlock()
}

// take returns a chunk of Records to reuse (nil when none), taking back the
// sender's empty chunk.
func (c *recycler) take(spent []*kp.Record) []*kp.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	if spent != nil {
		c.empty = append(c.empty, spent[:0])
	}
	k := len(c.full) - 1
	if k < 0 {
		return nil
	}
	chunk := c.full[k]
	c.full = c.full[:k]
	return chunk
}

type props []string

func (p *props) String() string     { return strings.Join(*p, ",") }
func (p *props) Set(s string) error { *p = append(*p, s); return nil }

func main() {
	bootstrap := flag.String("bootstrap", "", "host:port[,host:port...]")
	topic := flag.String("topic", "", "topic")
	numRecords := flag.Int64("num-records", -1, "records to send")
	recordSize := flag.Int("record-size", -1, "value bytes")
	throughput := flag.Float64("throughput", -1, "records/s, -1 = unlimited (only -1 is supported)")
	acks := flag.String("acks", "", "0|1|all")
	lingerMs := flag.Int("linger-ms", -1, "linger.ms")
	batchSize := flag.Int("batch-size", -1, "batch.size")
	compression := flag.String("compression", "", "none|gzip|snappy|lz4|zstd")
	keys := flag.Int64("keys", 0, "0 = null keys, else keys drawn from N distinct")
	threads := flag.Int("threads", 1, "goroutines sending at once")
	idempotence := flag.Bool("idempotence", false, "idempotent producer")
	syncBatch := flag.Int("sync-batch", 0, "send with ProduceSync in batches of N (0: Produce per record)")
	reuse := flag.Bool("reuse-records", false, "Produce: reuse each Record once its promise has run (handed back to the sender a chunk at a time) instead of allocating one per record")
	clockEvery := flag.Int("clock-every", 1, "read the clock for the send stamp and the latency once per N records (1: per record, as the other perf/ drivers)")
	nullProducer := flag.Bool("null-producer", false, "Produce: hand each Record straight to its promise instead of to kp (sends nothing): what this driver costs alone, the floor under the Go clients' figures, as perf/java/NullProducer.java is for Java")
	reportMs := flag.Int("report-interval-ms", 5000, "progress line period")
	cpuProfile := flag.String("cpuprofile", "", "write a pprof CPU profile of the run here")
	var pprops props
	flag.Var(&pprops, "producer-property", "k=v (repeatable)")
	flag.Parse()
	if *bootstrap == "" || *topic == "" || *numRecords < 0 || *recordSize < 0 || *threads < 1 || *throughput > 0 || *clockEvery < 1 ||
		(*nullProducer && (*threads != 1 || *syncBatch > 0)) {
		fmt.Fprintln(os.Stderr, "--bootstrap, --topic, --num-records and --record-size are required; --throughput must be -1; --null-producer only with one goroutine and Produce")
		flag.Usage()
		os.Exit(2)
	}
	cfg := kp.Config{
		"bootstrap.servers":                     *bootstrap,
		"enable.idempotence":                    strconv.FormatBool(*idempotence),
		"buffer.memory":                         strconv.Itoa(32 << 20),
		"max.in.flight.requests.per.connection": "5",
	}
	if *acks != "" {
		cfg["acks"] = *acks
	}
	if *lingerMs >= 0 {
		cfg["linger.ms"] = strconv.Itoa(*lingerMs)
	}
	if *batchSize > 0 {
		cfg["batch.size"] = strconv.Itoa(*batchSize)
	}
	if *compression != "" {
		cfg["compression.type"] = *compression
	}
	for _, kv := range pprops {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "bad --producer-property %q\n", kv)
			os.Exit(2)
		}
		cfg[k] = v
	}
	p, err := kp.NewProducer(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kp-go: %v\n", err)
		os.Exit(2)
	}
	payload := make([]byte, *recordSize)
	for i, r := 0, uint64(0x2545F4914F6CDD1D); i < len(payload); i++ {
		r ^= r << 13
		r ^= r >> 7
		r ^= r << 17
		payload[i] = byte('A' + r%26)
	}
	keyTab := make([][]byte, *keys)
	for i := range keyTab {
		keyTab[i] = []byte(fmt.Sprintf("key-%d", i))
	}
	fmt.Fprintf(os.Stderr, "kp-go %s: %d records of %d bytes to %s on %s, threads %d, sync-batch %d\n",
		kp.Version(), *numRecords, *recordSize, *topic, *bootstrap, *threads, *syncBatch)

	var lat latencies
	var failed, printed atomic.Uint64
	note := func(err error) {
		failed.Add(1)
		if printed.Add(1) <= 5 {
			fmt.Fprintf(os.Stderr, "delivery failed: %v\n", err)
		}
	}
	// The send time rides in Record.Timestamp (kp sends it as CreateTime and
	// hands it back in milliseconds: latencies are ~0.5 ms high on average).
	// With --clock-every N the promise goroutine reads the clock once per N
	// promises (latencies are then up to N promises' time off).
	var free recycler
	var promiseNow time.Time
	var promiseCount int
	promise := func(r *kp.Record, err error) {
		if err != nil {
			note(err)
			return
		}
		if promiseCount%*clockEvery == 0 || promiseNow.Before(r.Timestamp) {
			promiseNow = time.Now() // never older than the send stamp
		}
		promiseCount++
		lat.add(promiseNow.Sub(r.Timestamp))
		if *reuse {
			free.put(r)
		}
	}

	stop := make(chan struct{})
	reporterDone := make(chan struct{})
	go func() {
		defer close(reporterDone)
		t := time.NewTicker(time.Duration(*reportMs) * time.Millisecond)
		defer t.Stop()
		last, lastN, lastSum := time.Now(), uint64(0), uint64(0)
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				n, sum := lat.n.Load(), lat.sum.Load()
				rps := float64(n-lastN) / now.Sub(last).Seconds()
				avg := 0.0
				if n > lastN {
					avg = float64(sum-lastSum) / float64(n-lastN) / 1e6
				}
				fmt.Printf("%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency.\n",
					n-lastN, rps, rps*float64(*recordSize)/(1<<20), avg, float64(lat.wmax.Swap(0))/1e6)
				last, lastN, lastSum = now, n, sum
			}
		}
	}()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cpuprofile: %v\n", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	for t := 0; t < *threads; t++ {
		count := *numRecords / int64(*threads)
		if int64(t) < *numRecords%int64(*threads) {
			count++
		}
		wg.Add(1)
		go func(idx int, count int64) {
			defer wg.Done()
			rng := uint64(0x9E3779B97F4A7C15) * uint64(idx+1)
			key := func() []byte {
				if *keys == 0 {
					return nil
				}
				rng ^= rng << 13
				rng ^= rng >> 7
				rng ^= rng << 17
				return keyTab[rng%uint64(*keys)]
			}
			if *syncBatch <= 0 {
				var now time.Time
				var mine []*kp.Record // --reuse-records: Records to reuse
				for i := int64(0); i < count; i++ {
					if i%int64(*clockEvery) == 0 {
						now = time.Now()
					}
					var r *kp.Record
					if *reuse {
						if len(mine) == 0 {
							mine = free.take(mine)
						}
						if k := len(mine) - 1; k >= 0 {
							r, mine = mine[k], mine[:k]
						}
					}
					if r == nil {
						r = new(kp.Record)
					}
					*r = kp.Record{Topic: *topic, Key: key(), Value: payload, Timestamp: now}
					if *nullProducer {
						promise(r, nil)
						continue
					}
					p.Produce(ctx, r, promise)
				}
				return
			}
			// The batch's Records are reused from one ProduceSync call
			// to the next (the binding no longer touches them once the
			// call has returned): no allocation per record.
			recs := make([]kp.Record, *syncBatch)
			batch := make([]*kp.Record, 0, *syncBatch)
			for i := int64(0); i < count; i++ {
				r := &recs[len(batch)]
				*r = kp.Record{Topic: *topic, Key: key(), Value: payload, Timestamp: time.Now()}
				batch = append(batch, r)
				if len(batch) == cap(batch) || i == count-1 {
					for _, res := range p.ProduceSync(ctx, batch...) {
						if res.Err != nil {
							note(res.Err)
							continue
						}
						lat.add(time.Since(res.Record.Timestamp))
					}
					batch = batch[:0]
				}
			}
		}(t, count)
	}
	wg.Wait()
	rc := 0
	if err := p.Flush(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "flush: %v\n", err)
		rc = 1
	}
	elapsed := time.Since(start).Seconds()
	close(stop)
	<-reporterDone
	if err := p.Close(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "close: %v\n", err)
		rc = 1
	}

	ok := lat.n.Load()
	rps := float64(ok) / elapsed
	avg := 0.0
	if ok > 0 {
		avg = float64(lat.sum.Load()) / float64(ok) / 1e6
	}
	fmt.Printf("%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, "+
		"%.2f ms 50th, %.2f ms 95th, %.2f ms 99th, %.2f ms 99.9th.\n",
		ok, rps, rps*float64(*recordSize)/(1<<20), avg, float64(lat.max.Load())/1e6,
		lat.percentileMs(0.50), lat.percentileMs(0.95), lat.percentileMs(0.99), lat.percentileMs(0.999))
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	user := time.Duration(ru.Utime.Nano()).Seconds()
	sys := time.Duration(ru.Stime.Nano()).Seconds()
	perM := 0.0
	if ok > 0 {
		perM = (user + sys) * 1e6 / float64(ok)
	}
	fmt.Printf("client cpu %.2f s (user %.2f s, sys %.2f s), %.2f cpu-s per million records, peak rss %.1f MiB.\n",
		user+sys, user, sys, perM, float64(vmHWM(ru.Maxrss))/1024)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "go heap: %.1f bytes allocated per record, %d GC cycles.\n",
		float64(ms.TotalAlloc)/float64(*numRecords), ms.NumGC)
	if f := failed.Load(); f > 0 {
		fmt.Printf("%d records failed.\n", f)
		rc = 1
	}
	if ok+failed.Load() != uint64(*numRecords) {
		fmt.Fprintf(os.Stderr, "kp-go: %d of %d records were never reported\n", uint64(*numRecords)-ok-failed.Load(), *numRecords)
		rc = 1
	}
	pprof.StopCPUProfile()
	os.Exit(rc)
}

// vmHWM is the process's peak RSS in KiB from /proc/self/status.
func vmHWM(fallback int64) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return fallback
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				return v
			}
		}
	}
	return fallback
}
