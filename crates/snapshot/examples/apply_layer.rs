//! Measures apply_layer throughput: `apply_layer <layer.tar[.gz|.zst]> <empty dest dir>`.
//! Prints the diff_id, sizes and MB/s (uncompressed and compressed).

use std::time::Instant;

use berth_snapshot::{ApplyOptions, apply_layer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(layer), Some(dest)) = (args.next(), args.next()) else {
        return Err("usage: apply_layer <layer> <dest>".into());
    };
    std::fs::create_dir_all(&dest)?;
    let file = std::fs::File::open(&layer)?;
    let start = Instant::now();
    let stats = apply_layer(file, dest.as_ref(), &ApplyOptions::default())?;
    let secs = start.elapsed().as_secs_f64();
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "{} entries={} {:?} {:.1} MB -> {:.1} MB in {:.2}s: {:.0} MB/s uncompressed, {:.0} MB/s compressed",
        stats.diff_id,
        stats.entries,
        stats.compression,
        mb(stats.compressed_size),
        mb(stats.size),
        secs,
        mb(stats.size) / secs,
        mb(stats.compressed_size) / secs,
    );
    Ok(())
}
