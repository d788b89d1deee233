//! A fixed set of dedicated OS threads behind a bounded queue. All ImageMagick
//! work runs here, never on a tokio worker. The pool itself knows nothing of
//! ImageMagick: it runs closures, which keeps it testable on its own.
//!
//! - A full queue refuses at once (`SubmitError::Overloaded`): the caller
//!   answers 503 instead of waiting without bound.
//! - A job whose caller has gone away before it starts is dropped.
//! - A job whose deadline passed while it waited is not started.
//! - A panicking job fails only its own request; its thread is replaced.

use crate::metrics::Metrics;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tokio::sync::oneshot;

/// How a job ended, as a label of `imaginator_jobs_total`.
pub trait Outcome {
    fn outcome(&self) -> &'static str;
}

#[derive(Debug)]
pub enum JobResult<R> {
    Done(R),
    /// The deadline passed before a worker could start it.
    Expired,
    /// The job panicked; its worker has been replaced.
    Panicked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("all workers are busy and the queue is full")]
    Overloaded,
    #[error("the service is shutting down")]
    ShuttingDown,
}

type Task = Box<dyn FnOnce() -> TaskEnd + Send>;

enum TaskEnd {
    Done,
    Panicked,
}

pub struct Pool {
    sender: Mutex<Option<Sender<Task>>>,
    shared: Arc<Shared>,
    workers: usize,
}

struct Shared {
    receiver: Receiver<Task>,
    metrics: Metrics,
    handles: Mutex<Vec<JoinHandle<()>>>,
    alive: AtomicUsize,
    next_id: AtomicUsize,
}

impl Pool {
    /// Starts `workers` threads with room for `queue` waiting jobs.
    pub fn new(workers: usize, queue: usize, metrics: Metrics) -> Pool {
        let (sender, receiver) = crossbeam_channel::bounded(queue);
        metrics.queue_capacity.set(queue as i64);
        let shared = Arc::new(Shared {
            receiver,
            metrics,
            handles: Mutex::new(Vec::new()),
            alive: AtomicUsize::new(0),
            next_id: AtomicUsize::new(0),
        });
        for _ in 0..workers {
            spawn_worker(&shared);
        }
        Pool {
            sender: Mutex::new(Some(sender)),
            shared,
            workers,
        }
    }

    /// Queues `job` to run on a worker. The receiver yields its result; drop it
    /// to cancel a job that has not started yet.
    pub fn submit<R, F>(&self, deadline: Instant, job: F) -> Result<oneshot::Receiver<JobResult<R>>, SubmitError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Outcome + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let metrics = self.shared.metrics.clone();
        let span = tracing::Span::current();
        let enqueued = Instant::now();
        let task: Task = Box::new(move || {
            let count = |outcome: &str| metrics.jobs.with_label_values(&[outcome]).inc();
            if reply.is_closed() {
                count("cancelled");
                return TaskEnd::Done;
            }
            metrics.job_queue_seconds.observe(enqueued.elapsed().as_secs_f64());
            if Instant::now() >= deadline {
                count("deadline");
                let _ = reply.send(JobResult::Expired);
                return TaskEnd::Done;
            }
            let _entered = span.enter();
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(job));
            metrics.job_run_seconds.observe(started.elapsed().as_secs_f64());
            match result {
                Ok(r) => {
                    count(r.outcome());
                    let _ = reply.send(JobResult::Done(r));
                    TaskEnd::Done
                }
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    tracing::error!(panic = %message, "job panicked; replacing its worker");
                    count("panic");
                    let _ = reply.send(JobResult::Panicked);
                    TaskEnd::Panicked
                }
            }
        });

        let guard = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        let sender = guard.as_ref().ok_or(SubmitError::ShuttingDown)?;
        match sender.try_send(task) {
            Ok(()) => {
                self.shared.metrics.queue_depth.set(sender.len() as i64);
                Ok(result)
            }
            Err(TrySendError::Full(_)) => {
                self.shared.metrics.jobs.with_label_values(&["rejected"]).inc();
                Err(SubmitError::Overloaded)
            }
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::ShuttingDown),
        }
    }

    /// Worker threads currently alive.
    pub fn alive(&self) -> usize {
        self.shared.alive.load(Ordering::SeqCst)
    }

    /// Worker threads configured.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Stops taking jobs, lets the workers finish what is queued, and joins them.
    /// Blocking: call from a blocking context.
    pub fn shutdown(&self) {
        drop(self.sender.lock().unwrap_or_else(|e| e.into_inner()).take());
        loop {
            let handle = self.shared.handles.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match handle {
                Some(h) => {
                    let _ = h.join();
                }
                None => break,
            }
        }
    }
}

fn spawn_worker(shared: &Arc<Shared>) {
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let s = Arc::clone(shared);
    // Count the worker before it runs, so `alive()` is exact as soon as `new` returns.
    s.alive.fetch_add(1, Ordering::SeqCst);
    s.metrics.workers_alive.inc();
    let handle = std::thread::Builder::new()
        .name(format!("magick-{id}"))
        .spawn(move || {
            let mut panicked = false;
            while let Ok(task) = s.receiver.recv() {
                s.metrics.queue_depth.set(s.receiver.len() as i64);
                if let TaskEnd::Panicked = task() {
                    panicked = true;
                    break;
                }
            }
            s.alive.fetch_sub(1, Ordering::SeqCst);
            s.metrics.workers_alive.dec();
            if panicked {
                spawn_worker(&s);
            }
        })
        .expect("spawning a worker thread");
    shared.handles.lock().unwrap_or_else(|e| e.into_inner()).push(handle);
}

#[cfg(test)]
mod tests;
