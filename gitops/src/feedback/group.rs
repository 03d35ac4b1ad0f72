//! Group commit: threads that add at once share one locked, fsynced batch.
//!
//! The first thread to find no batch in flight becomes the leader: it takes everything queued,
//! writes it under the store lock, fsyncs the batch's folders (after releasing the OS lock, so
//! another process's batch can start) and hands each thread its own outcome. Threads that
//! arrive meanwhile queue up for the next batch, which is therefore as large as it can be.
//! Every outcome is durable when it is handed out.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::batch::Applied;
use super::prepare::Prepared;
use super::{AddOutcome, FeedbackError};

type Slot = Arc<Mutex<Option<Result<AddOutcome, Arc<FeedbackError>>>>>;

#[derive(Debug, Default)]
pub(crate) struct Group {
    queue: Mutex<Queue>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    pending: Vec<(Prepared, Slot)>,
    leader: bool,
}

impl Group {
    /// Queues `item` and returns its outcome once a batch containing it was written by `write`.
    pub fn submit(
        &self,
        item: Prepared,
        write: impl Fn(Vec<Prepared>) -> Result<Applied, FeedbackError>,
    ) -> Result<AddOutcome, FeedbackError> {
        let slot: Slot = Arc::default();
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        queue.pending.push((item, slot.clone()));
        loop {
            if let Some(result) = slot.lock().unwrap_or_else(PoisonError::into_inner).take() {
                return result.map_err(|e| match Arc::try_unwrap(e) {
                    Ok(e) => e,
                    Err(shared) => FeedbackError::Batch(shared),
                });
            }
            if queue.leader {
                queue = self.done.wait(queue).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            queue.leader = true;
            let batch = std::mem::take(&mut queue.pending);
            drop(queue);
            let (items, slots): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let result = write(items).and_then(Applied::sync);
            match result {
                Ok(outcomes) => {
                    for (slot, outcome) in slots.iter().zip(outcomes) {
                        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Ok(outcome));
                    }
                }
                Err(e) => {
                    let e = Arc::new(e);
                    for slot in &slots {
                        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Err(e.clone()));
                    }
                }
            }
            queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.leader = false;
            self.done.notify_all();
        }
    }
}
