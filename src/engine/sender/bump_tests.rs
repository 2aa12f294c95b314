//! An epoch bump (KIP-360) restarts every partition's sequence at 0, and
//! the broker keeps no duplicate check across epochs: a batch that was sent
//! under the old epoch without a clear answer (connection lost, request
//! timed out) may already be in the log, and sent again under the new epoch
//! it would be written twice. Before a bump such a batch is resolved under
//! the old epoch: its retry is answered as a duplicate (it was written), or
//! OUT_OF_ORDER_SEQUENCE_NUMBER (it was not, nor was anything after it), or
//! it is written now.
//!
//! Uses the mock broker of `ordering_tests` (Kafka's sequence rules, epochs,
//! and per-partition faults).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::engine::{Producer, Record, Token};

use super::ordering_tests::{no_callback, producer_with, start_mock, Fault, Mock, Reports};

fn send(p: &Producer, partition: i32, tag: usize) {
    let value = [b'v'; 100];
    let rec = Record {
        topic: "t",
        partition,
        key: None,
        value: Some(&value),
        headers: &[],
        timestamp_ms: 0,
    };
    p.send(&rec, Token::Callback { cb: no_callback, ctx: tag }).unwrap();
}

fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ready() {
        assert!(t.elapsed() < Duration::from_secs(10), "waited 10 s for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn report(reports: &Reports, tag: usize) -> Option<(usize, i32, i32, i64)> {
    reports.lock().unwrap().iter().find(|r| r.0 == tag).copied()
}

/// A producer on the mock whose retries wait `backoff_ms`, no more, no less
/// (apart from the jitter).
fn producer_retrying_after(mock: &Mock, reports: &Reports, backoff_ms: &str) -> Producer {
    producer_with(
        mock.port,
        reports.clone(),
        &[("retry.backoff.ms", backoff_ms), ("retry.backoff.max.ms", backoff_ms)],
    )
}

fn set_faults(mock: &Mock, partition: i32, faults: &[Fault]) {
    mock.faults.lock().unwrap().insert(partition, faults.iter().copied().collect::<VecDeque<_>>());
}

/// Partition 1's batch is written but its answer is lost (the connection
/// drops); partition 0's batch is then refused for good, which asks for an
/// epoch bump while partition 1's batch waits for its retry. Re-sequenced
/// under the new epoch it would be written a second time.
#[test]
fn a_batch_written_without_an_answer_is_not_written_again_after_an_epoch_bump() {
    let (mock, _rt) = start_mock(2);
    set_faults(&mock, 1, &[Fault::WriteThenHangUp]);
    set_faults(&mock, 0, &[Fault::Refuse(87)]); // INVALID_RECORD: not retriable
    let reports: Reports = Arc::default();
    // The retry of the unanswered batch comes ~1.5 s later: long after the
    // refused batch's report and the bump (the mock's InitProducerId takes
    // 100 ms).
    let p = producer_retrying_after(&mock, &reports, "1500");
    send(&p, 1, 0);
    wait_until("partition 1's batch in the log", || {
        mock.log.lock().unwrap().next_offset.get(&1) == Some(&1)
    });
    // Let the producer see the hang-up (at once on loopback), so the next
    // request goes on a new connection and is refused, not lost with the old
    // one and retried only after the backoff.
    std::thread::sleep(Duration::from_millis(200));
    send(&p, 0, 1);
    wait_until("the refused record's report", || report(&reports, 1).is_some());
    let refused = report(&reports, 1).unwrap();
    assert_eq!(refused.2, 87, "partition 0's record: {refused:?}");
    // The refused sequenced batch asks for a bump, which partition 1's
    // unresolved batch does not hold up: partition 0 moves to the new epoch
    // while partition 1 waits for its retry (~1.5 s after the hang-up).
    wait_until("the epoch bump", || {
        mock.log.lock().unwrap().epochs_given.iter().any(|&(_, epoch)| epoch == 1)
    });
    send(&p, 0, 3);
    wait_until("partition 0's record after the bump", || report(&reports, 3).is_some());
    assert_eq!(report(&reports, 3).map(|r| r.2), Some(0));
    let arrived = mock.log.lock().unwrap().arrived.clone();
    assert_eq!(
        arrived,
        [(1, 0, 0), (0, 1, 0)],
        "(partition, epoch, sequence) in arrival order: partition 0's new record under the \
         new epoch, before partition 1's retry"
    );
    // A record after the bump goes to partition 1 under the new epoch once
    // its unanswered batch is resolved.
    send(&p, 1, 2);
    assert!(p.flush(Duration::from_secs(10)).is_ok(), "flush timed out");
    let _ = p.close(Duration::from_secs(1));

    let written = mock.log.lock().unwrap().appended.get(&1).cloned().unwrap_or_default();
    let epochs: Vec<i16> = written.iter().map(|w| w.1).collect();
    assert_eq!(
        epochs,
        [0, 1],
        "partition 1 should hold the first record once (epoch 0) and the record sent after the \
         bump (epoch 1); (producer id, epoch, sequence) appended: {written:?}"
    );
    let delivered = report(&reports, 0).expect("a report for partition 1's record");
    assert_eq!(
        (delivered.2, delivered.3),
        (0, 0),
        "partition 1's record is reported delivered at the offset it was written at"
    );
    assert_eq!(report(&reports, 2).map(|r| (r.2, r.3)), Some((0, 1)));
    assert_eq!(report(&reports, 3).map(|r| r.2), Some(0));
}

/// Partition 0: one batch acknowledged, then two more in flight on one
/// connection that drops before either is written; the first of them is
/// then refused for good (bump wanted). The second is unresolved: its retry
/// under the old epoch is answered OUT_OF_ORDER_SEQUENCE_NUMBER (the broker
/// never got it), so it is not in the log and must be delivered under the
/// new epoch, not left waiting until delivery.timeout.ms.
#[test]
fn a_batch_the_broker_never_got_is_delivered_after_the_epoch_bump() {
    let (mock, _rt) = start_mock(1);
    set_faults(&mock, 0, &[Fault::Write, Fault::HangUp, Fault::Refuse(87)]);
    let reports: Reports = Arc::default();
    let p = producer_retrying_after(&mock, &reports, "50");
    send(&p, 0, 0);
    wait_until("the first record's report", || report(&reports, 0).is_some());
    // Two batches, two requests: the second goes while the mock holds the
    // first (100 ms before it hangs up).
    send(&p, 0, 1);
    wait_until("the second record's request", || mock.requests.lock().unwrap().len() >= 2);
    send(&p, 0, 2);
    let t = Instant::now();
    assert!(p.flush(Duration::from_secs(10)).is_ok(), "flush timed out");
    let flushed_in = t.elapsed();
    let _ = p.close(Duration::from_secs(1));

    let reports = reports.lock().unwrap().clone();
    assert_eq!(reports.len(), 3, "one report per record: {reports:?}");
    let by_tag = |tag: usize| reports.iter().find(|r| r.0 == tag).copied().unwrap();
    assert_eq!(by_tag(0).2, 0);
    assert_eq!(by_tag(1).2, 87, "the refused record: {:?}", by_tag(1));
    assert_eq!(by_tag(2).2, 0, "the record behind it: {:?}", by_tag(2));
    let log = mock.log.lock().unwrap();
    let written = log.appended.get(&0).cloned().unwrap_or_default();
    assert_eq!(written.len(), 2, "(producer id, epoch, sequence) appended: {written:?}");
    assert_eq!(written[1].1, 1, "the last record went under the bumped epoch: {written:?}");
    // delivery.timeout.ms is 4 s in these tests: an unresolved batch would
    // have waited that long.
    assert!(flushed_in < Duration::from_secs(3), "flush took {flushed_in:?}");
}
