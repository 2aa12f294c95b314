//! The transaction coordinator calls, each retried with the engine's
//! backoff until its deadline.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{self, Error};
use crate::protocol::api::Request;
use crate::protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    AddPartitionsToTxnTopic, EndTxnRequest, FindCoordinatorRequest, InitProducerIdRequest,
    ProduceRequest, TxnOffsetCommitPartition, TxnOffsetCommitRequest, TxnOffsetCommitTopic,
};

use super::super::backoff::Backoff;
use super::super::conn::Broker;
use super::super::{group_by_topic, Attempt, Inner, ProducerId};
use super::{TxnError, TxnManager, TxnPartition, TxnState};

/// Transactional calls retry after 20 ms, doubling up to 500 ms.
const TXN_BACKOFF: Backoff = Backoff::from_millis(20, 500);

fn deadline_left(deadline: Instant) -> Result<Duration, TxnError> {
    let now = Instant::now();
    if now >= deadline {
        Err(TxnError::retriable(Error::new(error::TIMED_OUT, "the transactional call timed out")))
    } else {
        Ok(deadline - now)
    }
}

/// Which coordinator FindCoordinator looks up.
#[derive(Clone, Copy)]
enum CoordinatorOf {
    Transaction,
    Group,
}

async fn find_coordinator(
    inner: &Inner,
    key: &str,
    of: CoordinatorOf,
) -> Result<Arc<Broker>, Error> {
    let req = match of {
        CoordinatorOf::Group => FindCoordinatorRequest::group(key),
        CoordinatorOf::Transaction => FindCoordinatorRequest::transaction(key),
    };
    let req = &req;
    let tried = inner
        .on_any_broker(|b| async move {
            let resp = match b.request(req).await {
                Ok(r) => r,
                Err(e) => return Attempt::Next(e),
            };
            let Some(c) = resp.coordinator_for(key).or(resp.coordinators.first()) else {
                return Attempt::Next(Error::new(
                    error::BAD_RESPONSE,
                    format!("FindCoordinator for \"{key}\": the response named no coordinator"),
                ));
            };
            if c.error_code != 0 {
                let code = c.error_code as i32;
                let e = Error::new(
                    code,
                    format!(
                        "FindCoordinator for \"{key}\": {}",
                        c.error_message.clone().unwrap_or_else(|| error::description(code).into())
                    ),
                );
                return if error::is_retriable(code) { Attempt::Next(e) } else { Attempt::Stop(e) };
            }
            if let Some(known) = inner.broker(c.node_id) {
                if known.host == c.host && known.port as i32 == c.port {
                    return Attempt::Done(known);
                }
            }
            Attempt::Done(Broker::new(
                c.node_id,
                c.host.clone(),
                c.port as u16,
                inner.conn_settings.clone(),
            ))
        })
        .await;
    tried.map_err(|errs| errs.last())
}

impl TxnManager {
    async fn coordinator(&self, inner: &Inner) -> Result<Arc<Broker>, Error> {
        if let Some(c) = self.coordinator.lock().clone() {
            return Ok(c);
        }
        let c = find_coordinator(inner, &self.id, CoordinatorOf::Transaction).await?;
        *self.coordinator.lock() = Some(c.clone());
        Ok(c)
    }

    /// Sends `req` to the transaction coordinator (version capped at `cap`);
    /// a lost coordinator is looked up again on the next try.
    async fn call<R: Request>(
        &self,
        inner: &Inner,
        req: &R,
        cap: Option<i16>,
    ) -> Result<R::Response, TxnError> {
        let coord = self.coordinator(inner).await.map_err(TxnError::retriable)?;
        let r = match cap {
            Some(v) => coord.request_capped(req, v).await,
            None => coord.request(req).await,
        };
        r.map_err(|e| {
            self.forget_coordinator();
            TxnError::retriable(e)
        })
    }

    fn pid(inner: &Inner) -> ProducerId {
        inner.pid.lock().current()
    }

    /// Classifies a coordinator error code (see `classify`) and applies the
    /// class: abortable and fatal errors change the state.
    fn check(
        &self,
        inner: &Inner,
        code: i32,
        what: &str,
        fence_is_final: bool,
    ) -> Result<(), TxnError> {
        let r = self.classify(code, what, fence_is_final);
        if let Err(e) = &r {
            if e.fatal {
                self.set_state(TxnState::Fatal(e.error.clone()));
                inner.enter_fatal(e.error.clone());
            } else if e.requires_abort {
                self.set_state(TxnState::Abortable(e.error.clone()));
            }
        }
        r
    }

