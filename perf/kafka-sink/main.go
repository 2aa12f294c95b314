// kafka-sink: a fast, in-memory Kafka "broker" for measuring producer
// clients rather than brokers. It speaks just enough of the protocol for a
// producer: ApiVersions, Metadata, InitProducerId and Produce (acks 0/1/all
// are all answered as soon as the request is read). Record batches are not
// decoded, checked or stored: each partition only advances its offset by
// the batch's record count (lastOffsetDelta+1). Encoding/decoding of the
// protocol messages is franz-go's kmsg package.
//
//	kafka-sink [--brokers N] [--partitions P] [--topic NAME[:P]]... [--bootstrap-file F]
//
// Listens on 127.0.0.1 (random ports, one per broker; partition p is led by
// broker p%N), prints the bootstrap list on stdout (and to --bootstrap-file),
// and runs until SIGTERM/SIGINT. Unknown topics are created on first
// Metadata request with --partitions partitions.
//
// Why not librdkafka's mock cluster (perf/mock-sink.c)? Its ApiVersions
// answers to flexible versions (v3+) are not parseable by the Java client
// (which then throttles the connection for ~20 minutes) or by franz-go, so
// it can only benchmark kp and librdkafka.
package main

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/twmb/franz-go/pkg/kmsg"
)

type partition struct {
	next atomic.Int64 // next offset
}

type topic struct {
	name  string
	id    [16]byte
	parts []*partition
}

type sink struct {
	mu          sync.RWMutex
	topics      map[string]*topic
	nodes       []int32 // node ids
	ports       []int32
	defaultPart int
	pid         atomic.Int64
	requests    atomic.Int64
	records     atomic.Int64
	batches     atomic.Int64
	batchBytes  atomic.Int64
}

// Advertised versions. Produce stops at v12 (v13 names topics by id).
// Fetch and FindCoordinator are advertised but never served: librdkafka only
// uses the v2 record batch format (MsgVer2) when the broker lists Fetch v4+
// as well, and only compresses with lz4 when it lists FindCoordinator
// (rdkafka_feature.c: RD_KAFKA_FEATURE_LZ4 depends on it).
var versions = map[int16][2]int16{
	0:  {3, 12}, // Produce
	1:  {4, 12}, // Fetch (advertised only)
	3:  {0, 12}, // Metadata
	10: {0, 4},  // FindCoordinator (advertised only)
	18: {0, 4},  // ApiVersions
	22: {0, 5},  // InitProducerId
}

func (s *sink) getTopic(name string, create bool) *topic {
	s.mu.RLock()
	t := s.topics[name]
	s.mu.RUnlock()
	if t != nil || !create {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.topics[name]; t == nil {
		t = newTopic(name, s.defaultPart)
		s.topics[name] = t
	}
	return t
}

func newTopic(name string, parts int) *topic {
	t := &topic{name: name}
	rand.Read(t.id[:])
	for i := 0; i < parts; i++ {
		t.parts = append(t.parts, &partition{})
	}
	return t
}

func (s *sink) leader(p int) int32 { return s.nodes[p%len(s.nodes)] }

func main() {
	brokers := flag.Int("brokers", 1, "number of brokers (listeners)")
	parts := flag.Int("partitions", 6, "partitions of auto-created topics")
	bsFile := flag.String("bootstrap-file", "", "also write the bootstrap list here")
	var topicFlags []string
	flag.Func("topic", "NAME[:PARTITIONS] to create up front (repeatable)", func(v string) error {
		topicFlags = append(topicFlags, v)
		return nil
	})
	flag.Parse()
	if *brokers < 1 || *parts < 1 {
		fmt.Fprintln(os.Stderr, "--brokers and --partitions must be >= 1")
		os.Exit(2)
	}
	s := &sink{topics: map[string]*topic{}, defaultPart: *parts}
	for _, tf := range topicFlags {
		name, ps, ok := strings.Cut(tf, ":")
		n := *parts
		if ok {
			var err error
			if n, err = strconv.Atoi(ps); err != nil || n < 1 {
				fmt.Fprintf(os.Stderr, "bad --topic %q\n", tf)
				os.Exit(2)
			}
		}
		s.topics[name] = newTopic(name, n)
	}
	var lns []net.Listener
	var addrs []string
	for i := 0; i < *brokers; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, "listen:", err)
			os.Exit(1)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		lns = append(lns, ln)
		s.nodes = append(s.nodes, int32(i+1))
		s.ports = append(s.ports, int32(port))
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", port))
	}
	for i, ln := range lns {
		go func(ln net.Listener, node int) {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go s.serve(c, node)
			}
		}(ln, i)
	}
	bs := strings.Join(addrs, ",")
	fmt.Println(bs)
	if *bsFile != "" {
		tmp := *bsFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(bs+"\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.Rename(tmp, *bsFile); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "kafka-sink: %d broker(s) at %s\n", *brokers, bs)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Fprintf(os.Stderr, "kafka-sink: %d requests, %d records in %d batches (%d bytes as sent); cpu %.2f s user + %.2f s sys\n",
		s.requests.Load(), s.records.Load(), s.batches.Load(), s.batchBytes.Load(),
		float64(ru.Utime.Sec)+float64(ru.Utime.Usec)/1e6, float64(ru.Stime.Sec)+float64(ru.Stime.Usec)/1e6)
}

