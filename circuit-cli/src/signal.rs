//! The signals that stop a long-running command cleanly: SIGINT (Ctrl-C)
//! and SIGTERM (`kill`, a service manager's stop).

/// Listens for the stop signals from the moment it is made: from then on
/// they no longer end the process the default way, and one that arrives
/// before [`requested`](Stop::requested) is awaited is kept for it.
#[derive(Debug)]
pub struct Stop {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Stop {
    /// Starts listening for SIGINT and SIGTERM (Ctrl-C elsewhere). Needs
    /// the runtime; if the handlers cannot be installed, says so and
    /// listens for Ctrl-C alone.
    pub fn listen() -> Stop {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)));
            match signals {
                Ok(signals) => Stop {
                    signals: Some(signals),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGINT and SIGTERM");
                    Stop { signals: None }
                }
            }
        }
        #[cfg(not(unix))]
        Stop {}
    }

    /// Resolves with the signal's name when a stop signal arrives; never
    /// if none can be waited for.
    pub async fn requested(&mut self) -> &'static str {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.signals {
            return tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
        }
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(e) => {
                tracing::warn!(error = %e, "cannot wait for Ctrl-C");
                std::future::pending().await
            }
        }
    }
}
