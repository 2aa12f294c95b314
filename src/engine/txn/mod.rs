//! Transactions: the state machine (begin, commit, abort and the error
//! classes: retriable, abortable, fatal) lives here; the coordinator calls
//! (FindCoordinator, InitProducerId with a transactional.id,
//! AddPartitionsToTxn for v1 or implicit enrolment by Produce v12 for v2
//! (KIP-890), EndTxn, AddOffsetsToTxn, TxnOffsetCommit) in `coordinator`.
//!
//! ```text
//! Uninitialized --init--> Ready --begin--> InTransaction --commit--> Committing --EndTxn--> Ready
//!                                              |   \--abort--> Aborting --EndTxn(+bump)--> Ready
//!                          a record or call fails: Abortable(e) --abort--> Aborting
//!                          fenced / unauthorized: Fatal(e) (final)
//! ```

mod coordinator;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{self, Error};

use super::conn::Broker;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnState {
    Uninitialized,
    Ready,
    InTransaction,
    Committing,
    Aborting,
    /// A record or call of the transaction failed: only abort is allowed.
    Abortable(Error),
    Fatal(Error),
}

/// The outcome of a transactional call, with its class (at most one of the
/// three flags is set; the constructors are the only way to make one).
#[derive(Clone, Debug)]
pub struct TxnError {
    pub error: Error,
    pub retriable: bool,
    pub fatal: bool,
    pub requires_abort: bool,
}

impl TxnError {
    pub(crate) fn retriable(e: Error) -> TxnError {
        TxnError { error: e, retriable: true, fatal: false, requires_abort: false }
    }
    pub(crate) fn state(msg: impl Into<String>) -> TxnError {
        TxnError {
            error: Error::new(error::STATE, msg),
            retriable: false,
            fatal: false,
            requires_abort: false,
        }
    }
    pub(crate) fn abortable(e: Error) -> TxnError {
        TxnError { error: e, retriable: false, fatal: false, requires_abort: true }
    }
    pub(crate) fn fatal(e: Error) -> TxnError {
        TxnError { error: e, retriable: false, fatal: true, requires_abort: false }
    }
}

/// A topic-partition of the transaction.
pub type TxnPartition = (Arc<str>, i32);

pub struct TxnManager {
    pub id: String,
    pub timeout_ms: i32,
    state: Mutex<TxnState>,
    /// Transactions v2 (KIP-890) negotiated at init.
    tv2: AtomicBool,
    coordinator: Mutex<Option<Arc<Broker>>>,
    /// Partitions in the current transaction (v1: added by
    /// AddPartitionsToTxn; v2: enrolled by a produce request).
    added: Mutex<HashSet<TxnPartition>>,
    /// v1: partitions waiting for AddPartitionsToTxn.
    to_add: Mutex<HashSet<TxnPartition>>,
    /// An AddPartitionsToTxn task is running.
    adding: AtomicBool,
    offsets_added: AtomicBool,
    /// After an abort, bump the epoch (the producer's sequence state broke).
    bump_after_abort: AtomicBool,
}

/// Errors after which the producer's epoch must be bumped once the
/// transaction is aborted (KIP-360).
fn breaks_sequence_state(code: i32) -> bool {
    matches!(
        code,
        error::INVALID_PRODUCER_EPOCH
            | error::PRODUCER_FENCED
            | error::OUT_OF_ORDER_SEQUENCE_NUMBER
            | error::UNKNOWN_PRODUCER_ID
    )
}

impl TxnManager {
    pub fn new(id: String, timeout_ms: i32) -> TxnManager {
        TxnManager {
            id,
            timeout_ms,
            state: Mutex::new(TxnState::Uninitialized),
            tv2: AtomicBool::new(false),
            coordinator: Mutex::new(None),
            added: Mutex::new(HashSet::new()),
            to_add: Mutex::new(HashSet::new()),
            adding: AtomicBool::new(false),
            offsets_added: AtomicBool::new(false),
            bump_after_abort: AtomicBool::new(false),
        }
    }