// serve handles one client connection on broker index node: requests are
// answered in order (clients pipeline up to max.in.flight of them).
func (s *sink) serve(c net.Conn, node int) {
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	r := bufio.NewReaderSize(c, 1<<20)
	w := bufio.NewWriterSize(c, 256<<10)
	var sizeBuf [4]byte
	var body, out []byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(sizeBuf[:]))
		if n < 8 || n > 256<<20 {
			return
		}
		if cap(body) < n {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		out = out[:0]
		var err error
		out, err = s.handle(body, node, out)
		if err != nil {
			fmt.Fprintf(os.Stderr, "kafka-sink: %v; closing connection\n", err)
			return
		}
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return
			}
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

var errShort = errors.New("short request header")

// handle parses one request and appends the size-prefixed response to out
// (nothing for acks=0 produce requests).
func (s *sink) handle(b []byte, node int, out []byte) ([]byte, error) {
	s.requests.Add(1)
	key := int16(binary.BigEndian.Uint16(b[0:]))
	ver := int16(binary.BigEndian.Uint16(b[2:]))
	corr := binary.BigEndian.Uint32(b[4:])
	off := 8
	if len(b) < off+2 {
		return out, errShort
	}
	if cl := int16(binary.BigEndian.Uint16(b[off:])); cl > 0 {
		off += int(cl)
	}
	off += 2
	if off > len(b) {
		return out, errShort
	}
	rng, known := versions[key]
	if key == 18 && (ver < rng[0] || ver > rng[1]) {
		// Unsupported ApiVersions version: answer in v0 form, as brokers do.
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.Version = 0
		resp.ErrorCode = 35
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: rng[0], MaxVersion: rng[1]}}
		return frame(out, corr, false, resp), nil
	}
	if !known || key == 1 || key == 10 || ver < rng[0] || ver > rng[1] {
		return out, fmt.Errorf("unsupported request key %d v%d", key, ver)
	}
	req := kmsg.RequestForKey(key)
	req.SetVersion(ver)
	if req.IsFlexible() {
		var err error
		if off, err = skipTags(b, off); err != nil {
			return out, err
		}
	}
	if err := req.ReadFrom(b[off:]); err != nil {
		return out, fmt.Errorf("parse key %d v%d: %w", key, ver, err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(ver)
	switch rq := req.(type) {
	case *kmsg.ApiVersionsRequest:
		rs := resp.(*kmsg.ApiVersionsResponse)
		for k, v := range versions {
			rs.ApiKeys = append(rs.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: v[0], MaxVersion: v[1]})
		}
		return frame(out, corr, false, rs), nil
	case *kmsg.MetadataRequest:
		s.metadata(rq, resp.(*kmsg.MetadataResponse))
	case *kmsg.InitProducerIDRequest:
		rs := resp.(*kmsg.InitProducerIDResponse)
		rs.ProducerID = s.pid.Add(1) + 1000
		rs.ProducerEpoch = 0
	case *kmsg.ProduceRequest:
		s.produce(rq, resp.(*kmsg.ProduceResponse), node)
		if rq.Acks == 0 {
			return out, nil
		}
	}
	return frame(out, corr, resp.IsFlexible(), resp), nil
}

