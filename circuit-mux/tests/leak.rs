//! Regression: a link that ends while a stream waits in the ready queue
//! must free the mux (no Arc cycle ReadyQueue <-> StreamWaker).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Wake, Waker};

use circuit_mux::{Config, Mux, Role};

struct Flag;
impl Wake for Flag {
    fn wake(self: Arc<Self>) {}
}

#[test]
fn a_link_dropped_with_a_stream_queued_to_send_frees_its_driver_waker() {
    let flag = Arc::new(Flag);
    let waker = Waker::from(Arc::clone(&flag));
    let mut cx = Context::from_waker(&waker);
    let (a, b) = circuit_stream::duplex_pair(1 << 16);
    let (mux, incoming, mut driver) = Mux::new(a, Role::Client, Config::default());
    let (r, w) = mux.open().unwrap().into_split();
    w.try_write(&[1; 100]).unwrap();
    assert!(Pin::new(&mut driver).poll(&mut cx).is_pending());
    // More bytes after the driver went to sleep: the stream is queued.
    w.try_write(&[2; 100]).unwrap();
    drop(driver);
    drop((mux, incoming, r, w, b));
    assert_eq!(
        Arc::strong_count(&flag),
        2,
        "the driver's waker is still held: the mux's ready queue leaked"
    );
}
