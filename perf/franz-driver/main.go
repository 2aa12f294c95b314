// franz-perf: the producer benchmark of perf/kp-perf.c (same flags, same
// output) over github.com/twmb/franz-go/pkg/kgo.
//
// Settings mirror the other drivers: idempotence off unless --idempotence
// (franz-go's default is on), compression none unless --compression
// (franz-go's default is snappy), 5 requests in flight per broker,
// MaxBufferedBytes(32 MiB) with a record-count limit high enough that only
// the byte limit binds. Null keys go to a sticky partition and keys are
// placed with murmur2 (franz-go's default StickyKeyPartitioner, Java's
// placement). Latency = Produce call -> promise; the send time rides in
// Record.Timestamp (which franz-go would set to time.Now() anyway).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"
)

// ---------------------------------------------------------------- histogram

const (
	subBits  = 7
	subCount = 1 << subBits
	nBuckets = (64 - subBits + 1) * subCount
)

var (
	hist                                 [nBuckets]atomic.Uint64
	okCount, failedCount, latSum, latMax atomic.Uint64
	winMax                               atomic.Uint64
	errorsPrinted                        atomic.Int64
)

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	msb := 63 - bits.LeadingZeros64(v)
	shift := msb - subBits
	return ((shift + 1) << subBits) + int((v>>uint(shift))-subCount)
}

func bucketMid(idx int) float64 {
	if idx < subCount {
		return float64(idx)
	}
	shift := (idx >> subBits) - 1
	low := uint64(subCount+(idx&(subCount-1))) << uint(shift)
	return float64(low) + float64(uint64(1)<<uint(shift))/2 - 0.5
}

func atomicMax(m *atomic.Uint64, v uint64) {
	for {
		cur := m.Load()
		if v <= cur || m.CompareAndSwap(cur, v) {
			return
		}
	}
}

func delivered(r *kgo.Record, err error) {
	if err != nil {
		failedCount.Add(1)
		if errorsPrinted.Add(1) <= 5 {
			fmt.Fprintf(os.Stderr, "delivery failed: %v\n", err)
		}
		return
	}
	lat := uint64(time.Since(r.Timestamp).Nanoseconds())
	hist[bucketOf(lat)].Add(1)
	latSum.Add(lat)
	atomicMax(&latMax, lat)
	atomicMax(&winMax, lat)
	okCount.Add(1)
}

func percentileMs(total uint64, p float64) float64 {
	if total == 0 {
		return 0
	}
	rank := uint64(p*float64(total) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i := 0; i < nBuckets; i++ {
		cum += hist[i].Load()
		if cum >= rank {
			return bucketMid(i) / 1e6
		}
	}
	return float64(latMax.Load()) / 1e6
}

// peakRSSKiB is VmHWM from /proc/self/status: ru_maxrss would include the
// pre-exec RSS of the (possibly large) parent that started us.
func peakRSSKiB(fallback int64) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				if v, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return v
				}
			}
		}
	}
	return fallback
}

// -------------------------------------------------------------------- flags

type props []string

func (p *props) String() string     { return strings.Join(*p, ",") }
func (p *props) Set(s string) error { *p = append(*p, s); return nil }

