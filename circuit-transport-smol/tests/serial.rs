//! Links over a serial device (`serial:PATH?baud=N`, the `serial`
//! feature) on smol, tested over a pseudo-terminal pair as the tokio
//! transport's test does: the dialling node opens the terminal end as its
//! serial device; the other node links over the pair's controlling end.
//! Closing the controlling end is a device that disappears.

mod common;

use std::fs::File;

use circuit_frame::Quality;
use circuit_mux::Role;
use circuit_transport_smol::{connect, spawn_link, Shutdown, TransportError};
use common::{leaf, reachable, run, unreachable};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};

/// A pseudo-terminal pair: its controlling end, non-blocking on smol's
/// reactor, and the path of its terminal end (the "serial device").
fn pty_pair() -> (smol::Async<File>, String) {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let controller = openpt(flags).expect("openpt");
    grantpt(&controller).expect("grantpt");
    unlockpt(&controller).expect("unlockpt");
    let path = ptsname(&controller, Vec::new()).expect("ptsname");
    let controller = smol::Async::new(File::from(controller)).expect("async-io");
    (controller, path.into_string().unwrap())
}

#[test]
fn a_serial_link_carries_streams_and_ends_when_the_device_disappears() {
    run(async {
        let (controller, device) = pty_pair();
        let (far, _, mut incoming) = leaf("far");
        let echo = smol::spawn(async move {
            while let Some(stream) = incoming.next().await {
                smol::spawn(async move {
                    let (reader, mut writer) = stream.stream.into_split();
                    reader.copy_to(&mut writer).await?;
                    AsyncWriteExt::close(&mut writer).await
                })
                .detach();
            }
        });
        let (near, mut peers, _) = leaf("near");
        let link = connect(&near, format!("serial:{device}?baud=115200"))
            .await
            .unwrap();
        // Linked once the device is open: the controlling end of a pair
        // whose terminal end no one holds reads as an error.
        let shutdown = Shutdown::new();
        let far_link = spawn_link(&far, controller, Role::Server, Quality::USB, &shutdown);
        reachable(&mut peers, "far").await;
        let stream = near.connect_to_peer("far").await.unwrap();
        let sent: Vec<u8> = (0..20_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let (mut read, mut write) = stream.into_split();
        let send = async {
            AsyncWriteExt::write_all(&mut write, &sent).await.unwrap();
            AsyncWriteExt::close(&mut write).await.unwrap();
        };
        let mut echo_bytes = Vec::new();
        let ((), got) = futures::join!(send, read.read_to_end(&mut echo_bytes));
        got.unwrap();
        assert!(echo_bytes == sent, "the echo over the serial link differs");

        // The device disappears: the far end closes, the link ends with an
        // error and the near node lives on.
        drop(far_link.cancel().await);
        unreachable(&mut peers, "far").await;
        let e = link.join().await.unwrap_err();
        assert!(matches!(e, TransportError::Link(_)), "{e:?}");
        assert_eq!(near.reachable_peers().len(), 0);
        drop(echo);
    })
}

#[test]
fn a_missing_serial_device_is_a_connect_error() {
    run(async {
        let (node, _, _) = leaf("near");
        let e = connect(&node, "serial:/dev/circuit-no-such-tty?baud=9600")
            .await
            .unwrap_err();
        assert!(matches!(e, TransportError::Connect { .. }), "{e:?}");
    })
}
