//! The prediction log's writer thread: handlers hand records over a bounded channel and never
//! wait for the disk; when the writer falls behind, records are dropped and counted.

use std::path::Path;
use std::sync::Arc;

use crossbeam_channel::{Sender, TrySendError};
use pipeline::predlog::{PredLogError, Record, Writer};

use crate::metrics::Metrics;

const QUEUE: usize = 16 * 1024;

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