    pub fn state(&self) -> TxnState {
        self.state.lock().clone()
    }

    fn set_state(&self, s: TxnState) {
        *self.state.lock() = s;
    }

    /// 2 (KIP-890), 1 (classic) or 0 (not initialised).
    pub fn protocol_version(&self) -> i32 {
        match *self.state.lock() {
            TxnState::Uninitialized => 0,
            _ if self.tv2.load(Ordering::Acquire) => 2,
            _ => 1,
        }
    }

    pub fn in_transaction(&self) -> Result<(), Error> {
        match &*self.state.lock() {
            TxnState::InTransaction => Ok(()),
            TxnState::Abortable(e) => Err(Error::new(
                error::STATE,
                format!("the transaction hit an error and must be aborted (kp_abort_transaction): {e}"),
            )),
            TxnState::Fatal(e) => Err(Error::new(
                error::FATAL,
                format!("the transactional producer is in a fatal state: {e}"),
            )),
            s => Err(Error::new(
                error::STATE,
                format!("records can only be sent inside a transaction (kp_begin_transaction); state is {s:?}"),
            )),
        }
    }

    pub fn begin(&self) -> Result<(), TxnError> {
        let mut st = self.state.lock();
        match &*st {
            TxnState::Ready => {
                *st = TxnState::InTransaction;
                self.clear_partitions();
                Ok(())
            }
            TxnState::Fatal(e) => Err(TxnError::fatal(e.clone())),
            TxnState::Abortable(e) => Err(TxnError::abortable(e.clone())),
            TxnState::Uninitialized => Err(TxnError::state("call kp_init_transactions first")),
            s => {
                Err(TxnError::state(format!("a transaction is already in progress (state {s:?})")))
            }
        }
    }

    /// Forgets the partitions and offsets of the transaction.
    fn clear_partitions(&self) {
        self.added.lock().clear();
        self.to_add.lock().clear();
        self.offsets_added.store(false, Ordering::Release);
    }

    /// The transaction ended (EndTxn, or an epoch bump after an abort).
    fn ended(&self) {
        self.clear_partitions();
        self.set_state(TxnState::Ready);
    }

    /// InTransaction (or a retried commit) -> Committing.
    pub fn start_commit(&self) -> Result<(), TxnError> {
        let mut st = self.state.lock();
        match &*st {
            TxnState::InTransaction | TxnState::Committing => {
                *st = TxnState::Committing;
                Ok(())
            }
            TxnState::Abortable(e) => Err(TxnError::abortable(e.clone())),
            TxnState::Fatal(e) => Err(TxnError::fatal(e.clone())),
            s => Err(TxnError::state(format!("no transaction to commit (state {s:?})"))),
        }
    }

    /// After the commit's flush: a record that failed meanwhile made the
    /// transaction abortable.
    pub fn check_still_committable(&self) -> Result<(), TxnError> {
        match &*self.state.lock() {
            TxnState::Abortable(e) => Err(TxnError::abortable(e.clone())),
            _ => Ok(()),
        }
    }

    /// A transaction in progress, failed or being committed -> Aborting.
    pub fn start_abort(&self) -> Result<(), TxnError> {
        let mut st = self.state.lock();
        match &*st {
            TxnState::InTransaction
            | TxnState::Aborting
            | TxnState::Abortable(_)
            | TxnState::Committing => {
                *st = TxnState::Aborting;
                Ok(())
            }
            TxnState::Fatal(e) => Err(TxnError::fatal(e.clone())),
            s => Err(TxnError::state(format!("no transaction to abort (state {s:?})"))),
        }
    }

    /// Called by the sender when a batch of the transaction fails for good.
    pub fn batch_failed(&self, err: &Error) {
        let mut st = self.state.lock();
        if matches!(*st, TxnState::InTransaction | TxnState::Committing) {
            if breaks_sequence_state(err.code) {
                self.bump_after_abort.store(true, Ordering::Release);
            }
            *st = TxnState::Abortable(err.clone());
        }
    }

