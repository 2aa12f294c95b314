//! Partition choice: explicit partitions, a custom partitioner, key hashing
//! exactly as the Java producer (murmur2) and librdkafka (`consistent`:
//! zlib CRC-32) place keys, random, round-robin, and sticky partitioning
//! for null keys.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::config::Partitioner;
use crate::error::{self, Error};

use super::accumulator::{PartitionQueue, TopicHandle};
use super::PARTITION_ANY;

/// A user partitioner: (topic, key, partition count) → partition.
pub type PartitionerFn = dyn Fn(&str, Option<&[u8]>, i32) -> i32 + Send + Sync;

/// How the producer places records (from its configuration).
pub struct Placement {
    pub strategy: Partitioner,
    /// partitioner.ignore.keys: keys do not choose the partition.
    pub ignore_keys: bool,
    pub custom: Option<Arc<PartitionerFn>>,
}

/// The partition for a record, and whether sticky partitioning chose it
/// (then the append counts it towards the sticky budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Choice {
    pub partition: i32,
    pub sticky: bool,
}

impl Choice {
    fn fixed(partition: i32) -> Choice {
        Choice { partition, sticky: false }
    }
}

impl Placement {
    /// Chooses the partition of a record for `topic` (whose partitions are
    /// `parts`): `explicit` unless it is PARTITION_ANY, else the custom
    /// partitioner, else the configured strategy.
    pub fn choose(
        &self,
        topic: &TopicHandle,
        parts: &[Arc<PartitionQueue>],
        explicit: i32,
        key: Option<&[u8]>,
    ) -> Result<Choice, Error> {
        let n = parts.len() as i32;
        if n == 0 {
            return Err(Error::new(
                error::UNKNOWN_PARTITION,
                format!("topic \"{}\" has no partitions", topic.name.name),
            ));
        }
        if explicit != PARTITION_ANY {
            if explicit >= n {
                return Err(Error::new(
                    error::UNKNOWN_PARTITION,
                    format!(
                        "partition {explicit} does not exist: topic \"{}\" has {n} partition(s)",
                        topic.name.name
                    ),
                ));
            }
            return Ok(Choice::fixed(explicit));
        }
        if let Some(f) = &self.custom {
            let p = f(&topic.name.name, key, n);
            if p < 0 || p >= n {
                return Err(Error::new(
                    error::PARTITIONER_FAILED,
                    format!(
                        "the custom partitioner returned {p} for a topic with {n} partition(s)"
                    ),
                ));
            }
            return Ok(Choice::fixed(p));
        }
        let key = if self.ignore_keys { None } else { key };
        let un = n as u32;
        Ok(match (self.strategy, key) {
            (Partitioner::Murmur2Random | Partitioner::Murmur2, Some(k)) => {
                Choice::fixed(murmur2_partition(k, un))
            }
            (Partitioner::ConsistentRandom | Partitioner::Consistent, Some(k)) => {
                Choice::fixed(crc32_partition(k, un))
            }
            (Partitioner::Consistent, None) => Choice::fixed(crc32_partition(&[], un)),
            (Partitioner::Random, _) => Choice::fixed(fastrand::i32(0..n)),
            (Partitioner::RoundRobin, _) => {
                Choice::fixed((topic.round_robin.fetch_add(1, Ordering::Relaxed) % un) as i32)
            }
            (_, None) => {
                let cur = topic.sticky.load(Ordering::Relaxed);
                let p = if cur >= 0 && cur < n {
                    cur
                } else {
                    next_sticky_partition(topic, parts, cur)
                };
                Choice { partition: p, sticky: true }
            }
        })
    }
}

/// Sticky partitioning for null keys (KIP-480, with KIP-794's byte budget):
/// the topic stays on one partition until about batch.size bytes went there
/// (counted by the partition's append), then moves to another partition
/// that has a leader. Returns the new partition.
pub fn next_sticky_partition(topic: &TopicHandle, parts: &[Arc<PartitionQueue>], cur: i32) -> i32 {
    let n = parts.len() as i32;
    let available: Vec<i32> =
        parts.iter().filter(|p| p.leader() >= 0).map(|p| p.partition).collect();
    let next = if available.len() > 1 {
        loop {
            let c = available[fastrand::usize(0..available.len())];
            if c != cur {
                break c;
            }
        }
    } else if available.len() == 1 {
        available[0]
    } else {
        fastrand::i32(0..n)
    };
    topic.sticky.store(next, Ordering::Relaxed);
    next
}

