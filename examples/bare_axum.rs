//! The ceiling for cache hits in the benchmark: a bare axum server answering
//! every GET with one fixed in-memory body, on the same runtime and allocator
//! defaults as imaginator. `cargo run --release --example bare_axum -- ADDR FILE`

use axum::Router;
use axum::http::header;
use bytes::Bytes;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:3100".into());
    let file = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: bare_axum ADDR FILE"))?;
    let body = Bytes::from(std::fs::read(file)?);
    let app = Router::new().fallback(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "image/jpeg")], body) }
    });
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
