//! A name's first answer, read before the connect knows which path it takes: one address at
//! once is dialed as a literal is; anything else goes to the general path with what was read
//! put back in front of the rest.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Stream, StreamExt};
use tokio::time::Instant;

use crate::connector::history::{HostKey, Recalled};
use crate::resolve::answers::{Answer, Answering};

/// What a name's first answer says.
pub(crate) enum Heard {
    /// The whole answer at once, one address that the caller's `dialable` allowed: all the
    /// general path would dial, since it reads nothing after an answer for every family.
    Alone(SocketAddr),
    /// Anything else: the answer read (none, if the answers ended without one).
    More(Option<Answer>),
}

/// Waits for the first of `answers` and tells whether it is one address at once.
///
/// # Cancel safety
///
/// Not cancel safe: an answer read when the future is dropped is lost.
pub(crate) async fn first_answer(
    answers: &mut Answering<'_>,
    dialable: impl Fn(&SocketAddr) -> bool,
) -> Heard {
    match answers.next().await {
        Some(first) => match lone_address(&first).filter(dialable) {
            Some(addr) => Heard::Alone(addr),
            None => Heard::More(Some(first)),
        },
        None => Heard::More(None),
    }
}

/// The one address of an answer for both families at once that holds exactly one.
fn lone_address(answer: &Answer) -> Option<SocketAddr> {
    match (&answer.family, &answer.addrs, &answer.service) {
        (None, Ok(addrs), None) => match addrs.as_slice() {
            [one] => Some(*one),
            _ => None,
        },
        _ => None,
    }
}

/// A connect that read its first answer and goes on on the general path: when it began, what
/// the winner memory told it, and its answers, the one read first. One allocation carries it
/// all and is the general path's stream of answers.
pub(crate) struct Begun<'a> {
    pub(crate) began: Instant,
    /// The memory's key and what it recalled, taken by the general path instead of asking
    /// again.
    pub(crate) memory: Option<(Option<HostKey>, Option<Recalled>)>,
    read: Option<Answer>,
    /// `None` once the answers ended: a stream is not polled past its end.
    rest: Option<Answering<'a>>,
}

impl<'a> Begun<'a> {
    pub(crate) fn new(
        began: Instant,
        memory: (Option<HostKey>, Option<Recalled>),
        read: Option<Answer>,
        rest: Answering<'a>,
    ) -> Self {
        // Answers that ended before the first answer have nothing more to give.
        let ended = read.is_none();
        Self {
            began,
            memory: Some(memory),
            read,
            rest: (!ended).then_some(rest),
        }
    }
}

impl Stream for Begun<'_> {
    type Item = Answer;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Answer>> {
        let this = self.get_mut();
        if let Some(answer) = this.read.take() {
            return Poll::Ready(Some(answer));
        }
        let Some(rest) = &mut this.rest else {
            return Poll::Ready(None);
        };
        let next = ready!(rest.poll_next_unpin(cx));
        if next.is_none() {
            this.rest = None;
        }
        Poll::Ready(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn ports(answer: &Answer) -> Vec<u16> {
        let addrs = answer.addrs.as_ref().unwrap();
        addrs.iter().map(SocketAddr::port).collect()
    }

    #[tokio::test]
    async fn one_address_at_once_is_alone_whatever_follows() {
        let given = [addr(1), addr(2)].map(|addr| Answer::all(Ok(vec![addr])));
        let mut answers: Answering<'_> = Box::pin(stream::iter(given));
        let heard = first_answer(&mut answers, |_| true).await;
        assert!(matches!(heard, Heard::Alone(a) if a == addr(1)));
    }

    #[tokio::test]
    async fn a_refused_or_shared_or_partial_first_answer_is_not_alone() {
        let cases = [
            (Answer::all(Ok(vec![addr(1)])), false),
            (Answer::all(Ok(vec![addr(1), addr(2)])), true),
            (Answer::all(Ok(Vec::new())), true),
            (Answer::ipv4(Ok(vec![addr(1)])), true),
            (Answer::ipv6(Ok(vec![addr(1)])), true),
        ];
        for (given, allowed) in cases {
            let mut answers: Answering<'_> = Box::pin(stream::iter([given]));
            let Heard::More(read) = first_answer(&mut answers, |_| allowed).await else {
                panic!("taken as alone");
            };
            assert!(read.is_some(), "the answer read is handed on");
        }
    }

    #[tokio::test]
    async fn the_general_path_reads_what_was_read_then_the_rest() {
        let given = [1, 2, 3].map(|port| Answer::ipv4(Ok(vec![addr(port)])));
        let mut answers: Answering<'_> = Box::pin(stream::iter(given));
        let Heard::More(read) = first_answer(&mut answers, |_| true).await else {
            panic!("taken as alone");
        };
        let begun = Begun::new(Instant::now(), (None, None), read, answers);
        let replayed: Vec<_> = begun.collect().await;
        let replayed: Vec<_> = replayed.iter().map(ports).collect();
        assert_eq!(replayed, [[1], [2], [3]]);
    }

    #[tokio::test]
    async fn answers_that_ended_at_once_are_not_polled_again() {
        let mut answers: Answering<'_> = Box::pin(stream::iter(Vec::<Answer>::new()));
        let Heard::More(read) = first_answer(&mut answers, |_| true).await else {
            panic!("taken as alone");
        };
        let begun = Begun::new(
            Instant::now(),
            (None, None),
            read,
            Box::pin(stream::poll_fn(|_| -> Poll<Option<Answer>> {
                panic!("polled past its end")
            })),
        );
        assert_eq!(begun.collect::<Vec<_>>().await.len(), 0);
    }
}
