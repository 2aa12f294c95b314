//! Transactions: the transaction coordinator, InitProducerId with a
//! transactional.id, begin/commit/abort, AddPartitionsToTxn (v1) or implicit
//! enrolment by Produce v12 (v2, KIP-890), send_offsets_to_transaction, and
//! the error classes (retriable, abortable, fatal).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{self, Error};
use crate::protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnTopic, EndTxnRequest,
    FindCoordinatorRequest, InitProducerIdRequest, ProduceRequest, TxnOffsetCommitPartition,
    TxnOffsetCommitRequest, TxnOffsetCommitTopic,
};

use super::conn::Broker;
use super::idempotence::PidPhase;
use super::Inner;

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

/// The outcome of a transactional call, with its class.
#[derive(Clone, Debug)]
pub struct TxnError {
    pub error: Error,
    pub retriable: bool,
    pub fatal: bool,
    pub requires_abort: bool,
}

impl TxnError {
    fn retriable(e: Error) -> TxnError {
        TxnError { error: e, retriable: true, fatal: false, requires_abort: false }
    }
    fn state(msg: impl Into<String>) -> TxnError {
        TxnError {
            error: Error::new(error::STATE, msg),
            retriable: false,
            fatal: false,
            requires_abort: false,
        }
    }
    fn abortable(e: Error) -> TxnError {
        TxnError { error: e, retriable: false, fatal: false, requires_abort: true }
    }
    fn fatal(e: Error) -> TxnError {
        TxnError { error: e, retriable: false, fatal: true, requires_abort: false }
    }
}

pub struct TxnManager {
    pub id: String,
    pub timeout_ms: i32,
    pub state: Mutex<TxnState>,
    /// Transactions v2 (KIP-890) negotiated at init.
    pub tv2: AtomicBool,
    coordinator: Mutex<Option<Arc<Broker>>>,
    /// Partitions in the current transaction (v1: added by
    /// AddPartitionsToTxn; v2: enrolled by a produce request).
    pub added: Mutex<HashSet<(Arc<str>, i32)>>,
    /// v1: partitions waiting for AddPartitionsToTxn.
    pub to_add: Mutex<HashSet<(Arc<str>, i32)>>,
    adding: AtomicBool,
    offsets_added: AtomicBool,
    /// After an abort, bump the epoch (the producer's sequence state broke).
    bump_after_abort: AtomicBool,
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

    pub fn in_transaction(&self) -> Result<(), Error> {
        match &*self.state.lock() {
            TxnState::InTransaction => Ok(()),
            TxnState::Abortable(e) => Err(Error::new(
                error::STATE,
                format!("the transaction hit an error and must be aborted (kp_abort_transaction): {e}"),
            )),
            TxnState::Fatal(e) => Err(Error::new(error::FATAL, format!("the transactional producer is in a fatal state: {e}"))),
            s => Err(Error::new(error::STATE, format!("records can only be sent inside a transaction (kp_begin_transaction); state is {s:?}"))),
        }
    }