    /// v1: whether the partition may be sent now; otherwise it is queued for
    /// AddPartitionsToTxn. v2: always (the produce request enrols it).
    pub fn partition_ready(&self, topic: &Arc<str>, partition: i32) -> bool {
        let key = (topic.clone(), partition);
        if self.tv2.load(Ordering::Acquire) {
            self.added.lock().insert(key);
            return true;
        }
        if self.added.lock().contains(&key) {
            return true;
        }
        self.to_add.lock().insert(key);
        false
    }

    /// v1: partitions wait for AddPartitionsToTxn.
    pub fn has_partitions_to_add(&self) -> bool {
        !self.to_add.lock().is_empty()
    }

    /// Whether the transaction has anything the coordinator knows of
    /// (partitions or offsets): if not, EndTxn is skipped.
    fn enrolled(&self) -> bool {
        !self.added.lock().is_empty() || self.offsets_added.load(Ordering::Acquire)
    }

    /// EndTxn v5 and TxnOffsetCommit v5 belong to the v2 protocol.
    fn end_txn_version_cap(&self) -> i16 {
        if self.tv2.load(Ordering::Acquire) {
            5
        } else {
            4
        }
    }

    pub fn produce_version_cap(&self) -> i16 {
        // A v1 transactional producer must not send Produce v12+ (that is
        // the v2 protocol, which enrols partitions implicitly).
        if self.tv2.load(Ordering::Acquire) {
            12
        } else {
            11
        }
    }

    /// Classifies a coordinator error: retry (after maybe re-finding the
    /// coordinator), abortable, or fatal (which the caller applies with
    /// `apply`). PRODUCER_FENCED is fatal only from InitProducerId
    /// (`fence_is_final`): elsewhere it may also mean the coordinator
    /// aborted our transaction for transaction.timeout.ms and bumped the
    /// epoch, so it is abortable and the abort's epoch bump (InitProducerId
    /// with our old epoch) tells the two apart.
    fn classify(&self, code: i32, what: &str, fence_is_final: bool) -> Result<(), TxnError> {
        let e = Error::new(code, format!("{what}: {}", error::description(code)));
        match code {
            0 => Ok(()),
            error::NOT_COORDINATOR | error::COORDINATOR_NOT_AVAILABLE => {
                self.forget_coordinator();
                Err(TxnError::retriable(e))
            }
            error::COORDINATOR_LOAD_IN_PROGRESS | error::CONCURRENT_TRANSACTIONS => {
                Err(TxnError::retriable(e))
            }
            error::PRODUCER_FENCED if fence_is_final => Err(TxnError::fatal(Error::new(
                code,
                format!(
                    "{what}: fenced: another producer with transactional.id \"{}\" has started{}",
                    self.id,
                    if self.tv2.load(Ordering::Acquire) {
                        ""
                    } else {
                        ", or the coordinator aborted this producer's transaction after transaction.timeout.ms (with transaction protocol v1 that fences the producer; create a new one)"
                    }
                ),
            ))),
            error::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            | error::INVALID_PRODUCER_ID_MAPPING
            | error::UNSUPPORTED_VERSION => Err(TxnError::fatal(e)),
            error::PRODUCER_FENCED | error::INVALID_PRODUCER_EPOCH => {
                self.bump_after_abort.store(true, Ordering::Release);
                Err(TxnError::abortable(Error::new(
                    code,
                    format!("{what}: {} (the coordinator aborted the transaction, e.g. after transaction.timeout.ms, or another producer fenced this one; kp_abort_transaction tells which)", error::description(code)),
                )))
            }
            error::TRANSACTION_ABORTABLE | error::INVALID_TXN_STATE => Err(TxnError::abortable(e)),
            c if error::is_retriable(c) => Err(TxnError::retriable(e)),
            _ => Err(TxnError::abortable(e)),
        }
    }

    fn forget_coordinator(&self) {
        *self.coordinator.lock() = None;
    }
}

#[cfg(test)]
mod tests;
