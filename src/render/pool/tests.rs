use super::*;
use std::sync::mpsc;
use std::time::Duration;

#[derive(Debug)]
struct Ok_(u32);
impl Outcome for Ok_ {
    fn outcome(&self) -> &'static str {
        "ok"
    }
}

fn later() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

fn counted(metrics: &Metrics, outcome: &str) -> u64 {
    metrics.jobs.with_label_values(&[outcome]).get()
}

#[tokio::test]
async fn jobs_run_on_named_worker_threads_and_return_results() {
    let pool = Pool::new(2, 4, Metrics::new());
    let rx = pool
        .submit(later(), || {
            Ok_(std::thread::current().name().unwrap().starts_with("magick-") as u32)
        })
        .unwrap();
    assert!(matches!(rx.await.unwrap(), JobResult::Done(Ok_(1))));
    pool.shutdown();
}

#[tokio::test]
async fn a_full_queue_refuses_immediately() {
    let metrics = Metrics::new();
    let pool = Pool::new(1, 1, metrics.clone());
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    let running = pool
        .submit(later(), move || {
            started_tx.send(()).unwrap();
            gate.recv().unwrap();
            Ok_(1)
        })
        .unwrap();
    started.recv().unwrap();
    let queued = pool.submit(later(), || Ok_(2)).unwrap();
    assert_eq!(pool.submit(later(), || Ok_(3)).unwrap_err(), SubmitError::Overloaded);
    assert_eq!(counted(&metrics, "rejected"), 1);
    release.send(()).unwrap();
    assert!(matches!(running.await.unwrap(), JobResult::Done(Ok_(1))));
    assert!(matches!(queued.await.unwrap(), JobResult::Done(Ok_(2))));
    pool.shutdown();
}

#[tokio::test]
async fn a_panicking_job_fails_alone_and_its_worker_is_replaced() {
    let metrics = Metrics::new();
    let pool = Pool::new(2, 4, metrics.clone());
    let rx = pool.submit(later(), || -> Ok_ { panic!("boom") }).unwrap();
    assert!(matches!(rx.await.unwrap(), JobResult::Panicked));
    // The replacement starts asynchronously; wait for it, boundedly.
    for _ in 0..200 {
        if pool.alive() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(pool.alive(), 2);
    assert_eq!(counted(&metrics, "panic"), 1);
    let rx = pool.submit(later(), || Ok_(7)).unwrap();
    assert!(matches!(rx.await.unwrap(), JobResult::Done(Ok_(7))));
    pool.shutdown();
    assert_eq!(pool.alive(), 0);
}

#[tokio::test]
async fn jobs_whose_caller_left_or_whose_deadline_passed_do_not_run() {
    let metrics = Metrics::new();
    let pool = Pool::new(1, 4, metrics.clone());
    let (release, gate) = mpsc::channel::<()>();
    let blocker = pool
        .submit(later(), move || {
            gate.recv().unwrap();
            Ok_(0)
        })
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r1 = Arc::clone(&ran);
    drop(
        pool.submit(later(), move || {
            r1.fetch_add(1, Ordering::SeqCst);
            Ok_(1)
        })
        .unwrap(),
    );
    let r2 = Arc::clone(&ran);
    let expired = pool
        .submit(Instant::now(), move || {
            r2.fetch_add(1, Ordering::SeqCst);
            Ok_(2)
        })
        .unwrap();
    release.send(()).unwrap();
    blocker.await.unwrap();
    assert!(matches!(expired.await.unwrap(), JobResult::Expired));
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(counted(&metrics, "cancelled"), 1);
    assert_eq!(counted(&metrics, "deadline"), 1);
}

#[tokio::test]
async fn shutdown_finishes_queued_jobs_then_refuses_new_ones() {
    let pool = Pool::new(1, 8, Metrics::new());
    let receivers: Vec<_> = (0..5).map(|i| pool.submit(later(), move || Ok_(i)).unwrap()).collect();
    pool.shutdown();
    for (i, rx) in receivers.into_iter().enumerate() {
        assert!(matches!(rx.await.unwrap(), JobResult::Done(Ok_(n)) if n == i as u32));
    }
    assert_eq!(pool.submit(later(), || Ok_(9)).unwrap_err(), SubmitError::ShuttingDown);
}

#[tokio::test]
async fn reserved_slots_count_against_capacity_until_their_job_has_run() {
    let metrics = Metrics::new();
    let pool = Pool::new(1, 1, metrics.clone());
    let a = pool.reserve().unwrap();
    let b = pool.reserve().unwrap();
    assert!(!pool.has_room());
    assert_eq!(pool.reserve().err(), Some(SubmitError::Overloaded));
    assert_eq!(pool.submit(later(), || Ok_(0)).unwrap_err(), SubmitError::Overloaded);
    assert_eq!(counted(&metrics, "rejected"), 2);
    // An unused reservation is returned when dropped...
    drop(a);
    assert!(pool.has_room());
    // ...and a used one when its job has run.
    let rx = pool.submit_in(b, later(), || Ok_(5)).unwrap();
    assert!(matches!(rx.await.unwrap(), JobResult::Done(Ok_(5))));
    // The slot comes back just after the result is sent: wait, boundedly,
    // until both slots are free.
    let mut both = None;
    for _ in 0..200 {
        if let (Ok(c), Ok(d)) = (pool.reserve(), pool.reserve()) {
            both = Some((c, d));
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(both.is_some(), "both slots are free once the job has run");
    drop(both);
    pool.shutdown();
    assert_eq!(pool.reserve().err(), Some(SubmitError::ShuttingDown));
}
