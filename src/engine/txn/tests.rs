//! The transaction state machine without a broker: which calls each state
//! allows, and how coordinator error codes are classified.

use super::*;

fn manager_in(state: TxnState) -> TxnManager {
    let t = TxnManager::new("tx".into(), 60_000);
    t.set_state(state);
    t
}

fn err(code: i32) -> Error {
    Error::new(code, "boom")
}

#[test]
fn begin_needs_init_and_no_open_transaction() {
    let t = manager_in(TxnState::Uninitialized);
    let e = t.begin().unwrap_err();
    assert_eq!(e.error.code, error::STATE);
    assert!(!e.retriable && !e.fatal && !e.requires_abort);
    assert_eq!(t.protocol_version(), 0);

    let t = manager_in(TxnState::Ready);
    t.begin().unwrap();
    assert_eq!(t.state(), TxnState::InTransaction);
    assert_eq!(t.protocol_version(), 1);
    assert!(t.in_transaction().is_ok());
    assert_eq!(t.begin().unwrap_err().error.code, error::STATE, "already in a transaction");
}

#[test]
fn commit_and_abort_transitions() {
    let t = manager_in(TxnState::InTransaction);
    t.start_commit().unwrap();
    assert_eq!(t.state(), TxnState::Committing);
    t.start_commit().unwrap(); // a retried commit
    t.check_still_committable().unwrap();
    t.start_abort().unwrap();
    assert_eq!(t.state(), TxnState::Aborting);
    assert_eq!(t.start_commit().unwrap_err().error.code, error::STATE);

    let t = manager_in(TxnState::Ready);
    assert_eq!(t.start_commit().unwrap_err().error.code, error::STATE);
    assert_eq!(t.start_abort().unwrap_err().error.code, error::STATE);
}

#[test]
fn failed_batch_makes_the_transaction_abortable() {
    let t = manager_in(TxnState::InTransaction);
    t.batch_failed(&err(error::OUT_OF_ORDER_SEQUENCE_NUMBER));
    assert!(matches!(t.state(), TxnState::Abortable(_)));
    assert!(t.bump_after_abort.load(Ordering::Acquire), "sequence state broke: bump after abort");
    let e = t.start_commit().unwrap_err();
    assert!(e.requires_abort && !e.fatal);
    assert_eq!(t.in_transaction().unwrap_err().code, error::STATE);
    assert!(matches!(t.begin().unwrap_err(), TxnError { requires_abort: true, .. }));
    t.start_abort().unwrap();
    assert_eq!(t.state(), TxnState::Aborting);
    t.ended();
    assert_eq!(t.state(), TxnState::Ready);

    // During commit's flush.
    let t = manager_in(TxnState::Committing);
    t.batch_failed(&err(error::REQUEST_TIMED_OUT));
    assert!(t.check_still_committable().unwrap_err().requires_abort);
    assert!(!t.bump_after_abort.load(Ordering::Acquire));

    // Outside a transaction a failure changes nothing.
    let t = manager_in(TxnState::Ready);
    t.batch_failed(&err(error::REQUEST_TIMED_OUT));
    assert_eq!(t.state(), TxnState::Ready);
}

#[test]
fn fatal_is_final() {
    let t = manager_in(TxnState::Fatal(err(error::PRODUCER_FENCED)));
    assert!(t.begin().unwrap_err().fatal);
    assert!(t.start_commit().unwrap_err().fatal);
    assert!(t.start_abort().unwrap_err().fatal);
    assert_eq!(t.in_transaction().unwrap_err().code, error::FATAL);
    t.batch_failed(&err(error::REQUEST_TIMED_OUT));
    assert!(matches!(t.state(), TxnState::Fatal(_)));
}

#[test]
fn coordinator_errors_are_classified() {
    let t = manager_in(TxnState::InTransaction);
    assert!(t.classify(0, "x", false).is_ok());
    for code in [
        error::NOT_COORDINATOR,
        error::COORDINATOR_NOT_AVAILABLE,
        error::COORDINATOR_LOAD_IN_PROGRESS,
        error::CONCURRENT_TRANSACTIONS,
        error::REQUEST_TIMED_OUT,
    ] {
        assert!(t.classify(code, "x", false).unwrap_err().retriable, "{code}");
    }
    for code in [
        error::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        error::INVALID_PRODUCER_ID_MAPPING,
        error::UNSUPPORTED_VERSION,
    ] {
        assert!(t.classify(code, "x", false).unwrap_err().fatal, "{code}");
    }
    // PRODUCER_FENCED: final from InitProducerId, abortable (bump after
    // the abort tells a real fence apart) elsewhere.
    let e = t.classify(error::PRODUCER_FENCED, "InitProducerId", true).unwrap_err();
    assert!(e.fatal && e.error.message.contains("fenced"));
    assert!(!t.bump_after_abort.load(Ordering::Acquire));
    let e = t.classify(error::PRODUCER_FENCED, "EndTxn", false).unwrap_err();
    assert!(e.requires_abort);
    assert!(t.bump_after_abort.load(Ordering::Acquire));
    for code in [error::TRANSACTION_ABORTABLE, error::INVALID_TXN_STATE] {
        assert!(t.classify(code, "x", false).unwrap_err().requires_abort, "{code}");
    }
    // classify itself leaves the state alone (the caller applies it).
    assert_eq!(t.state(), TxnState::InTransaction);
}

#[test]
fn v1_partitions_wait_for_add_partitions_v2_enrol_at_once() {
    let t = manager_in(TxnState::InTransaction);
    let topic: Arc<str> = Arc::from("t");
    assert!(!t.partition_ready(&topic, 0), "v1: AddPartitionsToTxn first");
    assert!(t.has_partitions_to_add());
    assert!(!t.enrolled());
    assert_eq!(t.produce_version_cap(), 11);
    assert_eq!(t.end_txn_version_cap(), 4);
    t.tv2.store(true, Ordering::Release);
    assert!(t.partition_ready(&topic, 1), "v2: the produce request enrols it");
    assert!(t.enrolled());
    assert_eq!(t.protocol_version(), 2);
    assert_eq!(t.produce_version_cap(), 12);
    assert_eq!(t.end_txn_version_cap(), 5);
    t.ended();
    assert!(!t.enrolled() && !t.has_partitions_to_add());
}
