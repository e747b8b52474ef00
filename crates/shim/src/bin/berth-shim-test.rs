//! A stand-in for `berth shim …` used by this crate's integration tests (the real binary is
//! `berth`, in crates/cli). With `BERTH_SHIM_TEST_HOLD=1` the starter stays alive after the
//! shim is up, so a test can kill the shim's parent.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = berth_shim::main_entry(args);
    if code == 0 && std::env::var_os("BERTH_SHIM_TEST_HOLD").is_some() {
        // Bounded: the test kills us long before this ends.
        std::thread::sleep(std::time::Duration::from_secs(120));
    }
    std::process::exit(code);
}
