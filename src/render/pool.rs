//! A fixed set of dedicated OS threads behind a bounded queue. All ImageMagick
//! work runs here, never on a tokio worker. The pool itself knows nothing of
//! ImageMagick: it runs closures, which keeps it testable on its own.
//!
//! - Capacity is counted in slots (a running or waiting job): `workers +
//!   queue` of them. A request that carries a body reserves its slot when it
//!   arrives (`reserve`), before reading the body, so a full pool answers 503
//!   at once; other callers reserve when they submit. No slot: refused at
//!   once (`SubmitError::Overloaded`), never an unbounded wait.
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

/// A reserved place in the pool: one job, running or waiting. Returned when
/// dropped (after the job it was spent on has run, or unused).
pub struct Slot {
    shared: Arc<Shared>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.shared.slots.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Shared {
    receiver: Receiver<Task>,
    /// Slots reserved now, and how many there are (`workers + queue`).
    slots: AtomicUsize,
    capacity: usize,
    metrics: Metrics,
    handles: Mutex<Vec<JoinHandle<()>>>,
    alive: AtomicUsize,
    next_id: AtomicUsize,
}

impl Pool {
    /// Starts `workers` threads with room for `queue` waiting jobs.
    pub fn new(workers: usize, queue: usize, metrics: Metrics) -> Pool {
        // Slots bound what is queued, so the channel never refuses.
        let capacity = workers + queue;
        let (sender, receiver) = crossbeam_channel::bounded(capacity);
        metrics.queue_capacity.set(queue as i64);
        let shared = Arc::new(Shared {
            receiver,
            slots: AtomicUsize::new(0),
            capacity,
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

    /// Reserves a slot for a job to be submitted later with `submit_in`, or
    /// refuses at once when every slot is taken (counted as `rejected`).
    pub fn reserve(&self) -> Result<Slot, SubmitError> {
        if self.sender.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return Err(SubmitError::ShuttingDown);
        }
        let s = &self.shared;
        let taken = s.slots.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < s.capacity).then_some(n + 1)
        });
        match taken {
            Ok(_) => Ok(Slot { shared: Arc::clone(s) }),
            Err(_) => {
                s.metrics.jobs.with_label_values(&["rejected"]).inc();
                Err(SubmitError::Overloaded)
            }
        }
    }

    /// Whether a slot is free now (a hint: another caller may take it first).
    pub fn has_room(&self) -> bool {
        self.shared.slots.load(Ordering::SeqCst) < self.shared.capacity
    }

    /// Queues `job` to run on a worker. The receiver yields its result; drop it
    /// to cancel a job that has not started yet.
    pub fn submit<R, F>(&self, deadline: Instant, job: F) -> Result<oneshot::Receiver<JobResult<R>>, SubmitError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Outcome + Send + 'static,
    {
        let slot = self.reserve()?;
        self.submit_in(slot, deadline, job)
    }

    /// Queues `job` in a slot reserved earlier (`reserve`); the slot is
    /// returned when the job has run or been dropped.
    pub fn submit_in<R, F>(
        &self,
        slot: Slot,
        deadline: Instant,
        job: F,
    ) -> Result<oneshot::Receiver<JobResult<R>>, SubmitError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Outcome + Send + 'static,
    {
        let (reply, result) = oneshot::channel();
        let metrics = self.shared.metrics.clone();
        let span = tracing::Span::current();
        let enqueued = Instant::now();
        let task: Task = Box::new(move || {
            let _slot = slot;
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
            let result = {
                // What the job holds while it runs is work in flight, left
                // out of the heap at rest (`memory::work`).
                let _work = crate::memory::work::track();
                catch_unwind(AssertUnwindSafe(job))
            };
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
