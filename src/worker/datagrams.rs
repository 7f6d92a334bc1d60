//! The datagrams a worker takes into its batch, on either event loop: read `udp::SLOTS` at a time from its UDP
//! socket, each turned into records by `Requests::ingest_datagram`, and counted by result — stored ones only
//! once the group commit covering them returned.

use super::core::Worker;
use super::request::Dropped;
use super::udp::SLOTS;
use crate::metrics::{UDP_RESULTS, UdpResult, add};

/// Datagrams one loop iteration takes before it turns to its connections (the rest in the next one).
const DATAGRAMS_PER_ITERATION: usize = 1024;

impl Worker {
    /// Takes waiting datagrams (at most `DATAGRAMS_PER_ITERATION`) into the batch; the group commit covers them
    /// like requests' events. Edge-triggered: a short `recvmmsg` means the queue was empty, and the next
    /// datagram raises a new edge.
    pub(super) fn receive_datagrams(&mut self) {
        let Some(udp) = self.udp.as_mut() else {
            return;
        };
        let (requests, batch) = (&mut self.requests, &mut self.batch);
        let mut counts = [0u64; UDP_RESULTS.len()];
        let mut taken = 0;
        self.udp_pending = false;
        loop {
            let received = udp.receive(|datagram| {
                let result = match datagram.payload {
                    None => UdpResult::Truncated,
                    Some(payload) => match requests.ingest_datagram(datagram.from, payload, batch) {
                        Ok(_) => UdpResult::Stored,
                        Err(Dropped::Malformed) => UdpResult::Malformed,
                        Err(Dropped::Unauthorized) => UdpResult::Unauthorized,
                        Err(Dropped::Refused) => UdpResult::Refused,
                    },
                };
                counts[result as usize] += 1;
            });
            match received {
                Ok(n) if n < SLOTS => break,
                Ok(n) => {
                    taken += n;
                    if taken >= DATAGRAMS_PER_ITERATION {
                        self.udp_pending = true;
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(worker = self.index, error = %e, "recvmmsg failed");
                    break;
                }
            }
        }
        // Stored ones are counted by the group commit, once their events are in the spool.
        self.udp_batched += std::mem::take(&mut counts[UdpResult::Stored as usize]);
        let metrics = &self.shared.workers[self.index];
        for (counter, n) in metrics.udp_datagrams.iter().zip(counts) {
            if n > 0 {
                add(counter, n);
            }
        }
        metrics.udp_kernel_drops.store(u64::from(udp.kernel_drops), std::sync::atomic::Ordering::Relaxed);
    }
}