    /// Called by the sender when a batch of the transaction fails for good.
    pub fn batch_failed(&self, err: &Error) {
        let mut st = self.state.lock();
        if matches!(*st, TxnState::InTransaction | TxnState::Committing) {
            if matches!(
                err.code,
                error::INVALID_PRODUCER_EPOCH
                    | error::PRODUCER_FENCED
                    | error::OUT_OF_ORDER_SEQUENCE_NUMBER
                    | error::UNKNOWN_PRODUCER_ID
            ) {
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
}

fn deadline_left(deadline: Instant) -> Result<Duration, TxnError> {
    let now = Instant::now();
    if now >= deadline {
        Err(TxnError::retriable(Error::new(error::TIMED_OUT, "the transactional call timed out")))
    } else {
        Ok(deadline - now)
    }
}

async fn find_coordinator(inner: &Inner, key: &str, group: bool) -> Result<Arc<Broker>, Error> {
    let req = if group {
        FindCoordinatorRequest::group(key)
    } else {
        FindCoordinatorRequest::transaction(key)
    };
    let mut last = Error::new(error::ALL_BROKERS_DOWN, "no broker known");
    for b in inner.any_brokers() {
        match b.request(&req).await {
            Ok(resp) => {
                let Some(c) = resp.coordinator_for(key).or(resp.coordinators.first()) else {
                    continue;
                };
                if c.error_code != 0 {
                    let code = c.error_code as i32;
                    last = Error::new(
                        code,
                        format!(
                            "FindCoordinator for \"{key}\": {}",
                            c.error_message
                                .clone()
                                .filter(|m| !m.is_empty())
                                .unwrap_or_else(|| error::description(code).into())
                        ),
                    );
                    if !error::is_retriable(code) {
                        return Err(last);
                    }
                    continue;
                }
                if let Some(known) = inner.broker(c.node_id) {
                    if known.host == c.host && known.port as i32 == c.port {
                        return Ok(known);
                    }
                }
                return Ok(Broker::new(
                    c.node_id,
                    c.host.clone(),
                    c.port as u16,
                    inner.conn_settings.clone(),
                ));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

impl TxnManager {
    async fn coordinator(&self, inner: &Inner) -> Result<Arc<Broker>, Error> {
        if let Some(c) = self.coordinator.lock().clone() {
            return Ok(c);
        }
        let c = find_coordinator(inner, &self.id, false).await?;
        *self.coordinator.lock() = Some(c.clone());
        Ok(c)
    }

    fn forget_coordinator(&self) {
        *self.coordinator.lock() = None;
    }

    fn pid(inner: &Inner) -> (i64, i16) {
        match *inner.pid.lock() {
            PidPhase::Ready { pid, epoch } | PidPhase::BumpWanted { pid, epoch } => (pid, epoch),
            _ => (-1, -1),
        }
    }

    /// Classifies a coordinator error: retry (after maybe re-finding the
    /// coordinator), abortable, or fatal. PRODUCER_FENCED is fatal only from
    /// InitProducerId (`fence_is_final`): elsewhere it may also mean the
    /// coordinator aborted our transaction for transaction.timeout.ms and
    /// bumped the epoch, so it is abortable and the abort's epoch bump
    /// (InitProducerId with our old epoch) tells the two apart.
    fn classify_with(
        &self,
        inner: &Inner,
        code: i32,
        what: &str,
        fence_is_final: bool,
    ) -> Result<(), TxnError> {
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
            error::PRODUCER_FENCED if fence_is_final => {
                let e = Error::new(
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
                );
                self.set_fatal(inner, e.clone());
                Err(TxnError::fatal(e))
            }
            error::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            | error::INVALID_PRODUCER_ID_MAPPING
            | error::UNSUPPORTED_VERSION => {
                self.set_fatal(inner, e.clone());
                Err(TxnError::fatal(e))
            }
            error::PRODUCER_FENCED | error::INVALID_PRODUCER_EPOCH => {
                self.bump_after_abort.store(true, Ordering::Release);
                let e = Error::new(
                    code,
                    format!("{what}: {} (the coordinator aborted the transaction, e.g. after transaction.timeout.ms, or another producer fenced this one; kp_abort_transaction tells which)", error::description(code)),
                );
                *self.state.lock() = TxnState::Abortable(e.clone());
                Err(TxnError::abortable(e))
            }
            error::TRANSACTION_ABORTABLE | error::INVALID_TXN_STATE => {
                *self.state.lock() = TxnState::Abortable(e.clone());
                Err(TxnError::abortable(e))
            }
            c if error::is_retriable(c) => Err(TxnError::retriable(e)),
            _ => {
                *self.state.lock() = TxnState::Abortable(e.clone());
                Err(TxnError::abortable(e))
            }
        }
    }

    fn classify(&self, inner: &Inner, code: i32, what: &str) -> Result<(), TxnError> {
        self.classify_with(inner, code, what, false)
    }

    fn set_fatal(&self, inner: &Inner, e: Error) {
        *self.state.lock() = TxnState::Fatal(e.clone());
        inner.enter_fatal(e);
    }

    /// Retries `op` on retriable errors until the deadline.
    async fn with_retries<T, F, Fut>(&self, deadline: Instant, mut op: F) -> Result<T, TxnError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, TxnError>>,
    {
        let mut backoff = Duration::from_millis(20);
        loop {
            let left = deadline_left(deadline)?;
            match tokio::time::timeout(left, op()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if e.retriable => {
                    if Instant::now() + backoff >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(500));
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(TxnError::retriable(Error::new(
                        error::TIMED_OUT,
                        "the transactional call timed out",
                    )))
                }
            }
        }
    }

    pub(crate) async fn init(&self, inner: &Inner, timeout: Duration) -> Result<(), TxnError> {
        match &*self.state.lock() {
            TxnState::Uninitialized => {}
            TxnState::Fatal(e) => return Err(TxnError::fatal(e.clone())),
            s => {
                return Err(TxnError::state(format!(
                    "kp_init_transactions was already called (state {s:?})"
                )))
            }
        }
        let deadline = Instant::now() + timeout;
        let (pid, epoch, tv2) = self
            .with_retries(deadline, || async {
                let coord = self.coordinator(inner).await.map_err(|e| {
                    if error::is_retriable(e.code) || e.code == error::ALL_BROKERS_DOWN {
                        TxnError::retriable(e)
                    } else {
                        TxnError::fatal(e)
                    }
                })?;
                let session = coord.session().await.map_err(|e| {
                    self.forget_coordinator();
                    TxnError::retriable(e)
                })?;
                let Some(v) = session.apis.version_for::<InitProducerIdRequest>() else {
                    return Err(TxnError::fatal(Error::new(
                        error::UNSUPPORTED_FEATURE,
                        "the broker does not support transactions",
                    )));
                };
                let tv2 = session.apis.feature_level("transaction.version") >= 2
                    && session
                        .apis
                        .range(crate::protocol::api::API_END_TXN)
                        .is_some_and(|r| r.1 >= 5)
                    && session.apis.version_for::<ProduceRequest>().is_some_and(|v| v >= 12);
                let req = InitProducerIdRequest {
                    transactional_id: Some(self.id.clone()),
                    transaction_timeout_ms: self.timeout_ms,
                    producer_id: -1,
                    producer_epoch: -1,
                };
                let r = coord.request_on(&session, &req, v).await.map_err(|e| {
                    self.forget_coordinator();
                    TxnError::retriable(e)
                })?;
                if r.error_code != 0 {
                    self.classify_with(inner, r.error_code as i32, "InitProducerId", true)?;
                }
                Ok((r.producer_id, r.producer_epoch, tv2))
            })
            .await?;
        self.tv2.store(tv2, Ordering::Release);
        inner.set_producer_id(pid, epoch);
        *self.state.lock() = TxnState::Ready;
        Ok(())
    }

    pub fn begin(&self) -> Result<(), TxnError> {
        let mut st = self.state.lock();
        match &*st {
            TxnState::Ready => {
                *st = TxnState::InTransaction;
                self.added.lock().clear();
                self.to_add.lock().clear();
                self.offsets_added.store(false, Ordering::Release);
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

    /// v1: runs AddPartitionsToTxn for the partitions the sender queued.
    pub(crate) async fn add_pending_partitions(self: Arc<Self>, inner: Arc<Inner>) {
        if self.adding.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut backoff = Duration::from_millis(20);
        loop {
            let batch: Vec<(Arc<str>, i32)> = self.to_add.lock().iter().cloned().collect();
            if batch.is_empty() || inner.shutdown.load(Ordering::Acquire) {
                break;
            }
            let (pid, epoch) = Self::pid(&inner);
            let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
            for (t, p) in &batch {
                match topics.iter_mut().find(|x| *x.name == **t) {
                    Some(x) => x.partitions.push(*p),
                    None => topics.push(AddPartitionsToTxnTopic {
                        name: t.to_string(),
                        partitions: vec![*p],
                    }),
                }
            }
            let req = AddPartitionsToTxnRequest {
                transactional_id: self.id.clone(),
                producer_id: pid,
                producer_epoch: epoch,
                topics,
            };
            let mut retry = false;
            match self.coordinator(&inner).await {
                Err(_) => retry = true,
                Ok(c) => match c.request(&req).await {
                    Err(_) => {
                        self.forget_coordinator();
                        retry = true;
                    }
                    Ok(resp) => {
                        for t in &resp.results_by_topic {
                            for pr in &t.results_by_partition {
                                let key: (Arc<str>, i32) =
                                    (Arc::from(t.name.as_str()), pr.partition_index);
                                let code = pr.partition_error_code as i32;
                                if code == 0 {
                                    self.to_add.lock().remove(&key);
                                    self.added.lock().insert(key);
                                } else if code == error::OPERATION_NOT_ATTEMPTED {
                                    retry = true;
                                } else if let Err(e) = self.classify(
                                    &inner,
                                    code,
                                    &format!(
                                        "AddPartitionsToTxn {}-{}",
                                        t.name, pr.partition_index
                                    ),
                                ) {
                                    if e.retriable {
                                        retry = true;
                                    } else {
                                        self.to_add.lock().remove(&key);
                                        // The partition's records cannot join the transaction.
                                        inner.fail_partition_queue(&key.0, key.1, &e.error);
                                    }
                                }
                            }
                        }
                    }
                },
            }
            inner.sender_wake.notify_one();
            if retry {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
        self.adding.store(false, Ordering::Release);
        // Partitions queued while we were finishing are picked up by the
        // sender's next pass, which starts this task again.
        inner.sender_wake.notify_one();
    }

    /// EndTxn (commit or abort), with retries; v2 takes the bumped epoch.
    pub(crate) async fn end(
        &self,
        inner: &Inner,
        commit: bool,
        deadline: Instant,
    ) -> Result<(), TxnError> {
        let enrolled = !self.added.lock().is_empty() || self.offsets_added.load(Ordering::Acquire);
        if enrolled {
            let (new_pid, new_epoch) = self
                .with_retries(deadline, || async {
                    let (pid, epoch) = Self::pid(inner);
                    let coord = self.coordinator(inner).await.map_err(TxnError::retriable)?;
                    let req = EndTxnRequest {
                        transactional_id: self.id.clone(),
                        producer_id: pid,
                        producer_epoch: epoch,
                        committed: commit,
                    };
                    // EndTxn v5 is the v2 protocol (the coordinator bumps the
                    // epoch and returns it); a v1 producer must stay below it.
                    let r = coord.request_capped(&req, self.end_txn_version_cap()).await.map_err(
                        |e| {
                            self.forget_coordinator();
                            TxnError::retriable(e)
                        },
                    )?;
                    self.classify(
                        inner,
                        r.error_code as i32,
                        if commit { "EndTxn(commit)" } else { "EndTxn(abort)" },
                    )?;
                    Ok((r.producer_id, r.producer_epoch))
                })
                .await?;
            if new_pid >= 0 && new_epoch >= 0 {
                inner.set_producer_id(new_pid, new_epoch);
            }
        }
        self.added.lock().clear();
        self.to_add.lock().clear();
        self.offsets_added.store(false, Ordering::Release);
        *self.state.lock() = TxnState::Ready;
        Ok(())
    }

    /// KIP-360 bump after an abort that followed a sequence/epoch problem.
    pub(crate) async fn bump_if_needed(
        &self,
        inner: &Inner,
        deadline: Instant,
    ) -> Result<(), TxnError> {
        if !self.bump_after_abort.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let (pid, epoch) = self
            .with_retries(deadline, || async {
                let (pid, epoch) = Self::pid(inner);
                let coord = self.coordinator(inner).await.map_err(TxnError::retriable)?;
                let req = InitProducerIdRequest {
                    transactional_id: Some(self.id.clone()),
                    transaction_timeout_ms: self.timeout_ms,
                    producer_id: pid,
                    producer_epoch: epoch,
                };
                let r = coord.request(&req).await.map_err(|e| {
                    self.forget_coordinator();
                    TxnError::retriable(e)
                })?;
                if r.error_code != 0 {
                    self.classify_with(
                        inner,
                        r.error_code as i32,
                        "InitProducerId (epoch bump)",
                        true,
                    )?;
                }
                Ok((r.producer_id, r.producer_epoch))
            })
            .await?;
        inner.set_producer_id(pid, epoch);
        *self.state.lock() = TxnState::Ready;
        Ok(())
    }

    pub(crate) async fn send_offsets(
        &self,
        inner: &Inner,
        offsets: &[(String, i32, i64)],
        group: &str,
        deadline: Instant,
    ) -> Result<(), TxnError> {
        self.in_transaction().map_err(|e| {
            if e.code == error::FATAL {
                TxnError::fatal(e)
            } else {
                TxnError::state(e.message)
            }
        })?;
        if !self.tv2.load(Ordering::Acquire) && !self.offsets_added.load(Ordering::Acquire) {
            self.with_retries(deadline, || async {
                let (pid, epoch) = Self::pid(inner);
                let coord = self.coordinator(inner).await.map_err(TxnError::retriable)?;
                let req = AddOffsetsToTxnRequest {
                    transactional_id: self.id.clone(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    group_id: group.to_string(),
                };
                let r = coord.request(&req).await.map_err(|e| {
                    self.forget_coordinator();
                    TxnError::retriable(e)
                })?;
                self.classify(inner, r.error_code as i32, "AddOffsetsToTxn")
            })
            .await?;
        }
        self.offsets_added.store(true, Ordering::Release);
        let group_coord: Mutex<Option<Arc<Broker>>> = Mutex::new(None);
        self.with_retries(deadline, || async {
            let (pid, epoch) = Self::pid(inner);
            let existing = group_coord.lock().clone();
            let coord = match existing {
                Some(c) => c,
                None => {
                    let c =
                        find_coordinator(inner, group, true).await.map_err(TxnError::retriable)?;
                    *group_coord.lock() = Some(c.clone());
                    c
                }
            };
            let mut topics: Vec<TxnOffsetCommitTopic> = Vec::new();
            for (t, p, o) in offsets {
                let part = TxnOffsetCommitPartition {
                    partition_index: *p,
                    committed_offset: *o,
                    committed_leader_epoch: -1,
                    committed_metadata: None,
                };
                match topics.iter_mut().find(|x| &x.name == t) {
                    Some(x) => x.partitions.push(part),
                    None => topics
                        .push(TxnOffsetCommitTopic { name: t.clone(), partitions: vec![part] }),
                }
            }
            let req = TxnOffsetCommitRequest {
                transactional_id: self.id.clone(),
                group_id: group.to_string(),
                producer_id: pid,
                producer_epoch: epoch,
                generation_id: -1,
                member_id: String::new(),
                group_instance_id: None,
                topics,
            };
            let r = coord.request_capped(&req, self.end_txn_version_cap()).await.map_err(|e| {
                *group_coord.lock() = None;
                TxnError::retriable(e)
            })?;
            for t in &r.topics {
                for p in &t.partitions {
                    let code = p.error_code as i32;
                    if code == error::NOT_COORDINATOR || code == error::COORDINATOR_NOT_AVAILABLE {
                        *group_coord.lock() = None;
                    }
                    if code != 0 {
                        self.classify(
                            inner,
                            code,
                            &format!("TxnOffsetCommit {}-{}", t.name, p.partition_index),
                        )?;
                    }
                }
            }
            Ok(())
        })
        .await
    }
}
