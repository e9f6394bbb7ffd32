//! Refreshing a stale answer: one lookup per name in a task of its own, bounded by the
//! resolve timeout, whose answers update the cache and reach every connect racing on the
//! stale answer meanwhile.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::connector::history::HostKey;
use crate::limits::deadline_after;
use crate::resolve::SharedResolver;
use crate::resolve::answers::{Answer, Answering};
use crate::resolve::cache::Cache;

/// What a refresh has heard so far.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    answers: Vec<Answer>,
    done: bool,
}

/// A refresh the cache has marked in flight, for the connect that found it missing to start.
#[derive(Debug)]
pub(crate) struct RefreshStart {
    pub(super) id: u64,
    pub(super) sender: watch::Sender<Progress>,
}

/// What a refresh asks, of whom, and for how long.
#[derive(Debug)]
pub(crate) struct Refresh {
    pub(crate) cache: Arc<Cache>,
    pub(crate) key: HostKey,
    pub(crate) name: Arc<str>,
    pub(crate) port: u16,
    pub(crate) resolver: SharedResolver,
    pub(crate) timeout: Option<Duration>,
}

/// Starts `refresh` in a task of its own: it outlives the connect that started it, and ends
/// when the resolver's answers end or the resolve timeout passes (without one, when the
/// resolver gives up). Must be called within a tokio runtime.
pub(crate) fn refresh(start: RefreshStart, refresh: Refresh) {
    let Refresh {
        cache,
        key,
        name,
        port,
        resolver,
        timeout,
    } = refresh;
    let RefreshStart { id, sender } = start;
    tracing::debug!(host = %name, port, "answer refresh started");
    tokio::spawn(async move {
        // Cleared however the task ends: answered, timed out, panicked in the resolver, or
        // dropped with its runtime.
        let in_flight = InFlight {
            cache: cache.clone(),
            key: key.clone(),
            id,
        };
        let began = Instant::now();
        let mut answers = resolver.resolve_in_parts(&name, port);
        let mut answered = false;
        let reading = async {
            while let Some(answer) = answers.next().await {
                let now = Instant::now();
                answered |= match &answer.addrs {
                    Ok(_) => true,
                    Err(error) => error.kind() == std::io::ErrorKind::NotFound,
                };
                cache.record(&key, &answer, now);
                sender.send_modify(|progress| progress.answers.push(answer));
            }
        };
        let ended = match deadline_after(began, timeout) {
            Some(deadline) => tokio::time::timeout_at(deadline, reading).await.is_ok(),
            None => {
                reading.await;
                true
            }
        };
        sender.send_modify(|progress| progress.done = true);
        drop(in_flight);
        let elapsed = began.elapsed();
        match (answered, ended) {
            (true, _) => tracing::debug!(host = %name, port, ?elapsed, "answer refresh finished"),
            (false, true) => tracing::debug!(host = %name, port, ?elapsed, "answer refresh failed"),
            (false, false) => {
                tracing::debug!(host = %name, port, ?elapsed, "answer refresh timed out");
            }
        }
    });
}

/// Marks a name's refresh as ended, when dropped, so that another may start.
struct InFlight {
    cache: Arc<Cache>,
    key: HostKey,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.cache.refreshed(&self.key, self.id, Instant::now());
    }
}

/// The answers of the refresh behind `progress`, as a resolver's stream: those heard so far
/// at once, then each as it comes, ending when the refresh does.
pub(crate) fn subscribe(progress: watch::Receiver<Progress>) -> Answering<'static> {
    let next = move |(mut progress, index, closed): (watch::Receiver<Progress>, usize, bool)| async move {
        let mut closed = closed;
        loop {
            {
                let heard = progress.borrow_and_update();
                if let Some(answer) = heard.answers.get(index) {
                    let answer = answer.clone();
                    drop(heard);
                    return Some((answer, (progress, index + 1, closed)));
                }
                if heard.done || closed {
                    return None;
                }
            }
            // Closed without `done`: the task was dropped with its runtime.
            closed = progress.changed().await.is_err();
        }
    };
    Box::pin(futures_util::stream::unfold((progress, 0, false), next))
}
