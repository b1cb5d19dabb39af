//! The worker pool: waitress's `ThreadedTaskDispatcher`, mirrored.
//!
//! One `Mutex` guards the thread set, the task queue (a `VecDeque`),
//! `stop_count` and `active_count`; two `Condvar`s on it, `queue_cv` (work
//! arrived, or threads must stop) and `thread_exit_cv` (a thread stopped).
//! Threads are named `maitred-N` (waitress: `waitress-N`), numbered with the
//! lowest free number, and can be added or removed while the server runs
//! ([`ThreadedTaskDispatcher::set_thread_count`]).
//!
//! Two refinements over waitress, neither visible in behaviour:
//!
//! * [`add_tasks`](ThreadedTaskDispatcher::add_tasks) signals `queue_cv` only
//!   when a thread is waiting on it and no signal is already on its way
//!   (`pending_wakeups`), and a woken thread that leaves work in the queue
//!   wakes the next one. `active_count` already tracks waiting threads (a
//!   thread leaves the count while it waits); a thread that is running a
//!   task checks the queue before it waits, so no task is missed. This saves
//!   `futex` system calls whenever the workers are busy, and a burst of
//!   tasks no longer wakes every idle thread at once to fight over the
//!   queue.
//! * Instead of waitress's "Task queue depth is N" for every queued task,
//!   one warning a minute at most says what the operator can do: "N
//!   requests waiting for the T worker threads; the oldest waited S s; see
//!   max_queue_depth, max_queue_wait and threads".
//!
//! Thread: both: the I/O thread queues tasks; the pool's own threads run
//! them.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often, at most, the pool warns that requests wait for threads.
const QUEUE_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Work for the pool.
pub trait Task: Send + Sized + 'static {
    /// Runs the task on a worker thread; `queued_at` is when it entered the
    /// queue. A task it returns goes back to the end of the queue (a
    /// connection that answered its share of pipelined requests lets the
    /// others go first).
    fn service(self, queued_at: Instant) -> Option<Self>;
    /// Called instead of [`service`](Task::service) for tasks still queued
    /// when the pool shuts down with `cancel_pending`.
    fn cancel(self);
}

struct State<T> {
    threads: BTreeSet<usize>,
    /// Tasks with the moment they were queued.
    queue: VecDeque<(T, Instant)>,
    stop_count: usize,
    active_count: usize,
    /// Threads signalled on `queue_cv` that have not woken up yet.
    pending_wakeups: usize,
    last_depth_warning: Option<Instant>,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    /// `state.queue.len()`, stored under the lock whenever it changes, so
    /// that the I/O thread can shed load without taking the lock (a stale
    /// value by one task is harmless there).
    queued: AtomicUsize,
    queue_cv: Condvar,
    thread_exit_cv: Condvar,
    name: String,
}

/// A fixed (but resizable) set of worker threads taking tasks from one
/// queue in order.
pub struct ThreadedTaskDispatcher<T: Task> {
    shared: Arc<Shared<T>>,
}

impl<T: Task> fmt::Debug for ThreadedTaskDispatcher<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.lock();
        f.debug_struct("ThreadedTaskDispatcher")
            .field("threads", &st.threads.len())
            .field("queued", &st.queue.len())
            .field("stop_count", &st.stop_count)
            .field("active_count", &st.active_count)
            .finish()
    }
}

