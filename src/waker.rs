//! The trigger's read side in the dispatcher map: when a worker pulls the
//! trigger, this handler resets it and asks the map to evaluate every
//! connection the workers named (see `trigger.rs` for why no wake-up is
//! lost). It knows nothing of what the connections are.
//!
//! Thread: the I/O thread.

use std::os::fd::RawFd;
use std::sync::Arc;

use crate::dispatcher::{Cx, Dispatcher, Progress, Role, Token};
use crate::trigger::Notifier;

/// The trigger's read side in the map: takes the workers' notifications.
#[derive(Debug)]
pub(crate) struct TriggerDispatcher {
    notifier: Arc<Notifier>,
    taken: Vec<Token>,
}

impl TriggerDispatcher {
    pub(crate) fn new(notifier: Arc<Notifier>) -> TriggerDispatcher {
        TriggerDispatcher {
            notifier,
            taken: Vec::new(),
        }
    }
}

impl<E> Dispatcher<E> for TriggerDispatcher {
    fn fd(&self) -> RawFd {
        self.notifier.trigger().fd()
    }

    fn role(&self) -> Role {
        Role::Trigger
    }

    fn readable(&mut self, _cx: &mut Cx<'_, E>) -> bool {
        true
    }

    fn writable(&mut self, _cx: &mut Cx<'_, E>) -> bool {
        false
    }

    fn handle_read(&mut self, cx: &mut Cx<'_, E>) -> Progress {
        // An eventfd watched edge-triggered signals each write anew, so it
        // need not be read; a pipe, or any level-triggered poller, must be
        // drained.
        self.notifier.trigger().reset(!cx.edge_triggered);
        self.notifier.take(&mut self.taken);
        for t in self.taken.drain(..) {
            cx.wake(t);
        }
        Progress::Drained
    }

    fn handle_write(&mut self, _cx: &mut Cx<'_, E>) -> Progress {
        Progress::Done
    }

    fn handle_close(&mut self, _cx: &mut Cx<'_, E>) {}
}