/// Kafka's murmur2 (Java `Utils.murmur2`, seed 0x9747b28c).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Partition the Java producer's default partitioner picks for a key.
pub fn murmur2_partition(key: &[u8], partitions: u32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as u32 % partitions) as i32
}

/// Partition librdkafka's `consistent` partitioner picks: crc32(key) % n.
pub fn crc32_partition(key: &[u8], partitions: u32) -> i32 {
    (crc32fast::hash(key) % partitions) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_java_vectors() {
        // Values from Apache Kafka's UtilsTest.testMurmur2.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
            (b"abc", 479470107),
        ];
        for (k, want) in cases {
            assert_eq!(murmur2(k), *want, "key {:?}", std::str::from_utf8(k));
        }
    }

    #[test]
    fn crc32_is_zlib() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_partition(b"", 7), 0);
    }

    fn placement(strategy: Partitioner) -> Placement {
        Placement { strategy, ignore_keys: false, custom: None }
    }

    fn topic(partitions: i32, leaders: bool) -> (Arc<TopicHandle>, Vec<Arc<PartitionQueue>>) {
        let t = TopicHandle::new("t");
        let parts = (0..partitions)
            .map(|i| PartitionQueue::new(t.name.clone(), i, if leaders { 1 } else { -1 }))
            .collect();
        (t, parts)
    }

    #[test]
    fn explicit_custom_and_keyed_choices() {
        let (t, parts) = topic(4, true);
        let p = placement(Partitioner::Murmur2Random);
        assert_eq!(p.choose(&t, &parts, 3, None).unwrap(), Choice::fixed(3));
        let e = p.choose(&t, &parts, 4, None).unwrap_err();
        assert_eq!(e.code, error::UNKNOWN_PARTITION);
        assert_eq!(
            p.choose(&t, &parts, PARTITION_ANY, Some(b"21")).unwrap(),
            Choice::fixed(murmur2_partition(b"21", 4))
        );
        let c = placement(Partitioner::Consistent);
        assert_eq!(c.choose(&t, &parts, PARTITION_ANY, None).unwrap(), Choice::fixed(0));
        let custom =
            Placement { custom: Some(Arc::new(|_, _, n| n)), ..placement(Partitioner::Random) };
        let e = custom.choose(&t, &parts, PARTITION_ANY, None).unwrap_err();
        assert_eq!(e.code, error::PARTITIONER_FAILED);
        let (empty, none) = topic(0, true);
        assert_eq!(
            p.choose(&empty, &none, PARTITION_ANY, None).unwrap_err().code,
            error::UNKNOWN_PARTITION
        );
    }

    #[test]
    fn round_robin_cycles_and_null_keys_stick() {
        let (t, parts) = topic(3, true);
        let rr = placement(Partitioner::RoundRobin);
        let got: Vec<i32> = (0..6)
            .map(|_| rr.choose(&t, &parts, PARTITION_ANY, Some(b"k")).unwrap().partition)
            .collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2]);
        let sticky = placement(Partitioner::Murmur2Random);
        let first = sticky.choose(&t, &parts, PARTITION_ANY, None).unwrap();
        assert!(first.sticky);
        for _ in 0..20 {
            assert_eq!(sticky.choose(&t, &parts, PARTITION_ANY, None).unwrap(), first);
        }
        let next = next_sticky_partition(&t, &parts, first.partition);
        assert_ne!(next, first.partition, "moves to another partition with a leader");
        assert_eq!(sticky.choose(&t, &parts, PARTITION_ANY, None).unwrap().partition, next);
    }

    #[test]
    fn partitions_in_range() {
        for i in 0..1000u32 {
            let k = i.to_string();
            let p = murmur2_partition(k.as_bytes(), 7);
            assert!((0..7).contains(&p));
        }
    }
}
