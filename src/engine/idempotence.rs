//! Idempotent producer state: producer id and epoch (InitProducerId), and the
//! epoch bump of KIP-360 that lets the producer carry on after a sequence
//! gap instead of dying.

use std::sync::Arc;

use crate::error::{self, Error};
use crate::log::kp_log;
use crate::protocol::messages::InitProducerIdRequest;

use super::backoff::Backoff;
use super::{Attempt, Inner, ProducerId};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidPhase {
    /// No producer id yet: the sender must not send.
    Missing,
    /// An InitProducerId request is under way.
    Requesting,
    Ready(ProducerId),
    /// Sequences can no longer line up (a sequenced batch failed or expired,
    /// or the broker lost our state): bump the epoch once nothing is in
    /// flight, then restart every partition's sequence at 0.
    BumpWanted(ProducerId),
}

impl PidPhase {
    /// The id batches carry now (also while a bump is wanted), or NONE.
    pub fn current(&self) -> ProducerId {
        match *self {
            PidPhase::Ready(p) | PidPhase::BumpWanted(p) => p,
            PidPhase::Missing | PidPhase::Requesting => ProducerId::NONE,
        }
    }
}

/// A batch sent under `sent_under` failed or was refused so that the
/// sequences after it can no longer line up: asks for a bump if that is the
/// current producer id/epoch. (A partition still on an older one after a
/// bump restarts its sequences by itself once resolved.)
pub(crate) fn sequence_broken(inner: &Inner, sent_under: ProducerId) {
    if inner.pid.lock().current() == sent_under {
        request_bump(inner);
    }
}

/// Asks for a bump unless one is already wanted or under way.
pub(crate) fn request_bump(inner: &Inner) {
    let mut ph = inner.pid.lock();
    if let PidPhase::Ready(pid) = *ph {
        kp_log!(inner.cfg.log, NOTICE, PRODUCER, "producer id {}: epoch bump wanted", pid.id);
        *ph = PidPhase::BumpWanted(pid);
    }
}

/// Runs InitProducerId (a fresh id, or a bump of `current`) until it
/// succeeds, fails fatally, or the producer shuts down.
pub(crate) async fn init_producer_id(inner: Arc<Inner>, current: Option<ProducerId>) {
    let mut retries =
        Backoff::from_millis(inner.cfg.retry_backoff_ms.max(10), inner.cfg.retry_backoff_max_ms)
            .start();
    loop {
        if inner.lifecycle.is_shut_down() {
            return;
        }
        match try_init(&inner, current).await {
            Ok(pid) => {
                kp_log!(
                    inner.cfg.log,
                    INFO,
                    PRODUCER,
                    "producer id {} epoch {}",
                    pid.id,
                    pid.epoch
                );
                inner.set_producer_id(pid);
                return;
            }
            Err(e) if e.retriable() || e.code == error::ALL_BROKERS_DOWN => {
                kp_log!(inner.cfg.log, WARNING, PRODUCER, "no producer id yet, retrying: {e}");
                inner.metadata.set_cluster_error(Some(e));
                retries.sleep().await;
            }
            Err(e) => {
                inner.enter_fatal(Error::new(
                    e.code,
                    format!("could not get a producer id: {}", e.message),
                ));
                return;
            }
        }
    }
}

async fn try_init(inner: &Inner, current: Option<ProducerId>) -> Result<ProducerId, Error> {
    let tried = inner
        .on_any_broker(|b| async move {
            let session = match b.session().await {
                Ok(s) => s,
                Err(e) => return Attempt::Next(e),
            };
            let Some(version) = session.apis.version_for::<InitProducerIdRequest>() else {
                return Attempt::Stop(Error::new(
                    error::UNSUPPORTED_FEATURE,
                    "the broker does not support InitProducerId (idempotence)",
                ));
            };
            // Bumping an epoch needs v3+; older brokers give a new id instead.
            let pid = match current {
                Some(c) if version >= 3 => c,
                _ => ProducerId::NONE,
            };
            let req = InitProducerIdRequest {
                transactional_id: None,
                transaction_timeout_ms: i32::MAX,
                producer_id: pid.id,
                producer_epoch: pid.epoch,
            };
            match b.request_on(&session, &req, version).await {
                Ok(r) if r.error_code == 0 => {
                    Attempt::Done(ProducerId { id: r.producer_id, epoch: r.producer_epoch })
                }
                Ok(r) => {
                    let code = r.error_code as i32;
                    let e = Error::new(
                        code,
                        format!(
                            "InitProducerId failed on broker {}: {}",
                            b.node_id,
                            error::description(code)
                        ),
                    );
                    if error::is_retriable(code) {
                        Attempt::Next(e)
                    } else {
                        Attempt::Stop(e)
                    }
                }
                Err(e) => Attempt::Next(e),
            }
        })
        .await;
    tried.map_err(|errs| errs.last())
}
