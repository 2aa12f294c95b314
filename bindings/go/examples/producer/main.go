// Command producer sends records with the Go binding of kp: asynchronously
// with a promise, then a batch with ProduceSync, then flushes and closes.
//
//	go run -tags kp_repo ./examples/producer -bootstrap 127.0.0.1:9092 -topic demo -n 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sync/atomic"
	"time"

	"kp.dev/kp"
)

func main() {
	bootstrap := flag.String("bootstrap", "127.0.0.1:9092", "bootstrap.servers")
	topic := flag.String("topic", "demo", "topic to write to")
	n := flag.Int("n", 1000, "records to send asynchronously (and as many in ProduceSync batches)")
	flag.Parse()

	p, err := kp.NewProducer(kp.Config{"bootstrap.servers": *bootstrap, "linger.ms": "5"})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var delivered, failed atomic.Int64
	for i := 0; i < *n; i++ {
		r := &kp.Record{
			Topic:   *topic,
			Key:     []byte(fmt.Sprintf("key-%d", i%10)),
			Value:   []byte(fmt.Sprintf("async %d", i)),
			Headers: []kp.RecordHeader{{Key: "source", Value: []byte("examples/producer")}},
		}
		p.Produce(ctx, r, func(r *kp.Record, err error) {
			if err != nil {
				failed.Add(1)
				fmt.Fprintln(os.Stderr, "delivery failed:", err)
				return
			}
			delivered.Add(1)
		})
	}

	batch := make([]*kp.Record, 0, 100)
	for i := 0; i < *n; i++ {
		batch = append(batch, &kp.Record{Topic: *topic, Value: []byte(fmt.Sprintf("sync %d", i))})
		if len(batch) == cap(batch) || i == *n-1 {
			for _, res := range p.ProduceSync(ctx, batch...) {
				if res.Err != nil {
					failed.Add(1)
					fmt.Fprintln(os.Stderr, "delivery failed:", res.Err)
				} else {
					delivered.Add(1)
				}
			}
			batch = batch[:0]
		}
	}

	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	m, _ := p.Metrics()
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("delivered %d, failed %d (%d batches, %d produce requests)\n",
		delivered.Load(), failed.Load(), m.BatchesSent, m.ProduceRequests)
	if failed.Load() > 0 {
		os.Exit(1)
	}
}
