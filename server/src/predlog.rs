//! The prediction log's writer thread: handlers hand records over a bounded channel and never
//! wait for the disk; when the writer falls behind, records are dropped and counted. It writes
//! in rounds: what is queued, one flush, then a rest of [`REST`], so under load it wakes a few
//! dozen times a second rather than once a request (each wake-up took a core from the requests
//! on a 2-core machine: BENCHMARKS.md, issue 19).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use pipeline::predlog::{PredLogError, Record, Writer};

use crate::metrics::Metrics;

const QUEUE: usize = 16 * 1024;
/// The writer's rest between rounds: what a record may wait before it is written.
const REST: Duration = Duration::from_millis(25);

#[derive(Debug, Clone)]
pub struct PredLog {
    tx: Sender<Record>,
    metrics: Arc<Metrics>,
}

impl PredLog {
    pub fn spawn(dir: &Path, max_bytes: u64, keep: usize, metrics: Arc<Metrics>) -> Result<Self, PredLogError> {
        let mut writer = Writer::open(dir, max_bytes, keep)?;
        let (tx, rx) = crossbeam_channel::bounded::<Record>(QUEUE);
        std::thread::Builder::new()
            .name("prediction-log".into())
            .spawn(move || {
                while let Ok(record) = rx.recv() {
                    let mut result = writer.append(&record);
                    while result.is_ok()
                        && let Ok(more) = rx.try_recv()
                    {
                        result = writer.append(&more);
                    }
                    if let Err(e) = result.and_then(|()| writer.flush()) {
                        tracing::error!("prediction log: {e}");
                    }
                    std::thread::sleep(REST);
                }
            })
            .expect("spawning the prediction log writer");
        Ok(Self { tx, metrics })
    }

    pub fn log(&self, record: Record) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(record) {
            self.metrics.predlog_dropped.inc();
        }
    }
}