    /// Retries `op` on retriable errors until the deadline.
    async fn with_retries<T, F, Fut>(&self, deadline: Instant, mut op: F) -> Result<T, TxnError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, TxnError>>,
    {
        let mut retries = TXN_BACKOFF.start();
        loop {
            let left = deadline_left(deadline)?;
            match tokio::time::timeout(left, op()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if e.retriable => {
                    let wait = retries.next_delay();
                    if Instant::now() + wait >= deadline {
                        return Err(e);
                    }
                    tokio::time::sleep(wait).await;
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
        let (pid, tv2) = self.with_retries(deadline, || self.try_init(inner)).await?;
        self.tv2.store(tv2, Ordering::Release);
        inner.set_producer_id(pid);
        self.set_state(TxnState::Ready);
        Ok(())
    }

    /// One InitProducerId on the coordinator; also negotiates transactions
    /// v2 (KIP-890).
    async fn try_init(&self, inner: &Inner) -> Result<(ProducerId, bool), TxnError> {
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
            && session.apis.range(crate::protocol::api::API_END_TXN).is_some_and(|r| r.1 >= 5)
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
            self.check(inner, r.error_code as i32, "InitProducerId", true)?;
        }
        Ok((ProducerId { id: r.producer_id, epoch: r.producer_epoch }, tv2))
    }

    /// v1: runs AddPartitionsToTxn for the partitions the sender queued.
    pub(crate) async fn add_pending_partitions(self: Arc<Self>, inner: Arc<Inner>) {
        if self.adding.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut retries = TXN_BACKOFF.start();
        loop {
            let batch: Vec<TxnPartition> = self.to_add.lock().iter().cloned().collect();
            if batch.is_empty() || inner.lifecycle.is_shut_down() {
                break;
            }
            let pid = Self::pid(&inner);
            let topics = group_by_topic(batch.iter().map(|(t, p)| (&**t, *p)))
                .into_iter()
                .map(|(name, partitions)| AddPartitionsToTxnTopic { name, partitions })
                .collect();
            let req = AddPartitionsToTxnRequest {
                transactional_id: self.id.clone(),
                producer_id: pid.id,
                producer_epoch: pid.epoch,
                topics,
            };
            let retry = match self.call(&inner, &req, None).await {
                Err(_) => true,
                Ok(resp) => self.apply_added(&inner, &resp),
            };
            inner.sender_wake.notify_one();
            if retry {
                retries.sleep().await;
            }
        }
        self.adding.store(false, Ordering::Release);
        // Partitions queued while we were finishing are picked up by the
        // sender's next pass, which starts this task again.
        inner.sender_wake.notify_one();
    }

    /// Applies an AddPartitionsToTxn response. Returns whether some
    /// partition must be tried again.
    fn apply_added(&self, inner: &Inner, resp: &AddPartitionsToTxnResponse) -> bool {
        let mut retry = false;
        for t in &resp.results_by_topic {
            for pr in &t.results_by_partition {
                let key: TxnPartition = (Arc::from(t.name.as_str()), pr.partition_index);
                let code = pr.partition_error_code as i32;
                if code == 0 {
                    self.to_add.lock().remove(&key);
                    self.added.lock().insert(key);
                } else if code == error::OPERATION_NOT_ATTEMPTED {
                    retry = true;
                } else if let Err(e) = self.check(
                    inner,
                    code,
                    &format!("AddPartitionsToTxn {}-{}", t.name, pr.partition_index),
                    false,
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
        retry
    }

    /// EndTxn (commit or abort), with retries; v2 takes the bumped epoch.
    pub(crate) async fn end(
        &self,
        inner: &Inner,
        commit: bool,
        deadline: Instant,
    ) -> Result<(), TxnError> {
        if self.enrolled() {
            let what = if commit { "EndTxn(commit)" } else { "EndTxn(abort)" };
            let new = self
                .with_retries(deadline, || async {
                    let pid = Self::pid(inner);
                    let req = EndTxnRequest {
                        transactional_id: self.id.clone(),
                        producer_id: pid.id,
                        producer_epoch: pid.epoch,
                        committed: commit,
                    };
                    // EndTxn v5 is the v2 protocol (the coordinator bumps the
                    // epoch and returns it); a v1 producer must stay below it.
                    let r = self.call(inner, &req, Some(self.end_txn_version_cap())).await?;
                    self.check(inner, r.error_code as i32, what, false)?;
                    Ok(ProducerId { id: r.producer_id, epoch: r.producer_epoch })
                })
                .await?;
            if new.id >= 0 && new.epoch >= 0 {
                inner.set_producer_id(new);
            }
        }
        self.ended();
        Ok(())
    }

    /// Ends an abort started by `start_abort` (after the purge and flush):
    /// EndTxn(abort), then the epoch bump if the transaction broke the
    /// producer's sequence state.
    pub(crate) async fn finish_abort(
        &self,
        inner: &Inner,
        deadline: Instant,
    ) -> Result<(), TxnError> {
        match self.end(inner, false, deadline).await {
            Ok(()) => {}
            // The coordinator already ended it (e.g. transaction timeout)
            // or our epoch is stale: the bump below recovers.
            Err(e) if e.requires_abort => {}
            Err(e) => return Err(e),
        }
        self.bump_if_needed(inner, deadline).await?;
        self.set_state(TxnState::Ready);
        Ok(())
    }

    /// KIP-360 bump after an abort that followed a sequence/epoch problem.
    async fn bump_if_needed(&self, inner: &Inner, deadline: Instant) -> Result<(), TxnError> {
        if !self.bump_after_abort.swap(false, Ordering::AcqRel) {
            return Ok(());
        }
        let pid = self
            .with_retries(deadline, || async {
                let pid = Self::pid(inner);
                let req = InitProducerIdRequest {
                    transactional_id: Some(self.id.clone()),
                    transaction_timeout_ms: self.timeout_ms,
                    producer_id: pid.id,
                    producer_epoch: pid.epoch,
                };
                let r = self.call(inner, &req, None).await?;
                if r.error_code != 0 {
                    self.check(inner, r.error_code as i32, "InitProducerId (epoch bump)", true)?;
                }
                Ok(ProducerId { id: r.producer_id, epoch: r.producer_epoch })
            })
            .await?;
        inner.set_producer_id(pid);
        self.set_state(TxnState::Ready);
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
                let pid = Self::pid(inner);
                let req = AddOffsetsToTxnRequest {
                    transactional_id: self.id.clone(),
                    producer_id: pid.id,
                    producer_epoch: pid.epoch,
                    group_id: group.to_string(),
                };
                let r = self.call(inner, &req, None).await?;
                self.check(inner, r.error_code as i32, "AddOffsetsToTxn", false)
            })
            .await?;
        }
        self.offsets_added.store(true, Ordering::Release);
        let group_coord: Mutex<Option<Arc<Broker>>> = Mutex::new(None);
        self.with_retries(deadline, || self.commit_offsets(inner, offsets, group, &group_coord))
            .await
    }

    /// One TxnOffsetCommit on the group coordinator (found once, and again
    /// after it moved).
    async fn commit_offsets(
        &self,
        inner: &Inner,
        offsets: &[(String, i32, i64)],
        group: &str,
        group_coord: &Mutex<Option<Arc<Broker>>>,
    ) -> Result<(), TxnError> {
        let pid = Self::pid(inner);
        let existing = group_coord.lock().clone();
        let coord = match existing {
            Some(c) => c,
            None => {
                let c = find_coordinator(inner, group, CoordinatorOf::Group)
                    .await
                    .map_err(TxnError::retriable)?;
                *group_coord.lock() = Some(c.clone());
                c
            }
        };
        let partitions = offsets.iter().map(|(t, p, o)| {
            let part = TxnOffsetCommitPartition {
                partition_index: *p,
                committed_offset: *o,
                committed_leader_epoch: -1,
                committed_metadata: None,
            };
            (t.as_str(), part)
        });
        let req = TxnOffsetCommitRequest {
            transactional_id: self.id.clone(),
            group_id: group.to_string(),
            producer_id: pid.id,
            producer_epoch: pid.epoch,
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            topics: group_by_topic(partitions)
                .into_iter()
                .map(|(name, partitions)| TxnOffsetCommitTopic { name, partitions })
                .collect(),
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
                    let what = format!("TxnOffsetCommit {}-{}", t.name, p.partition_index);
                    self.check(inner, code, &what, false)?;
                }
            }
        }
        Ok(())
    }
}
