//! Filling a node's log for the recovery workload: `lanes` concurrent sessions, each reserving
//! its own `batch` resources in one request and releasing them in the next, until about
//! `records` commands are durable. Every command is one log record; every answer is checked.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::allocdb_target::AllocdbTarget;
use crate::backend::{LeaseOp, Reserve, ReserveOutcome, Session, Target};

/// Writes at least `records` commands through `lanes` sessions of `batch` resources each
/// (resources `0..lanes × batch` must exist). Returns the commands written; `progress` is
/// called about every 200 ms with the count so far.
///
/// # Errors
/// A session failed, or the node answered anything but success.
pub async fn fill_log(
    target: &Arc<AllocdbTarget>,
    records: u64,
    lanes: u64,
    batch: u64,
    mut progress: impl FnMut(u64),
) -> Result<u64> {
    let written = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for lane in 0..lanes {
        let mut session = target.connect().await?;
        let written = Arc::clone(&written);
        tasks.push(tokio::spawn(async move {
            let mut sequence = 0_u64;
            while written.load(Ordering::Relaxed) < records {
                let reserves: Vec<Reserve> = (0..batch)
                    .map(|offset| {
                        sequence += 1;
                        Reserve {
                            op_id: (lane + 1) << 40 | sequence,
                            resource: lane * batch + offset,
                            holder: lane + 1,
                            ttl_ms: 600_000,
                        }
                    })
                    .collect();
                let mut releases = Vec::with_capacity(reserves.len());
                for (reserve, outcome) in reserves.iter().zip(session.reserve_batch(&reserves).await?) {
                    let ReserveOutcome::Won(lease) = outcome else {
                        bail!("resource {} was busy while filling the log", reserve.resource);
                    };
                    sequence += 1;
                    releases.push(LeaseOp {
                        op_id: (lane + 1) << 40 | sequence,
                        resource: reserve.resource,
                        holder: lane + 1,
                        lease,
                    });
                }
                if session.release_batch(&releases).await?.iter().any(|released| !released) {
                    bail!("a release was refused while filling the log");
                }
                written.fetch_add(2 * batch, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    // Report progress on a ticker while awaiting the lanes in order; each lane's end is an
    // event, so the fill returns as soon as the last lane finishes.
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    for mut task in tasks {
        loop {
            tokio::select! {
                finished = &mut task => {
                    finished??;
                    break;
                }
                _ = ticker.tick() => progress(written.load(Ordering::Relaxed).min(records)),
            }
        }
    }
    Ok(written.load(Ordering::Relaxed))
}
