// Command confluent-perf is the W1 shape of perf/ over confluent-kafka-go v2
// (its bundled static librdkafka), for the Go binding's comparison in
// BENCHMARKS.md: one goroutine calls Produce (delivery reports read from
// Events() by a second goroutine), then Flush.
// It prints throughput and the process's CPU per million records.
package main

import (
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func main() {
	bootstrap := flag.String("bootstrap", "", "host:port")
	topic := flag.String("topic", "", "topic")
	n := flag.Int("num-records", 1000000, "records to send")
	size := flag.Int("record-size", 100, "value bytes")
	acks := flag.String("acks", "1", "acks")
	linger := flag.Int("linger-ms", 5, "linger.ms")
	batch := flag.Int("batch-size", 65536, "batch.size")
	flag.Parse()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": *bootstrap, "acks": *acks, "linger.ms": *linger, "batch.size": *batch,
		"enable.idempotence": false, "compression.type": "none", "queue.buffering.max.kbytes": 32 << 10,
		"queue.buffering.max.messages": 10000000, "max.in.flight.requests.per.connection": 5,
		"partitioner": "murmur2_random", "go.batch.producer": false,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var ok, failed atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range p.Events() {
			if m, isMsg := e.(*kafka.Message); isMsg {
				if m.TopicPartition.Error != nil {
					failed.Add(1)
				} else {
					ok.Add(1)
				}
			}
		}
	}()
	value := make([]byte, *size)
	for i := range value {
		value[i] = byte('A' + i%26)
	}
	start := time.Now()
	for i := 0; i < *n; i++ {
		m := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: topic, Partition: kafka.PartitionAny}, Value: value}
		for {
			err := p.Produce(m, nil)
			if err == nil {
				break
			}
			if e, isKafka := err.(kafka.Error); isKafka && e.Code() == kafka.ErrQueueFull {
				p.Flush(10)
				continue
			}
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for p.Flush(1000) > 0 {
	}
	elapsed := time.Since(start).Seconds()
	p.Close()
	<-done
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	fmt.Printf("%d records sent, %.1f records/sec (%.2f MB/sec).\n", ok.Load(), float64(ok.Load())/elapsed,
		float64(ok.Load())*float64(*size)/elapsed/(1<<20))
	fmt.Printf("client cpu %.2f s, %.2f cpu-s per million records, peak rss %.1f MiB, %d failed.\n",
		cpu, cpu*1e6/float64(*n), float64(ru.Maxrss)/1024, failed.Load())
}
