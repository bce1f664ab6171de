//! One module per subcommand, each with a `run(args, timeout)`.

pub mod bench;
pub mod cat;
pub mod demo;
pub mod forward;
pub mod node;
pub mod routes;
