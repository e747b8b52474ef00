//! The `berth` binary: every part of berth is a subcommand of this one program, so installing
//! berth is copying one file.

mod client_cmd;
mod daemon_cmd;
mod registry_cmd;
mod runtime_cmd;

const USAGE: &str = "Usage: berth COMMAND

Commands:
  daemon    The engine daemon, serving the Docker Engine API (berth daemon --help)
  registry  OCI distribution registry server (berth registry serve --help)
  runtime   OCI runtime with a runc-compatible command line (berth runtime --help)
  shim      Per-container monitor (started by the engine)

Docker's client commands, with docker's flags and output (berth COMMAND --help):
  ps, images, run, create, start, stop, kill, restart, rm, rmi, logs, exec, inspect,
  attach, wait, top, rename, pause, unpause, port, tag, history, import, save, load,
  pull, push, events, version, info, container …, image …
";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("daemon") => daemon_cmd::main(args[1..].to_vec()),
        Some("registry") => registry_cmd::main(args[1..].to_vec()),
        Some("runtime") => runtime_cmd::main(args[1..].to_vec()),
        Some("shim") => berth_shim::main_entry(args[1..].to_vec()),
        Some("--version") => {
            println!("berth version {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some("--help" | "-h" | "help") | None => {
            print!("{USAGE}");
            0
        }
        Some(_) => client_cmd::main(args[1..].to_vec()),
    };
    std::process::exit(code);
}
