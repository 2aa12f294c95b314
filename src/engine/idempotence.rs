//! Idempotent producer state: producer id and epoch (InitProducerId), and the
//! epoch bump of KIP-360 that lets the producer carry on after a sequence
//! gap instead of dying.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{self, Error};
use crate::protocol::messages::InitProducerIdRequest;

use super::Inner;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PidPhase {
    /// No producer id yet: the sender must not send.
    Missing,
    /// An InitProducerId request is under way.
    Requesting,
    Ready {
        pid: i64,
        epoch: i16,
    },
    /// Sequences can no longer line up (a sequenced batch failed or expired,
    /// or the broker lost our state): bump the epoch once nothing is in
    /// flight, then restart every partition's sequence at 0.
    BumpWanted {
        pid: i64,
        epoch: i16,
    },
}

/// Asks for a bump unless one is already wanted or under way.
pub(crate) fn request_bump(inner: &Inner) {
    let mut ph = inner.pid.lock();
    if let PidPhase::Ready { pid, epoch } = *ph {
        *ph = PidPhase::BumpWanted { pid, epoch };
    }
}

/// Runs InitProducerId (a fresh id, or a bump of `current`) until it
/// succeeds, fails fatally, or the producer shuts down.
pub(crate) async fn init_producer_id(inner: Arc<Inner>, current: Option<(i64, i16)>) {
    let mut attempt = 0u32;
    loop {
        if inner.shutdown.load(Ordering::Acquire) {
            return;
        }
        attempt += 1;
        match try_init(&inner, current).await {
            Ok((pid, epoch)) => {
                inner.set_producer_id(pid, epoch);
                return;
            }
            Err(e) if e.retriable() || e.code == error::ALL_BROKERS_DOWN => {
                let ms = (inner.cfg.retry_backoff_ms << attempt.min(10))
                    .min(inner.cfg.retry_backoff_max_ms.max(inner.cfg.retry_backoff_ms));
                *inner.last_cluster_error.lock() = Some(e);
                tokio::time::sleep(Duration::from_millis(ms.max(10))).await;
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

async fn try_init(inner: &Inner, current: Option<(i64, i16)>) -> Result<(i64, i16), Error> {
    let brokers = inner.any_brokers();
    let mut last = Error::new(error::ALL_BROKERS_DOWN, "no broker known yet");
    for b in brokers {
        let session = match b.session().await {
            Ok(s) => s,
            Err(e) => {
                last = e;
                continue;
            }
        };
        let Some(version) = session.apis.version_for::<InitProducerIdRequest>() else {
            return Err(Error::new(
                error::UNSUPPORTED_FEATURE,
                "the broker does not support InitProducerId (idempotence)",
            ));
        };
        // Bumping an epoch needs v3+; older brokers give a new id instead.
        let (pid, epoch) = match current {
            Some(c) if version >= 3 => c,
            _ => (-1, -1),
        };
        let req = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: i32::MAX,
            producer_id: pid,
            producer_epoch: epoch,
        };
        match b.request_on(&session, &req, version).await {
            Ok(r) if r.error_code == 0 => return Ok((r.producer_id, r.producer_epoch)),
            Ok(r) => {
                let code = r.error_code as i32;
                last = Error::new(
                    code,
                    format!(
                        "InitProducerId failed on broker {}: {}",
                        b.node_id,
                        error::description(code)
                    ),
                );
                if !error::is_retriable(code) {
                    return Err(last);
                }
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
