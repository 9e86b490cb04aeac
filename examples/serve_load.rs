//! Bounded loopback load for `proof serve` (used by `scripts/load.sh`): N keep-alive
//! HTTP/1.1 connections, one thread each, POST the records of a JSONL file to
//! /v1/adapt in turn for a fixed time, and report requests/s and latency quantiles.
//!
//! Usage: cargo run --release --example serve_load -- ADDR RECORDS.jsonl
//!        [--connections N] [--seconds S] [--token T]
//!
//! Latency is measured from writing a request to reading its last body byte, one
//! request in flight per connection (closed loop, so it is a lower bound on what an
//! open-loop client would see at the same throughput).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
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

/// Reads one response; returns its status code.
fn read_response(r: &mut BufReader<TcpStream>, line: &mut String) -> std::io::Result<u16> {
    line.clear();
    r.read_line(line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(line)? == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().map_err(std::io::Error::other)?;
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(status)
}

struct Tally {
    hist: Histogram<u64>,
    ok: u64,
    not_ok: u64,
}

fn worker(addr: &str, reqs: &[Vec<u8>], offset: usize, until: Instant) -> std::io::Result<Tally> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    let mut t = Tally {
        hist: Histogram::new_with_bounds(1, 60_000_000, 3).map_err(std::io::Error::other)?,
        ok: 0,
        not_ok: 0,
    };
    let mut line = String::new();
    let mut i = offset;
    while Instant::now() < until {
        let req = &reqs[i % reqs.len()];
        i += 1;
        let t0 = Instant::now();
        w.write_all(req)?;
        let status = read_response(&mut r, &mut line)?;
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
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(a.seconds);
    let results: Vec<std::io::Result<Tally>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..a.connections)
            .map(|c| {
                let (addr, reqs) = (&a.addr, &reqs);
                s.spawn(move || worker(addr, reqs, c * 7919, until))
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("panicked")))
            })
            .collect()
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
