//! Bounded loopback load for `proof serve` (used by `scripts/load.sh`): N keep-alive
//! HTTP/1.1 connections on one client thread (tokio, current-thread runtime) POST the records of a JSONL file to
//! /v1/adapt in turn for a fixed time, and report requests/s and latency quantiles.
//!
//! Usage: cargo run --release --example serve_load -- ADDR RECORDS.jsonl
//!        [--connections N] [--seconds S] [--token T]
//!
//! Latency is measured from writing a request to reading its last body byte, one
//! request in flight per connection (closed loop, so it is a lower bound on what an
//! open-loop client would see at the same throughput).

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

struct Args {
    addr: String,
    records: String,
    connections: usize,
    seconds: f64,
    token: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut pos = Vec::new();
    let mut a = Args {
        addr: String::new(),
        records: String::new(),
        connections: 4,
        seconds: 10.0,
        token: None,
    };
    while let Some(x) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match x.as_str() {
            "--connections" => {
                a.connections = val("--connections")?.parse().map_err(|e| format!("{e}"))?
            }
            "--seconds" => a.seconds = val("--seconds")?.parse().map_err(|e| format!("{e}"))?,
            "--token" => a.token = Some(val("--token")?),
            _ => pos.push(x),
        }
    }
    if pos.len() != 2 || a.connections == 0 || !(a.seconds > 0.0 && a.seconds <= 600.0) {
        return Err("usage: serve_load ADDR RECORDS.jsonl [--connections N] [--seconds S (≤ 600)] [--token T]".into());
    }
    a.records = pos.pop().unwrap_or_default();
    a.addr = pos.pop().unwrap_or_default();
    Ok(a)
}

/// Index just past the end of the first complete response in `buf`, and its status.
fn parse_response(buf: &[u8]) -> Result<Option<(usize, u16)>, String> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut len = 0usize;
    for l in lines {
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().map_err(|e| format!("{e}"))?;
        }
    }
    let end = head_end + 4 + len;
    Ok((buf.len() >= end).then_some((end, status)))
}

struct Tally {
    hist: Histogram<u64>,
    ok: u64,
    not_ok: u64,
}

/// One keep-alive connection: request, wait for the whole response, repeat.
async fn connection(
    addr: String,
    reqs: std::sync::Arc<Vec<Vec<u8>>>,
    offset: usize,
    until: Instant,
) -> Result<Tally, String> {
    let s = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut t = Tally {
        hist: Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
        ok: 0,
        not_ok: 0,
    };
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut i = offset;
    while Instant::now() < until {
        let req = &reqs[i % reqs.len()];
        i += 1;
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < req.len() {
            s.writable().await.map_err(|e| e.to_string())?;
            match s.try_write(&req[sent..]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        let status = loop {
            if let Some((end, status)) = parse_response(&buf)? {
                buf.drain(..end);
                break status;
            }
            s.readable().await.map_err(|e| e.to_string())?;
            match s.try_read(&mut chunk) {
                Ok(0) => return Err("connection closed by the server".into()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
        };
        let us = t0.elapsed().as_micros() as u64;
        let _ = t.hist.record(us.max(1));
        if status == 200 {
            t.ok += 1
        } else {
            t.not_ok += 1
        }
    }
    Ok(t)
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let text = std::fs::read_to_string(&a.records).unwrap_or_else(|e| {
        eprintln!("{}: {e}", a.records);
        std::process::exit(2)
    });
    let auth = a
        .token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let reqs: Vec<Vec<u8>> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|body| {
            let mut r = format!(
                "POST /v1/adapt HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n",
                a.addr,
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body.as_bytes());
            r
        })
        .collect();
    if reqs.is_empty() {
        eprintln!("{}: no records", a.records);
        std::process::exit(2);
    }
    // One client thread: the server gets the other core(s), and readiness events of
    // many connections are handled per wake-up, as oha or wrk would.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("tokio runtime");
    let reqs = std::sync::Arc::new(reqs);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(a.seconds);
    let results: Vec<Result<Tally, String>> = rt.block_on(async {
        let hs: Vec<_> = (0..a.connections)
            .map(|c| tokio::spawn(connection(a.addr.clone(), reqs.clone(), c * 7919, until)))
            .collect();
        let mut out = Vec::new();
        for h in hs {
            out.push(h.await.unwrap_or_else(|e| Err(e.to_string())));
        }
        out
    });
    let elapsed = start.elapsed().as_secs_f64();
    let mut total = Tally {
        hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("bounds"),
        ok: 0,
        not_ok: 0,
    };
    for r in results {
        match r {
            Ok(t) => {
                let _ = total.hist.add(&t.hist);
                total.ok += t.ok;
                total.not_ok += t.not_ok;
            }
            Err(e) => {
                eprintln!("connection failed: {e}");
                std::process::exit(1);
            }
        }
    }
    let n = total.ok + total.not_ok;
    let q = |p: f64| total.hist.value_at_quantile(p) as f64 / 1000.0;
    println!(
        "requests {n} (200: {}, other: {}) in {elapsed:.2} s over {} connections",
        total.ok, total.not_ok, a.connections
    );
    println!("throughput {:.0} req/s", n as f64 / elapsed);
    println!(
        "latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        total.hist.max() as f64 / 1000.0
    );
    if total.not_ok > 0 {
        std::process::exit(1);
    }
}
