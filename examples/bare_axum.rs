//! The baseline of the HTTP benchmarks: a bare axum plaintext handler, no middleware, no
//! state, on the port given (or a free one, printed). The chat benchmark reports its
//! throughput as a fraction of this one's, measured with the same tool in the same run.
//!
//!     cargo run --release --example bare_axum [PORT]

use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", listener.local_addr()?);
    let app = Router::new().route("/", get(|| async { "ok" }));
    axum::serve(listener, app).await?;
    Ok(())
}