func main() {
	var (
		bootstrap   = flag.String("bootstrap", "", "host:port[,host:port...]")
		topic       = flag.String("topic", "", "topic")
		numRecords  = flag.Int64("num-records", -1, "records to send")
		recordSize  = flag.Int("record-size", -1, "value bytes")
		throughput  = flag.Float64("throughput", -1, "records/s for the process, -1 = unlimited")
		acks        = flag.String("acks", "", "0|1|all")
		lingerMs    = flag.Int("linger-ms", -1, "linger.ms")
		batchSize   = flag.Int("batch-size", -1, "batch.size (ProducerBatchMaxBytes)")
		compression = flag.String("compression", "", "none|gzip|snappy|lz4|zstd")
		keys        = flag.Int64("keys", 0, "0 = null keys, else keys drawn from N distinct")
		threads     = flag.Int("threads", 1, "goroutines sending at once")
		idempotence = flag.Bool("idempotence", false, "idempotent producer")
		txnID       = flag.String("transactional-id", "", "transactional id")
		txnDurMs    = flag.Int("transaction-duration-ms", 3000, "commit period")
		reportMs    = flag.Int("report-interval-ms", 5000, "progress line period")
		pprops      props
	)
	flag.Var(&pprops, "producer-property", "k=v (franz-go has no generic properties: only client.id and franz.apiversions.max.version are understood)")
	flag.Parse()
	if *bootstrap == "" || *topic == "" || *numRecords < 0 || *recordSize < 0 || *threads < 1 {
		fmt.Fprintln(os.Stderr, "--bootstrap, --topic, --num-records and --record-size are required")
		flag.Usage()
		os.Exit(2)
	}
	if *txnID != "" && *threads != 1 {
		fmt.Fprintln(os.Stderr, "--transactional-id needs --threads 1")
		os.Exit(2)
	}

	o := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(*bootstrap, ",")...),
		kgo.DefaultProduceTopic(*topic),
		kgo.MaxBufferedBytes(32 << 20),
		kgo.MaxBufferedRecords(10_000_000),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	}
	switch *acks {
	case "":
	case "0":
		o = append(o, kgo.RequiredAcks(kgo.NoAck()))
	case "1":
		o = append(o, kgo.RequiredAcks(kgo.LeaderAck()))
	case "all", "-1":
		o = append(o, kgo.RequiredAcks(kgo.AllISRAcks()))
	default:
		fmt.Fprintf(os.Stderr, "bad --acks %q\n", *acks)
		os.Exit(2)
	}
	if lvl := os.Getenv("FRANZ_LOG"); lvl != "" { // debug aid: FRANZ_LOG=debug|info|warn
		l := map[string]kgo.LogLevel{"debug": kgo.LogLevelDebug, "info": kgo.LogLevelInfo, "warn": kgo.LogLevelWarn}[lvl]
		o = append(o, kgo.WithLogger(kgo.BasicLogger(os.Stderr, l, nil)))
	}
	if !*idempotence && *txnID == "" {
		// Idempotent writes allow 5 in flight already; without them
		// franz-go's default is 1, so raise it to the others' 5.
		o = append(o, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5))
	}
	if *lingerMs >= 0 {
		o = append(o, kgo.ProducerLinger(time.Duration(*lingerMs)*time.Millisecond))
	}
	if *batchSize > 0 {
		o = append(o, kgo.ProducerBatchMaxBytes(int32(*batchSize)))
	}
	switch *compression {
	case "", "none":
	case "gzip":
		o = append(o, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "snappy":
		o = append(o, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "lz4":
		o = append(o, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		o = append(o, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		fmt.Fprintf(os.Stderr, "bad --compression %q\n", *compression)
		os.Exit(2)
	}
	if *txnID != "" {
		o = append(o, kgo.TransactionalID(*txnID))
	}
	for _, kv := range pprops {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case ok && k == "client.id":
			o = append(o, kgo.ClientID(v))
		case ok && k == "franz.apiversions.max.version":
			// librdkafka's mock cluster answers ApiVersions v4+ in a form
			// franz-go cannot parse; cap that one request (only) for it.
			n, err := strconv.Atoi(v)
			if err != nil {
				fmt.Fprintf(os.Stderr, "franz-perf: bad %s\n", kv)
				os.Exit(2)
			}
			vs := kversion.Stable()
			vs.SetMaxKeyVersion(18, int16(n))
			o = append(o, kgo.MaxVersions(vs))
		default:
			fmt.Fprintf(os.Stderr, "franz-perf: unsupported --producer-property %q\n", kv)
			os.Exit(2)
		}
	}

	// Payload like ProducerPerformance's: random A-Z, the same for every record.
	payload := make([]byte, *recordSize)
	r := uint64(0x2545F4914F6CDD1D)
	for i := range payload {
		r ^= r << 13
		r ^= r >> 7
		r ^= r << 17
		payload[i] = byte('A' + r%26)
	}
	var keyTab [][]byte
	for k := int64(0); k < *keys; k++ {
		keyTab = append(keyTab, []byte(fmt.Sprintf("key-%d", k)))
	}

	fmt.Fprintf(os.Stderr, "franz-go: %d records of %d bytes to %s on %s, threads %d\n",
		*numRecords, *recordSize, *topic, *bootstrap, *threads)
	cl, err := kgo.NewClient(o...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "franz-go: cannot create client: %v\n", err)
		os.Exit(2)
	}
	ctx := context.Background()
	rc := 0
	if *txnID != "" {
		if err := cl.BeginTransaction(); err != nil {
			fmt.Fprintf(os.Stderr, "begin transaction: %v\n", err)
			os.Exit(1)
		}
	}
	commit := func() error {
		if err := cl.Flush(ctx); err != nil {
			return err
		}
		return cl.EndTransaction(ctx, kgo.TryCommit)
	}

	// progress reporter
	stop := make(chan struct{})
	repDone := make(chan struct{})
	go func() {
		defer close(repDone)
		t := time.NewTicker(time.Duration(*reportMs) * time.Millisecond)
		defer t.Stop()
		lastT, lastOk, lastSum := time.Now(), uint64(0), uint64(0)
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				ok, sum, wmax := okCount.Load(), latSum.Load(), winMax.Swap(0)
				secs := now.Sub(lastT).Seconds()
				n := ok - lastOk
				rps := float64(n) / secs
				avg := 0.0
				if n > 0 {
					avg = float64(sum-lastSum) / float64(n) / 1e6
				}
				fmt.Printf("%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency.\n",
					n, rps, rps*float64(*recordSize)/(1024*1024), avg, float64(wmax)/1e6)
				lastT, lastOk, lastSum = now, ok, sum
			}
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	var txnErr error
	for t := 0; t < *threads; t++ {
		count := *numRecords / int64(*threads)
		if int64(t) < *numRecords%int64(*threads) {
			count++
		}
		wg.Add(1)
		go func(idx int, count int64) {
			defer wg.Done()
			rng := uint64(0x9E3779B97F4A7C15) * uint64(idx+1)
			var interval float64
			if *throughput > 0 {
				interval = 1e9 * float64(*threads) / *throughput
			}
			tstart := time.Now()
			txnStart := tstart
			for i := int64(0); i < count; i++ {
				if interval > 0 {
					due := tstart.Add(time.Duration(interval * float64(i)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				rec := &kgo.Record{Value: payload}
				if *keys > 0 {
					rng ^= rng << 13
					rng ^= rng >> 7
					rng ^= rng << 17
					rec.Key = keyTab[rng%uint64(*keys)]
				}
				rec.Timestamp = time.Now()
				cl.Produce(ctx, rec, delivered)
				if *txnID != "" && time.Since(txnStart) >= time.Duration(*txnDurMs)*time.Millisecond {
					if err := commit(); err == nil {
						err = cl.BeginTransaction()
						if err != nil {
							txnErr = err
							return
						}
					} else {
						txnErr = err
						return
					}
					txnStart = time.Now()
				}
			}
		}(t, count)
	}
	wg.Wait()
	if txnErr != nil {
		fmt.Fprintf(os.Stderr, "transaction: %v\n", txnErr)
		rc = 1
	}
	if *txnID != "" && txnErr == nil {
		if err := commit(); err != nil {
			fmt.Fprintf(os.Stderr, "commit: %v\n", err)
			rc = 1
		}
	}
	fctx, cancel := context.WithTimeout(ctx, 600*time.Second)
	if err := cl.Flush(fctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "flush: %v\n", err)
		rc = 1
	}
	cancel()
	elapsed := time.Since(start).Seconds()
	close(stop)
	<-repDone
	cl.Close()

	ok, failed := okCount.Load(), failedCount.Load()
	rps := float64(ok) / elapsed
	avg := 0.0
	if ok > 0 {
		avg = float64(latSum.Load()) / float64(ok) / 1e6
	}
	fmt.Printf("%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, "+
		"%.2f ms 50th, %.2f ms 95th, %.2f ms 99th, %.2f ms 99.9th.\n",
		ok, rps, rps*float64(*recordSize)/(1024*1024), avg, float64(latMax.Load())/1e6,
		percentileMs(ok, 0.50), percentileMs(ok, 0.95), percentileMs(ok, 0.99), percentileMs(ok, 0.999))
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	user := float64(ru.Utime.Sec) + float64(ru.Utime.Usec)/1e6
	sys := float64(ru.Stime.Sec) + float64(ru.Stime.Usec)/1e6
	perM := 0.0
	if ok > 0 {
		perM = (user + sys) * 1e6 / float64(ok)
	}
	fmt.Printf("client cpu %.2f s (user %.2f s, sys %.2f s), %.2f cpu-s per million records, peak rss %.1f MiB.\n",
		user+sys, user, sys, perM, float64(peakRSSKiB(ru.Maxrss))/1024)
	if failed > 0 {
		fmt.Printf("%d records failed.\n", failed)
		rc = 1
	}
	if ok+failed != uint64(*numRecords) {
		fmt.Fprintf(os.Stderr, "franz-go: %d of %d records were never reported\n", uint64(*numRecords)-ok-failed, *numRecords)
		rc = 1
	}
	os.Exit(rc)
}
