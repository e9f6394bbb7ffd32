//! Heap allocations and future size of one `connect_any(SocketAddr)` on the healthy path,
//! counted by a global allocator that counts only on the thread that asks it to.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

use connect_any::{Connector, connect_any};
use tokio::net::TcpListener;

/// Measured on Linux with tokio 1.54 (see BENCHMARKS.md): 1, tokio's registration of the socket
/// with its I/O driver (`TcpStream::connect` makes it too); the bound leaves room for one of ours.
const MAX_ALLOCATIONS: usize = 2;
/// Bytes of the future `connect_any(SocketAddr)` returns: 512 measured.
const MAX_FUTURE_BYTES: usize = 512;

struct Counting;

// Per thread, so that tests running side by side do not count each other's allocations.
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static BYTES: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|count| count.set(count.get() + 1));
            BYTES.with(|bytes| bytes.set(bytes.get() + layout.size()));
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, which is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations and bytes made on this thread while `f` runs.
async fn counted<T>(f: impl Future<Output = T>) -> (T, usize, usize) {
    let (count, bytes) = (ALLOCATIONS.with(Cell::get), BYTES.with(Cell::get));
    COUNTING.with(|c| c.set(true));
    let output = f.await;
    COUNTING.with(|c| c.set(false));
    let count = ALLOCATIONS.with(Cell::get) - count;
    (output, count, BYTES.with(Cell::get) - bytes)
}

/// The runtime each test connects from: allocations are counted on its one thread.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Fifty connects made by `connect` to `listener`'s address: each makes at most `max`
/// allocations on this thread, and none leaves a task behind. One connect before them is not
/// counted: it builds what is made once (the runtime's lazy parts, a default connector, a
/// cache's answer).
async fn fifty_connects_allocate_little<F>(
    label: &str,
    listener: &TcpListener,
    max: usize,
    mut connect: impl FnMut() -> F,
) where
    F: Future<Output = Result<tokio::net::TcpStream, connect_any::ConnectError>>,
{
    drop(connect().await.unwrap());
    drop(listener.accept().await.unwrap());
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = tasks();
    let mut worst = 0;
    for _ in 0..50 {
        let (stream, allocations, bytes) = counted(connect()).await;
        drop(stream.unwrap());
        drop(listener.accept().await.unwrap());
        worst = worst.max(allocations);
        println!("{label}: {allocations} allocations, {bytes} bytes");
    }
    assert!(
        worst <= max,
        "{label}: {worst} allocations, documented at most {max}"
    );
    assert_eq!(tasks(), before, "{label}: no task spawned per connect");
}

#[test]
fn a_healthy_connect_allocates_little_and_spawns_nothing() {
    let runtime = current_thread();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        fifty_connects_allocate_little(
            "connect_any(SocketAddr)",
            &listener,
            MAX_ALLOCATIONS,
            || connect_any(addr),
        )
        .await;

        let future = connect_any(addr);
        let size = std::mem::size_of_val(&future);
        drop(future);
        let connector = Connector::new();
        let configured = connector.connect(addr);
        let configured_size = std::mem::size_of_val(&configured);
        drop(configured);
        let tokio_size = std::mem::size_of_val(&tokio::net::TcpStream::connect(addr));
        println!(
            "future sizes: connect_any {size} bytes, Connector::connect {configured_size} bytes, \
             tokio TcpStream::connect {tokio_size} bytes"
        );
        assert!(size <= MAX_FUTURE_BYTES, "connect future is {size} bytes");
        assert!(
            configured_size <= MAX_FUTURE_BYTES,
            "Connector::connect future is {configured_size} bytes"
        );
    });
}

/// A resolver that answers every name with one address.
struct One(SocketAddr);

impl connect_any::Resolve for One {
    fn resolve<'a>(&'a self, _host: &'a str, _port: u16) -> connect_any::Resolving<'a> {
        let addr = self.0;
        Box::pin(async move { Ok(vec![addr]) })
    }
}

#[test]
fn a_cached_name_with_one_address_allocates_as_a_literal_does() {
    let runtime = current_thread();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let connector = Connector::new().resolver(One(addr));
        // Parsed once, as a service that dials one upstream keeps it.
        let target = connect_any::Target::parse(&format!("one.test:{}", addr.port())).unwrap();
        // The uncounted first connect fills the cache; no refresh, so no task, for a fresh
        // answer.
        fifty_connects_allocate_little("connect(cached name)", &listener, MAX_ALLOCATIONS, || {
            connector.connect(&target)
        })
        .await;
    });
}

/// What an uncached name costs on the connecting thread, held at six allocations at most. It
/// makes four today (the count is printed), so the bound leaves room for two more before a
/// change shows.
#[test]
fn an_uncached_name_allocates_a_bounded_few() {
    const MAX_NAMED_ALLOCATIONS: usize = 6;
    let runtime = current_thread();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let connector = Connector::new().resolver(One(addr)).answer_cache(None);
        let name = format!("one.test:{}", addr.port());
        fifty_connects_allocate_little(
            "connect(uncached name)",
            &listener,
            MAX_NAMED_ALLOCATIONS,
            || connector.connect(name.as_str()),
        )
        .await;
    });
}

/// A pre-resolved list whose first address connects, counted from the first poll (the list
/// is converted when the future is made): the general path's box and tokio's registration
/// of the socket, two. Its log keeps that first attempt inline and allocates nothing, so that
/// a change that makes it allocate again is seen.
#[test]
fn a_list_whose_first_address_connects_allocates_nothing_for_its_log() {
    const MAX_LIST_ALLOCATIONS: usize = 2;
    let runtime = current_thread();
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        // Never dialed while the first connects within the 250 ms stagger.
        let second = SocketAddr::from(([127, 0, 0, 2], addr.port()));
        let connector = Connector::new();
        fifty_connects_allocate_little(
            "connect([first, second])",
            &listener,
            MAX_LIST_ALLOCATIONS,
            || connector.connect([addr, second]),
        )
        .await;
    });
}
