//! Criterion-free micro-benchmarks of the protocol hot path.
//! Run: `cargo bench --bench protocol` (add `-- quick` for a short run).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kp::protocol::api::{encode_request, encode_request_vectored};
use kp::protocol::compression::Compression;
use kp::protocol::messages::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kp::protocol::record_batch::{BatchBuilder, ProducerStamp, RecordHeader, RecordLayout};

fn bench<T>(name: &str, budget: Duration, bytes_per_iter: usize, mut f: impl FnMut() -> T) {
    // warm up
    for _ in 0..3 {
        black_box(f());
    }
    let start = Instant::now();
    let mut iters = 0u64;
    while start.elapsed() < budget {
        black_box(f());
        iters += 1;
    }
    let per = start.elapsed() / iters as u32;
    let mbps = bytes_per_iter as f64 * iters as f64 / start.elapsed().as_secs_f64() / 1e6;
    println!("{name:<44} {per:>12.2?}/iter  {mbps:>9.1} MB/s  ({iters} iters)");
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let budget = Duration::from_millis(if quick { 200 } else { 1500 });
    let value = vec![b'x'; 100];
    let key = b"key-0000123";
    let headers = [RecordHeader { key: b"trace", value: Some(b"abc") }];
    const N: usize = 1000;

    let build = |with_headers: bool| {
        let mut b = BatchBuilder::with_capacity(N * 130 + 61);
        for i in 0..N {
            let h: &[RecordHeader<'_>] = if with_headers { &headers } else { &[] };
            b.append(1_700_000_000_000 + i as i64, Some(key), Some(&value), h);
        }
        b
    };
    let raw_size = build(false).size_in_bytes();
    bench("append 1000 x 100B records", budget, raw_size, || build(false));
    bench("append 1000 x 100B records + 1 header", budget, raw_size, || build(true));
    // What kp_send does per record: size it once, then append within batch.size.
    bench("layout + try_append 1000 x 100B (send path)", budget, raw_size, || {
        let mut b = BatchBuilder::with_capacity(N * 130 + 61);
        for i in 0..N {
            let layout = RecordLayout::new(Some(key), Some(&value), &[]);
            b.try_append(
                usize::MAX,
                1_700_000_000_000 + i as i64,
                Some(key),
                Some(&value),
                &[],
                &layout,
            );
        }
        b
    });
    bench("record_size x1000", budget, raw_size, || {
        let b = BatchBuilder::with_capacity(0);
        let mut n = 0;
        for i in 0..N {
            n += b.record_size(
                black_box(i as i64),
                black_box(Some(&key[..])),
                black_box(Some(&value[..])),
                black_box(&headers),
            );
        }
        n
    });
    for c in [
        Compression::None,
        Compression::Gzip(None),
        Compression::Snappy,
        Compression::Lz4(None),
        Compression::Zstd(None),
    ] {
        let name = format!("build+seal 1000 records {}", c.name());
        bench(&name, budget, raw_size, || build(false).seal(c, ProducerStamp::NONE).unwrap());
    }
    let batch = build(false).seal(Compression::None, ProducerStamp::NONE).unwrap().bytes;
    let req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "bench-topic".into(),
            partition_data: (0..8)
                .map(|p| PartitionProduceData { index: p, records: batch.clone() })
                .collect(),
        }],
    };
    let total = batch.len() * 8;
    let mut out = BytesMut::with_capacity(total + 1024);
    bench("encode_request produce 8 x 130KB (copy)", budget, total, || {
        out.clear();
        encode_request(&mut out, &req, 12, 1, "bench");
        out.len()
    });
    bench("encode_request_vectored produce 8 x 130KB", budget, total, || {
        encode_request_vectored(&req, 12, 1, "bench").len()
    });
}
