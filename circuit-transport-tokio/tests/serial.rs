//! Links over a serial device (`serial:PATH?baud=N`, the `serial`
//! feature), tested over a pseudo-terminal pair: the dialling node opens
//! the terminal end as its serial device; the other node links over the
//! pair's controlling end. Closing the controlling end is a device that
//! disappears.

mod common;

use std::fs::File;

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_transport::net::spawn_link;
use circuit_transport_tokio::{connect, tokio_io, Shutdown, TokioRuntime, TransportError};
use common::{leaf, reachable, run, unreachable};
use futures::StreamExt;
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The controlling end of a pseudo-terminal pair, non-blocking, with
/// futures-io's traits (async-io's reactor, which runs on a thread of its
/// own; tokio's `AsyncFd` is `unsafe` to make). Dropping it closes it.
type Controller = async_io::Async<File>;

/// A pseudo-terminal pair: its controlling end, and the path of its
/// terminal end (the "serial device").
fn pty_pair() -> (Controller, String) {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let controller = openpt(flags).expect("openpt");
    grantpt(&controller).expect("grantpt");
    unlockpt(&controller).expect("unlockpt");
    let path = ptsname(&controller, Vec::new()).expect("ptsname");
    let controller = async_io::Async::new(File::from(controller)).expect("async-io");
    (controller, path.into_string().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serial_link_carries_streams_and_ends_when_the_device_disappears() {
    run(async {
        let (controller, device) = pty_pair();
        let (far, _, mut incoming) = leaf("far");
        tokio::spawn(async move {
            while let Some(stream) = incoming.next().await {
                let (mut read, mut write) = tokio::io::split(tokio_io(stream.stream));
                tokio::spawn(async move {
                    tokio::io::copy(&mut read, &mut write).await?;
                    write.shutdown().await
                });
            }
        });
        let (near, mut peers, _) = leaf("near");
        let link = connect(&near, format!("serial:{device}?baud=115200"))
            .await
            .unwrap();
        // Linked once the device is open: the controlling end of a pair
        // whose terminal end no one holds reads as an error.
        let runtime = TokioRuntime::new();
        let shutdown = Shutdown::new();
        let far_link = spawn_link(
            &runtime,
            &far,
            controller,
            Role::Server,
            Quality::USB,
            &shutdown,
        );
        reachable(&mut peers, "far").await;
        let mut stream = tokio_io(near.connect_to_peer("far").await.unwrap());
        let sent: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let (mut read, mut write) = tokio::io::split(&mut stream);
        let (_, echo) = tokio::join!(
            async {
                write.write_all(&sent).await.unwrap();
                write.shutdown().await.unwrap();
            },
            async {
                let mut echo = Vec::new();
                read.read_to_end(&mut echo).await.unwrap();
                echo
            }
        );
        assert!(echo == sent, "the echo over the serial link differs");
        drop(stream);

        // The device disappears: the far end closes, the link ends with an
        // error and the near node lives on.
        far_link.abort();
        let _ = far_link.await;
        unreachable(&mut peers, "far").await;
        let e = link.join().await.unwrap_err();
        assert!(matches!(e, TransportError::Link(_)), "{e:?}");
        assert_eq!(near.reachable_peers().len(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_missing_serial_device_is_a_connect_error() {
    let (node, _, _) = leaf("near");
    let e = connect(&node, "serial:/dev/circuit-no-such-tty?baud=9600")
        .await
        .unwrap_err();
    assert!(matches!(e, TransportError::Connect { .. }), "{e:?}");
}
