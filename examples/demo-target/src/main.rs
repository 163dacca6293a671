//! Runs the demo target on its own, for trying `smart` by hand.
//!
//! ```sh
//! cargo run -p smart-demo-target -- demo.toml 127.0.0.1:8080
//! ```
//!
//! writes a sample `demo.toml` when the file does not exist, serves on the given address
//! (default `127.0.0.1:8080`), and reloads the file on SIGHUP (`kill -HUP <pid>`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use smart_demo_target::{DemoTarget, SAMPLE_CONFIG};

#[tokio::main]
#[expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a runnable example talks to its user"
)]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let config = PathBuf::from(args.next().unwrap_or_else(|| "demo.toml".to_owned()));
    let addr: SocketAddr = match args
        .next()
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned())
        .parse()
    {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("usage: smart-demo-target [CONFIG] [ADDR]: bad address: {e}");
            return ExitCode::from(2);
        }
    };
    if !config.exists() {
        if let Err(e) = std::fs::write(&config, SAMPLE_CONFIG) {
            eprintln!("cannot write {}: {e}", config.display());
            return ExitCode::from(3);
        }
        println!("wrote a sample config to {}", config.display());
    }
    let target = match DemoTarget::start(&config, addr).await {
        Ok(target) => target,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    };
    if let Err(e) = target.reload_on_sighup() {
        eprintln!("cannot listen for SIGHUP: {e}");
        return ExitCode::from(3);
    }
    println!(
        "demo target on http://{} (pid {}), config {}; reload with kill -HUP {}",
        target.addr(),
        std::process::id(),
        config.display(),
        std::process::id()
    );
    let _ = tokio::signal::ctrl_c().await;
    target.shutdown().await;
    ExitCode::SUCCESS
}
