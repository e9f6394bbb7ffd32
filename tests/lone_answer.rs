//! A name whose resolver answers one address at once is dialed as a literal is, without the
//! general path (on a connector without the answer cache or a bound). What it tells the
//! winner memory, and what any other first answer hands the general path, must be what the
//! general path would have done. On the paused clock.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use common::{Answers, Script, Step, TimedParts, ms, tried, v4, v6};
use connect_any::{Answer, Connector, Resolve};

fn uncached(resolver: impl Resolve) -> Connector {
    Connector::new().resolver(resolver).answer_cache(None)
}

#[tokio::test(start_paused = true)]
async fn a_lone_answers_winner_is_remembered_for_when_the_name_has_more() {
    let answers = Answers::with(&[("moving.test", &[v4(2)])]);
    let connector = uncached(answers.clone());
    let alone = Script::new(&[(v4(2), Step::Connect(ms(1)))]);
    let won = connector
        .connect_with("moving.test:1", alone.dialer())
        .await;
    assert_eq!(won.unwrap().addr, v4(2));

    answers.set("moving.test", &[v4(1), v4(2)]);
    let both = Script::new(&[(v4(1), Step::Hang), (v4(2), Step::Connect(ms(1)))]);
    let won = connector.connect_with("moving.test:1", both.dialer()).await;
    assert_eq!(won.unwrap().addr, v4(2));
    assert_eq!(
        both.starts(),
        [(v4(2), ms(0))],
        "the remembered winner went first, and the hanging address was never dialed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lone_answer_that_fails_is_forgotten_and_its_error_names_it() {
    let answers = Answers::with(&[("moving.test", &[v4(1), v4(2)])]);
    let connector = uncached(answers.clone());
    let learn = Script::new(&[
        (v4(1), Step::Fail(ms(1), ErrorKind::ConnectionRefused)),
        (v4(2), Step::Connect(ms(1))),
    ]);
    connector
        .connect_with("moving.test:1", learn.dialer())
        .await
        .unwrap();

    answers.set("moving.test", &[v4(2)]);
    let broken = Script::new(&[(v4(2), Step::Fail(ms(3), ErrorKind::ConnectionRefused))]);
    let error = connector
        .connect_with("moving.test:1", broken.dialer())
        .await
        .unwrap_err();
    assert_eq!(tried(&error), [(v4(2), ms(0))]);
    assert_eq!(
        error.attempts()[0].error().kind(),
        ErrorKind::ConnectionRefused
    );

    answers.set("moving.test", &[v4(1), v4(2)]);
    let later = Script::new(&[(v4(1), Step::Connect(ms(1))), (v4(2), Step::Hang)]);
    connector
        .connect_with("moving.test:1", later.dialer())
        .await
        .unwrap();
    assert_eq!(
        later.starts()[0].0,
        v4(1),
        "forgotten: the resolver's order again"
    );
}

/// The answers as the test scripts them, each at its time (ms) after the lookup began.
fn parts(parts: Vec<(u64, Answer)>) -> TimedParts {
    let parts = parts
        .into_iter()
        .map(|(at, answer)| (ms(at), answer))
        .collect();
    TimedParts {
        parts,
        then_hangs: false,
    }
}

/// How each address's attempt goes.
type Dials = Vec<(SocketAddr, Step)>;

/// What a connect did, to compare the two paths by: the winner or the error, and every
/// attempt's start.
async fn connect(connector: &Connector, dials: &[(SocketAddr, Step)]) -> String {
    let script = Script::new(dials);
    let outcome = connector
        .connect_with("parts.test:1", script.dialer())
        .await;
    let outcome = outcome.map(|won| won.addr);
    format!("{outcome:?}, started {:?}", script.starts())
}

#[tokio::test(start_paused = true)]
async fn a_first_answer_goes_as_the_general_path_would_have_taken_it() {
    let refused = || Step::Fail(ms(3), ErrorKind::ConnectionRefused);
    let all = |addrs: &[SocketAddr]| Answer::all(Ok(addrs.to_vec()));
    let cases: Vec<(Vec<(u64, Answer)>, Dials)> = vec![
        // One address at once: nothing after it is read, on either path.
        (
            vec![(0, all(&[v4(1)])), (0, all(&[v4(2)]))],
            vec![(v4(1), Step::Connect(ms(5))), (v4(2), Step::Connect(ms(1)))],
        ),
        (vec![(7, all(&[v4(1)]))], vec![(v4(1), refused())]),
        // Anything else goes on to the general path, the answer read put back in front.
        (
            vec![(0, all(&[v4(1), v4(2)]))],
            vec![(v4(1), Step::Hang), (v4(2), Step::Connect(ms(1)))],
        ),
        (
            vec![
                (0, Answer::ipv4(Ok(vec![v4(1)]))),
                (10, Answer::ipv6(Ok(vec![v6(1)]))),
            ],
            vec![(v4(1), Step::Connect(ms(1))), (v6(1), Step::Connect(ms(1)))],
        ),
        (
            vec![
                (0, Answer::ipv4(Ok(vec![v4(1)]))),
                (90, Answer::ipv6(Ok(vec![v6(1)]))),
            ],
            vec![(v4(1), Step::Hang), (v6(1), Step::Connect(ms(1)))],
        ),
        (vec![(2, all(&[]))], vec![]),
        (
            vec![(2, Answer::all(Err(ErrorKind::NotFound.into())))],
            vec![],
        ),
        (vec![], vec![]),
    ];
    for (answers, dials) in cases {
        let resolver = parts(answers);
        let lone = uncached(resolver.clone());
        // A bound that is never reached keeps a connect off the short paths.
        let general = uncached(resolver).timeout(Duration::from_secs(3600));
        let (lone, general) = (
            connect(&lone, &dials).await,
            connect(&general, &dials).await,
        );
        assert_eq!(lone, general);
    }
}

#[tokio::test(start_paused = true)]
async fn a_lone_address_the_policy_refuses_is_refused_as_on_the_general_path() {
    let connector = uncached(Answers::with(&[("denied.test", &[v4(1)])]))
        .address_policy(connect_any::AddressPolicy::deny_non_public());
    let script = Script::new(&[(v4(1), Step::Connect(ms(1)))]);
    let error = connector
        .connect_with("denied.test:1", script.dialer())
        .await
        .unwrap_err();
    assert!(
        matches!(error, connect_any::ConnectError::Denied { .. }),
        "{error:?}"
    );
    assert!(script.starts().is_empty(), "nothing was dialed");
}
