//! `berth-shim`: the per-container monitor alone, as a small binary of its own.
//!
//! `berth shim` is the same code inside the whole engine's binary. A shim lives as long as its
//! container, and every page the dynamic loader relocates at start-up (the binary's pointer
//! tables) stays private to it; in the small binary those tables are a fraction of the size,
//! which is most of a shim's memory. The daemon uses this binary when it sits next to its own
//! and falls back to `berth shim` otherwise, so installing only `berth` still works.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(berth_shim::main_entry(args));
}
