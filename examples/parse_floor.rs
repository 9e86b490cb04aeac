//! The throughput floor of `scripts/bench.sh`: read a JSONL file (plain, .gz or .zst)
//! and parse every line into the record type on one thread, nothing else.
//! Usage: cargo run --release --example parse_floor -- FILE

use std::io::{BufRead, BufReader, Read};
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: parse_floor FILE");
    let file = std::fs::File::open(&path)?;
    let raw: Box<dyn Read> = if path.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(file)?)
    } else if path.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut r = BufReader::with_capacity(1 << 20, raw);
    let (mut ok, mut bad, mut bytes) = (0u64, 0u64, 0u64);
    let mut line = Vec::new();
    let t0 = Instant::now();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        match proof::replay::record::parse_line(line.strip_suffix(b"\n").unwrap_or(&line)) {
            Ok(_) => ok += 1,
            Err(_) => bad += 1,
        }
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "parse_floor records={} rejected={} seconds={:.3} records_per_s={:.0} mb_per_s={:.1}",
        ok,
        bad,
        s,
        (ok + bad) as f64 / s,
        bytes as f64 / s / 1e6
    );
    Ok(())
}
