//! Who looks at a connect as it goes: the connector's event hook, and the report being
//! written. Made (and boxed) only when someone looks, so that an unobserved connect pays one
//! word of its future for it.

use std::io;
use std::net::SocketAddr;

use tokio::time::Instant;

use crate::error::ConnectError;
use crate::report::event::{EventKind, Hook, emit};
use crate::report::recording::Recording;
use crate::resolve::answers::Family;
use crate::target::Target;

/// A connect's observer, if it has one.
pub(crate) type Observing<'m> = Option<Box<Observer<'m>>>;

/// See the module's documentation.
#[derive(Debug)]
pub(crate) struct Observer<'m> {
    began: Instant,
    target: &'m Target,
    hook: Option<&'m Hook>,
    /// The report's draft, for a connect that asked for one.
    pub(crate) recording: Option<Recording>,
}

impl<'m> Observer<'m> {
    /// An observer for a connect to `target` that began at `began`, if there is a `hook` to
    /// tell or a `report` to write.
    pub(crate) fn new(
        began: Instant,
        target: &'m Target,
        hook: Option<&'m Hook>,
        report: bool,
    ) -> Observing<'m> {
        let observed = hook.is_some() || report;
        observed.then(|| {
            Box::new(Self {
                began,
                target,
                hook,
                recording: report.then(Recording::default),
            })
        })
    }

    /// Tells the hook, if any, of what `kind` says happened at `now`.
    #[inline]
    pub(crate) fn tell<'e>(&self, now: Instant, kind: impl FnOnce() -> EventKind<'e>) {
        if let Some(hook) = self.hook {
            emit(hook, self.target, now - self.began, kind());
        }
    }

    /// An answer of the resolver arrived at `now`, holding `addrs` addresses.
    pub(crate) fn answer(
        &mut self,
        family: Option<Family>,
        addrs: Result<usize, &io::Error>,
        now: Instant,
    ) {
        if let Some(recording) = &mut self.recording {
            recording.answer(family, addrs, now - self.began);
        }
        self.tell(now, || EventKind::AnswerArrived {
            family,
            addresses: addrs.unwrap_or(0),
            error: addrs.err(),
        });
    }

    /// The connect ended at `now`.
    pub(crate) fn finished(&self, result: Result<SocketAddr, &ConnectError>, now: Instant) {
        self.tell(now, || EventKind::Finished { result });
    }

    /// The connect's target.
    pub(crate) fn target(&self) -> &'m Target {
        self.target
    }
}
