//! A small HTTP/1.1 keep-alive load generator that, unlike wrk, can write every request's
//! latency with a timestamp, so a benchmark can compare latency *during* an event (a sweep of
//! expired sessions) with latency before it.
//!
//! ```sh
//! loadgen --url http://127.0.0.1:8000/counter/ --cookie sessionid=KEY --connections 8 \
//!         --duration 10 --samples samples.csv [--rate 500]
//! ```
//!
//! Without `--rate` every connection sends its next request as soon as the last one is
//! answered (a closed loop: it saturates the server, and its latency then mostly measures
//! throughput). With `--rate R` every connection sends R requests per second on a fixed
//! schedule (an open loop, as wrk2 does): the latency of a request that had to wait for an
//! earlier, late answer is counted from when it was due, so a stall of the server shows in
//! every request it delayed, not only in the one it held up.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Clone)]
struct Args {
    /// http://host:port/path
    #[arg(long)]
    url: String,
    /// A Cookie header value to send.
    #[arg(long)]
    cookie: Option<String>,
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Write `epoch_us,latency_us,status` per request here.
    #[arg(long)]
    samples: Option<std::path::PathBuf>,
    /// Requests per second per connection, on a fixed schedule; unset: as fast as answered.
    #[arg(long)]
    rate: Option<f64>,
}

struct Sample {
    at_us: u128,
    latency_us: u128,
    status: u16,
}

fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    Ok((host.to_owned(), path))
}

async fn worker(args: Args, index: usize, deadline: Instant) -> Result<Vec<Sample>> {
    let (host, path) = split_url(&args.url)?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n");
    if let Some(c) = &args.cookie {
        request.push_str(&format!("Cookie: {c}\r\n"));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(&host).await?;
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(8192);
    let mut samples = Vec::new();
    let interval = args.rate.map(|r| Duration::from_secs_f64(1.0 / r));
    // Connections start spread over one interval, so their requests do not arrive together.
    let mut due = Instant::now() + interval.map_or(Duration::ZERO, |i| i * index as u32 / args.connections as u32);
    let mut answered = Instant::now();
    while Instant::now() < deadline {
        let start = match interval {
            None => Instant::now(),
            // Behind schedule because the last answer came late: count from when it was due.
            Some(i) if answered > due => {
                let was_due = due;
                due += i;
                was_due
            }
            // On time: tokio's timer may wake up to a millisecond late, which is the load
            // generator's delay, not the server's, so count from the actual send.
            Some(i) => {
                tokio::time::sleep_until(due.into()).await;
                due += i;
                Instant::now()
            }
        };
        let at_us = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() - start.elapsed().as_micros();
        stream.write_all(request.as_bytes()).await?;
        buf.clear();
        let status = read_response(&mut stream, &mut buf).await?;
        answered = Instant::now();
        samples.push(Sample { at_us, latency_us: answered.duration_since(start).as_micros(), status });
    }
    Ok(samples)
}

async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?;
            let status: u16 = head.split(' ').nth(1).context("status")?.parse()?;
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .map_or(Ok(0), |v| v.parse())?;
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    bail!("connection closed");
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(status);
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("connection closed");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let deadline = Instant::now() + Duration::from_secs_f64(args.duration);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.connections).map(|i| tokio::spawn(worker(args.clone(), i, deadline))).collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let errors = all.iter().filter(|s| s.status >= 400).count();
    let mut lat: Vec<u128> = all.iter().map(|s| s.latency_us).collect();
    lat.sort_unstable();
    println!(
        "requests {} req/s {:.0} p50_ms {:.2} p99_ms {:.2} errors {}",
        all.len(),
        all.len() as f64 / elapsed,
        percentile(&lat, 0.5) as f64 / 1000.0,
        percentile(&lat, 0.99) as f64 / 1000.0,
        errors
    );
    if let Some(path) = args.samples {
        let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
        for s in &all {
            writeln!(f, "{},{},{}", s.at_us, s.latency_us, s.status)?;
        }
    }
    Ok(())
}