func skipTags(b []byte, off int) (int, error) {
	n, w := binary.Uvarint(b[off:])
	if w <= 0 {
		return off, errShort
	}
	off += w
	for i := uint64(0); i < n; i++ {
		_, w = binary.Uvarint(b[off:]) // tag
		if w <= 0 {
			return off, errShort
		}
		off += w
		sz, w2 := binary.Uvarint(b[off:])
		if w2 <= 0 {
			return off, errShort
		}
		off += w2 + int(sz)
	}
	return off, nil
}

func frame(out []byte, corr uint32, flexHeader bool, resp kmsg.Response) []byte {
	start := len(out)
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, corr)
	if flexHeader {
		out = append(out, 0) // no tagged fields
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out
}

func (s *sink) metadata(rq *kmsg.MetadataRequest, rs *kmsg.MetadataResponse) {
	for i, id := range s.nodes {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID = id
		b.Host = "127.0.0.1"
		b.Port = s.ports[i]
		rs.Brokers = append(rs.Brokers, b)
	}
	cid := "kp-bench-sink"
	rs.ClusterID = &cid
	rs.ControllerID = s.nodes[0]
	var ts []*topic
	if rq.Topics == nil {
		s.mu.RLock()
		for _, t := range s.topics {
			ts = append(ts, t)
		}
		s.mu.RUnlock()
	} else {
		for _, rt := range rq.Topics {
			if rt.Topic == nil {
				continue
			}
			ts = append(ts, s.getTopic(*rt.Topic, true))
		}
	}
	for _, t := range ts {
		mt := kmsg.NewMetadataResponseTopic()
		name := t.name
		mt.Topic = &name
		mt.TopicID = t.id
		for p := range t.parts {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition = int32(p)
			mp.Leader = s.leader(p)
			mp.LeaderEpoch = 0
			mp.Replicas = []int32{mp.Leader}
			mp.ISR = []int32{mp.Leader}
			mt.Partitions = append(mt.Partitions, mp)
		}
		rs.Topics = append(rs.Topics, mt)
	}
}

func (s *sink) produce(rq *kmsg.ProduceRequest, rs *kmsg.ProduceResponse, node int) {
	for _, rt := range rq.Topics {
		t := s.getTopic(rt.Topic, false)
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LogAppendTime = -1
			switch {
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.parts):
				sp.ErrorCode = 3 // UNKNOWN_TOPIC_OR_PARTITION
			case s.leader(int(rp.Partition)) != s.nodes[node]:
				sp.ErrorCode = 6 // NOT_LEADER_OR_FOLLOWER
			default:
				n, nb := countRecords(rp.Records)
				if n < 0 {
					sp.ErrorCode = 2 // CORRUPT_MESSAGE
					break
				}
				sp.BaseOffset = t.parts[rp.Partition].next.Add(n) - n
				s.records.Add(n)
				s.batches.Add(nb)
				s.batchBytes.Add(int64(len(rp.Records)))
			}
			st.Partitions = append(st.Partitions, sp)
		}
		rs.Topics = append(rs.Topics, st)
	}
}

// countRecords walks the v2 record batches in b and returns the sum of
// lastOffsetDelta+1 and the number of batches (-1, 0 when malformed).
func countRecords(b []byte) (int64, int64) {
	var n, batches int64
	for len(b) > 0 {
		if len(b) < 61 {
			return -1, 0
		}
		l := int(int32(binary.BigEndian.Uint32(b[8:])))
		if b[16] != 2 || l < 49 || 12+l > len(b) {
			return -1, 0
		}
		n += int64(int32(binary.BigEndian.Uint32(b[23:]))) + 1
		batches++
		b = b[12+l:]
	}
	return n, batches
}