impl<T: Task> Clone for ThreadedTaskDispatcher<T> {
    /// Another handle on the same pool.
    fn clone(&self) -> Self {
        ThreadedTaskDispatcher {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Task> Default for ThreadedTaskDispatcher<T> {
    fn default() -> Self {
        ThreadedTaskDispatcher::new()
    }
}

impl<T: Task> ThreadedTaskDispatcher<T> {
    /// A pool with no threads yet; call
    /// [`set_thread_count`](Self::set_thread_count).
    pub fn new() -> ThreadedTaskDispatcher<T> {
        ThreadedTaskDispatcher::with_name("maitred")
    }

    /// Like [`new`](Self::new), naming threads `{name}-N`.
    pub fn with_name(name: &str) -> ThreadedTaskDispatcher<T> {
        ThreadedTaskDispatcher {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    threads: BTreeSet::new(),
                    queue: VecDeque::new(),
                    stop_count: 0,
                    active_count: 0,
                    pending_wakeups: 0,
                    last_depth_warning: None,
                }),
                queued: AtomicUsize::new(0),
                queue_cv: Condvar::new(),
                thread_exit_cv: Condvar::new(),
                name: name.to_string(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        crate::lock(&self.shared.state)
    }

    /// Number of worker threads (including those asked to stop that have
    /// not stopped yet).
    #[cfg(test)]
    pub fn thread_count(&self) -> usize {
        self.lock().threads.len()
    }

    /// Tasks waiting for a thread.
    #[cfg(test)]
    pub fn queue_len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Tasks waiting for a thread (without the lock; see `Shared::queued`).
    pub(crate) fn queued(&self) -> usize {
        self.shared.queued.load(Ordering::Relaxed)
    }

    /// Threads, busy threads and queued tasks, for the statistics.
    pub(crate) fn figures(&self) -> crate::stats::PoolFigures {
        let st = self.lock();
        let threads = st.threads.len().saturating_sub(st.stop_count);
        crate::stats::PoolFigures {
            threads: threads as u64,
            busy: st.active_count.min(threads) as u64,
            queued: st.queue.len() as u64,
        }
    }

    /// Grows or shrinks the pool to `count` threads. New threads start at
    /// once; surplus threads stop when they next look for work (a running
    /// task is never interrupted).
    pub fn set_thread_count(&self, count: usize) {
        let mut st = self.lock();
        let mut running = st.threads.len() - st.stop_count;
        let mut thread_no = 0;
        while running < count {
            while st.threads.contains(&thread_no) {
                thread_no += 1;
            }
            let shared = Arc::clone(&self.shared);
            let no = thread_no;
            let spawned = std::thread::Builder::new()
                .name(format!("{}-{}", self.shared.name, no))
                .spawn(move || handler_thread(&shared, no));
            match spawned {
                Ok(_) => {
                    st.threads.insert(no);
                    st.active_count += 1;
                    running += 1;
                    thread_no += 1;
                }
                Err(e) => {
                    crate::log_error!(
                        "could not start worker thread {}-{}: {}",
                        self.shared.name,
                        no,
                        e
                    );
                    break;
                }
            }
        }
        if running > count {
            st.stop_count += running - count;
            self.shared.queue_cv.notify_all();
        }
    }

    /// Queues a task, waking an idle thread if there is one.
    #[cfg(test)]
    pub fn add_task(&self, task: T) {
        let mut st = self.lock();
        st.queue.push_back((task, Instant::now()));
        self.shared.queued.store(st.queue.len(), Ordering::Relaxed);
        self.wake_locked(st);
    }

    /// Queues several tasks with one acquisition of the lock and at most
    /// one wake-up: the I/O thread hands over the requests of a whole loop
    /// round this way, so that it neither signals nor contends for the
    /// lock once per request.
    pub fn add_tasks(&self, tasks: impl IntoIterator<Item = T>) {
        let mut st = self.lock();
        let before = st.queue.len();
        let now = Instant::now();
        st.queue.extend(tasks.into_iter().map(|t| (t, now)));
        self.shared.queued.store(st.queue.len(), Ordering::Relaxed);
        if st.queue.len() > before {
            self.wake_locked(st);
        }
    }

    fn wake_locked(&self, mut st: MutexGuard<'_, State<T>>) {
        let idle = st
            .threads
            .len()
            .saturating_sub(st.stop_count + st.active_count);
        if idle > 0 && st.pending_wakeups == 0 {
            st.pending_wakeups += 1;
            self.shared.queue_cv.notify_one();
        }
        let depth = st.queue.len();
        if depth > idle {
            let now = Instant::now();
            let due = st
                .last_depth_warning
                .is_none_or(|t| now.duration_since(t) >= QUEUE_WARNING_EVERY);
            if due {
                st.last_depth_warning = Some(now);
                let oldest = st
                    .queue
                    .front()
                    .map_or(Duration::ZERO, |(_, at)| now.duration_since(*at));
                let threads = st.threads.len().saturating_sub(st.stop_count);
                drop(st);
                crate::logging::write(
                    crate::logging::Level::Warning,
                    "maitred.queue",
                    format_args!(
                        "{depth} requests waiting for the {threads} worker threads; the oldest waited {:.1} s; see max_queue_depth, max_queue_wait and threads",
                        oldest.as_secs_f64()
                    ),
                );
            }
        }
    }

    /// Stops every thread, waiting up to `timeout` for running tasks to
    /// finish; with `cancel_pending`, the tasks still queued are cancelled
    /// and `true` is returned. Threads still running at the deadline are
    /// left to finish on their own (a warning says how many).
    pub fn shutdown(&self, cancel_pending: bool, timeout: Duration) -> bool {
        self.set_thread_count(0);
        let expiration = Instant::now() + timeout;
        let mut st = self.lock();
        while !st.threads.is_empty() {
            let now = Instant::now();
            if now >= expiration {
                crate::log_warning!("{} thread(s) still running", st.threads.len());
                break;
            }
            let wait = (expiration - now).min(Duration::from_millis(100));
            st = match self.shared.thread_exit_cv.wait_timeout(st, wait) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        if cancel_pending {
            let pending: Vec<T> = st.queue.drain(..).map(|(t, _)| t).collect();
            self.shared.queued.store(0, Ordering::Relaxed);
            self.shared.queue_cv.notify_all();
            drop(st);
            if !pending.is_empty() {
                crate::log_warning!("Canceling {} pending task(s)", pending.len());
            }
            // Cancelled outside the pool's lock: a task's cancel takes its
            // own locks, and nothing else may then wait on ours.
            for t in pending {
                t.cancel();
            }
            return true;
        }
        false
    }
}

fn handler_thread<T: Task>(shared: &Shared<T>, thread_no: usize) {
    loop {
        let task = {
            let mut st = crate::lock(&shared.state);
            while st.queue.is_empty() && st.stop_count == 0 {
                st.active_count -= 1;
                st = match shared.queue_cv.wait(st) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                st.active_count += 1;
                // Spurious wake-ups do not count against a pending signal
                // only while none is pending.
                st.pending_wakeups = st.pending_wakeups.saturating_sub(1);
            }
            if st.stop_count > 0 {
                st.active_count -= 1;
                st.stop_count -= 1;
                st.threads.remove(&thread_no);
                shared.thread_exit_cv.notify_one();
                return;
            }
            let next = st.queue.pop_front();
            shared.queued.store(st.queue.len(), Ordering::Relaxed);
            let Some(task) = next else {
                continue;
            };
            // Work is left and a thread is waiting with no signal on its
            // way: wake it (one at a time, as the queue needs them).
            let idle = st
                .threads
                .len()
                .saturating_sub(st.stop_count + st.active_count);
            if !st.queue.is_empty() && idle > 0 && st.pending_wakeups == 0 {
                st.pending_wakeups += 1;
                shared.queue_cv.notify_one();
            }
            task
        };
        let (task, queued_at) = task;
        match catch_unwind(AssertUnwindSafe(|| task.service(queued_at))) {
            Ok(None) => {}
            Ok(Some(again)) => {
                let mut st = crate::lock(&shared.state);
                st.queue.push_back((again, Instant::now()));
                shared.queued.store(st.queue.len(), Ordering::Relaxed);
            }
            Err(panic) => {
                crate::log_error!(
                    "Exception when servicing a task: {}",
                    crate::logging::escaped(&crate::panic_message(&*panic))
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    struct Job {
        f: Box<dyn FnOnce() + Send>,
        cancelled: Option<Arc<AtomicUsize>>,
    }

    impl Task for Job {
        fn service(self, _queued_at: Instant) -> Option<Job> {
            (self.f)();
            None
        }
        fn cancel(self) {
            if let Some(c) = self.cancelled {
                c.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    fn job(f: impl FnOnce() + Send + 'static) -> Job {
        Job {
            f: Box::new(f),
            cancelled: None,
        }
    }

    fn wait_for(mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "condition not reached in 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn grows_and_shrinks() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(3);
        assert_eq!(d.thread_count(), 3);
        d.set_thread_count(5);
        assert_eq!(d.thread_count(), 5);
        d.set_thread_count(2);
        wait_for(|| d.thread_count() == 2);
        // Whichever threads stopped, their numbers are reused (lowest
        // free first), so four threads are numbered below five.
        d.set_thread_count(4);
        assert_eq!(d.thread_count(), 4);
        let nos: Vec<usize> = d.lock().threads.iter().copied().collect();
        assert_eq!(nos.len(), 4);
        assert!(nos.iter().all(|&n| n < 5), "{nos:?}");
        assert!(d.shutdown(true, Duration::from_secs(5)));
        assert_eq!(d.thread_count(), 0);
    }

    #[test]
    fn runs_tasks_in_queue_order_on_named_threads() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        let (tx, rx) = mpsc::channel();
        // No threads yet: tasks wait in the queue.
        for i in 0..20 {
            let tx = tx.clone();
            d.add_task(job(move || {
                let name = std::thread::current().name().unwrap_or("").to_string();
                tx.send((i, name)).unwrap();
            }));
        }
        assert_eq!(d.queue_len(), 20);
        d.set_thread_count(1);
        let got: Vec<(i32, String)> = (0..20)
            .map(|_| rx.recv_timeout(Duration::from_secs(10)).unwrap())
            .collect();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
        assert!(got.iter().all(|g| g.1 == "maitred-0"));
        d.shutdown(true, Duration::from_secs(5));
    }

    #[test]
    fn a_panicking_task_does_not_kill_its_thread() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(1);
        d.add_task(job(|| panic!("boom")));
        let (tx, rx) = mpsc::channel();
        d.add_task(job(move || tx.send(42).unwrap()));
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), 42);
        assert_eq!(d.thread_count(), 1);
        d.shutdown(true, Duration::from_secs(5));
    }

    #[test]
    fn shutdown_cancels_pending_and_waits_for_running() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(1);
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let finished = Arc::new(AtomicUsize::new(0));
        let f2 = finished.clone();
        d.add_task(job(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            f2.fetch_add(1, Ordering::SeqCst);
        }));
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        let cancelled = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            d.add_task(Job {
                f: Box::new(|| panic!("must not run")),
                cancelled: Some(cancelled.clone()),
            });
        }
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            release_tx.send(()).unwrap();
        });
        assert!(d.shutdown(true, Duration::from_secs(10)));
        releaser.join().unwrap();
        assert_eq!(finished.load(Ordering::SeqCst), 1);
        assert_eq!(cancelled.load(Ordering::SeqCst), 3);
        assert_eq!(d.thread_count(), 0);
        assert_eq!(d.queue_len(), 0);
    }

    #[test]
    fn shutdown_times_out_and_keeps_queue_without_cancel() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(1);
        let (started_tx, started_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        d.add_task(job(move || {
            started_tx.send(()).unwrap();
            let _ = release_rx.recv();
        }));
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        d.add_task(job(|| {}));
        assert!(!d.shutdown(false, Duration::from_millis(50)));
        // The running thread has not exited and the queued task is kept.
        assert_eq!(d.thread_count(), 1);
        assert_eq!(d.queue_len(), 1);
        release_tx.send(()).unwrap();
        wait_for(|| d.thread_count() == 0);
    }

    #[test]
    fn a_batch_of_tasks_runs_after_one_wake() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(2);
        let count = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<Job> = (0..100)
            .map(|_| {
                let c = count.clone();
                job(move || {
                    c.fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        d.add_tasks(jobs);
        wait_for(|| count.load(Ordering::SeqCst) == 100);
        d.shutdown(true, Duration::from_secs(5));
    }

    #[test]
    fn busy_threads_are_not_signalled_but_still_take_work() {
        let d: ThreadedTaskDispatcher<Job> = ThreadedTaskDispatcher::new();
        d.set_thread_count(2);
        let count = Arc::new(AtomicUsize::new(0));
        for _ in 0..1000 {
            let c = count.clone();
            d.add_task(job(move || {
                c.fetch_add(1, Ordering::SeqCst);
            }));
        }
        wait_for(|| count.load(Ordering::SeqCst) == 1000);
        d.shutdown(true, Duration::from_secs(5));
    }
}
