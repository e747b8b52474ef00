//! The docker-style client commands of `berth` (`berth ps`, `berth run -it …`): the same
//! names, flags, output and exit codes as the docker CLI, through the `berth-client` crate.

mod build;
mod container;
mod format;
mod fs;
mod images;
mod network;
mod progress;
mod ps;
mod run;
mod stats;
mod system;
mod template;
mod tty;
mod volume;

use berth_client::{Client, ClientError, Host};
use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Why a command failed, and so what it prints and its exit status.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A flag or argument error: printed with the usage line, exit 125 (1 for a wrong
    /// argument count, as docker).
    #[error("{message}")]
    Usage { message: String, code: i32 },
    /// Help was asked for: printed to stdout, exit 0.
    #[error("{0}")]
    Help(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Template(#[from] template::TemplateError),
    /// A message of our own (Docker's wording), exit 1.
    #[error("{0}")]
    Message(String),
    /// Exit with this status and print nothing more (the container's own code).
    #[error("exit status {0}")]
    Exit(i32),
    /// A local I/O failure.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl berth_errdefs::HasCategory for CliError {
    fn category(&self) -> berth_errdefs::Category {
        use berth_errdefs::Category;
        match self {
            CliError::Usage { .. } | CliError::Template(_) => Category::InvalidParameter,
            CliError::Client(e) => e.category(),
            CliError::Help(_) | CliError::Exit(_) => Category::Unknown,
            CliError::Message(_) => Category::Unknown,
            CliError::Io(_) => Category::System,
        }
    }
}

pub type CliResult = Result<(), CliError>;

/// Flags given before the command (`berth -H unix:///x.sock ps`).
#[derive(Debug, Default)]
struct Globals {
    host: Option<String>,
}

/// Splits the global flags off; the rest starts with the command.
fn globals(args: &[String]) -> Result<(Globals, &[String]), CliError> {
    let mut g = Globals::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        match arg.as_str() {
            "-H" | "--host" => {
                let value = args.get(i + 1).ok_or_else(|| CliError::Usage {
                    message: format!("flag needs an argument: {arg}"),
                    code: 125,
                })?;
                g.host = Some(value.clone());
                i += 2;
            }
            "-D" | "--debug" => i += 1,
            "-l" | "--log-level" => i += 2,
            a if a.starts_with("--host=") => {
                g.host = Some(a["--host=".len()..].to_owned());
                i += 1;
            }
            a if a.starts_with("-H") && a.len() > 2 => {
                g.host = Some(a[2..].to_owned());
                i += 1;
            }
            a if a.starts_with("--log-level=") => i += 1,
            _ => break,
        }
    }
    Ok((g, &args[i.min(args.len())..]))
}

/// `berth <command> …` for every docker-style command; the process exit status.
pub fn main(args: Vec<String>) -> i32 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = runtime.block_on(dispatch(&args));
    // Stdin readers run on blocking threads that may sit in read(2): don't wait for them.
    runtime.shutdown_background();
    match result {
        Ok(()) => 0,
        Err(e) => report(&e),
    }
}

/// Prints an error as docker does; its exit status.
fn report(error: &CliError) -> i32 {
    match error {
        CliError::Exit(code) => *code,
        CliError::Help(text) => {
            print!("{text}");
            0
        }
        CliError::Usage { message, code } => {
            eprintln!("{message}");
            *code
        }
        CliError::Client(ClientError::Daemon { message, .. }) => {
            eprintln!("Error response from daemon: {message}");
            1
        }
        other => {
            eprintln!("{other}");
            1
        }
    }
}

/// The command's name, its arguments, and the client to use.
pub struct Invocation<'a> {
    pub name: &'a str,
    pub args: &'a [String],
    host: Option<String>,
}

impl Invocation<'_> {
    /// Connects and negotiates the API version.
    pub async fn client(&self) -> Result<Client, CliError> {
        let mut client = Client::new(Host::resolve(self.host.as_deref())?);
        client.negotiate().await?;
        Ok(client)
    }
}

async fn dispatch(args: &[String]) -> CliResult {
    let (g, rest) = globals(args)?;
    let Some((command, cmd_args)) = rest.split_first() else {
        return Err(CliError::Message("berth: no command given".into()));
    };
    // Management commands: `container ls`, `image rm`, … are the classic commands.
    let (name, cmd_args): (&str, &[String]) = match (command.as_str(), cmd_args.split_first()) {
        ("container", Some((sub, rest))) => (container_alias(sub), rest),
        ("image", Some((sub, rest))) => (image_alias(sub), rest),
        ("builder", Some((sub, rest))) if sub == "build" => ("build", rest),
        ("system", Some((sub, rest))) if sub == "info" || sub == "events" => (sub.as_str(), rest),
        ("system", Some((sub, rest))) if sub == "df" => ("system-df", rest),
        (other, _) => (other, cmd_args),
    };
    let inv = Invocation {
        name,
        args: cmd_args,
        host: g.host,
    };
    match name {
        "version" => system::version(&inv).await,
        "info" => system::info(&inv).await,
        "ps" => ps::ps(&inv).await,
        "images" => images::images(&inv).await,
        "run" => run::run(&inv).await,
        "create" => run::create_cmd(&inv).await,
        "start" => container::start(&inv).await,
        "attach" => container::attach(&inv).await,
        "stop" => container::stop(&inv).await,
        "restart" => container::restart(&inv).await,
        "kill" => container::kill(&inv).await,
        "rm" => container::rm(&inv).await,
        "pause" => container::pause(&inv, "pause").await,
        "unpause" => container::pause(&inv, "unpause").await,
        "rename" => container::rename(&inv).await,
        "wait" => container::wait(&inv).await,
        "top" => container::top(&inv).await,
        "cp" => fs::cp(&inv).await,
        "diff" => fs::diff(&inv).await,
        "export" => fs::export(&inv).await,
        "commit" => fs::commit(&inv).await,
        "port" => container::port(&inv).await,
        "logs" => container::logs(&inv).await,
        "exec" => container::exec(&inv).await,
        "inspect" => container::inspect(&inv, None).await,
        "container-inspect" => container::inspect(&inv, Some("container")).await,
        "image-inspect" => container::inspect(&inv, Some("image")).await,
        "container-prune" => container::container_prune(&inv).await,
        "image-prune" => images::image_prune(&inv).await,
        "build" => build::build(&inv).await,
        "pull" => images::pull(&inv).await,
        "push" => images::push(&inv).await,
        "tag" => images::tag(&inv).await,
        "rmi" => images::rmi(&inv).await,
        "history" => images::history(&inv).await,
        "save" => images::save(&inv).await,
        "load" => images::load(&inv).await,
        "import" => images::import(&inv).await,
        "events" => system::events(&inv).await,
        "stats" => stats::stats(&inv).await,
        "update" => stats::update(&inv).await,
        "system-df" => stats::system_df(&inv).await,
        "network" => network::network(&inv).await,
        "volume" => volume::volume(&inv).await,
        other => Err(CliError::Usage {
            message: format!(
                "berth: unknown command: berth {other}\n\nRun 'berth --help' for more information"
            ),
            code: 1,
        }),
    }
}

fn container_alias(sub: &str) -> &str {
    match sub {
        "ls" | "list" => "ps",
        "prune" => "container-prune",
        "inspect" => "container-inspect",
        other => other,
    }
}

fn image_alias(sub: &str) -> &str {
    match sub {
        "ls" | "list" => "images",
        "rm" | "remove" => "rmi",
        "prune" => "image-prune",
        "inspect" => "image-inspect",
        other => other,
    }
}

/// Like [`parse`] for commands whose arguments after the `positionals`-th positional belong
/// to the container's command (`run IMAGE CMD -x`, `exec CTR CMD -x`), as docker's
/// non-interspersed flags: a `--` is put there so clap leaves the rest alone.
pub fn parse_split<T: Parser>(
    inv: &Invocation,
    usage: &str,
    positionals: usize,
) -> Result<T, CliError> {
    let command = T::command();
    let takes_value = |long: Option<&str>, short: Option<char>| {
        command.get_arguments().any(|a| {
            let hit = match (long, short) {
                (Some(l), _) => {
                    a.get_long() == Some(l)
                        || a.get_all_aliases().into_iter().flatten().any(|x| x == l)
                }
                (None, Some(c)) => a.get_short() == Some(c),
                _ => false,
            };
            hit && a.get_action().takes_values()
        })
    };
    let args = inv.args;
    let mut seen = 0;
    let mut i = 0;
    let mut split_at = None;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--" {
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            i += if !long.contains('=') && takes_value(Some(long), None) {
                2
            } else {
                1
            };
            continue;
        }
        if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut skip = 1;
            for (pos, c) in shorts.char_indices() {
                if takes_value(None, Some(c)) {
                    // The value is the rest of this word, or the next word.
                    if pos + c.len_utf8() == shorts.len() {
                        skip = 2;
                    }
                    break;
                }
            }
            i += skip;
            continue;
        }
        seen += 1;
        if seen == positionals {
            split_at = Some(i + 1);
            break;
        }
        i += 1;
    }
    let argv: Vec<String> = match split_at {
        Some(at) if at < args.len() && args[at] != "--" => {
            let mut v = args[..at].to_vec();
            v.push("--".to_owned());
            v.extend_from_slice(&args[at..]);
            v
        }
        _ => args.to_vec(),
    };
    let argv = std::iter::once(inv.name.to_owned()).chain(argv);
    parse_argv(inv.name, usage, argv)
}

/// Docker's `[y/N]` prompt on stdin.
/// `save` and `export` write a tar to `-o FILE` or to stdout, but never to a terminal.
pub fn refuse_terminal_output(output: Option<&str>) -> CliResult {
    use std::io::IsTerminal;
    if output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::Message(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect".to_owned(),
        ));
    }
    Ok(())
}

/// Copies a streamed tar to `-o FILE` or stdout; `failed to {what}` if the file can't be made.
pub async fn write_output(
    mut body: berth_client::Incoming,
    output: Option<&str>,
    what: &str,
) -> CliResult {
    use tokio::io::AsyncWriteExt;
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = match output {
        Some(path) => Box::new(
            tokio::fs::File::create(path)
                .await
                .map_err(|e| CliError::Message(format!("failed to {what}: {e}")))?,
        ),
        None => Box::new(tokio::io::stdout()),
    };
    while let Some(chunk) = berth_client::next_chunk(&mut body).await? {
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    Ok(())
}

pub fn confirm(warning: &str) -> Result<bool, CliError> {
    use std::io::Write;
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Parses a command's flags with clap, turning clap's errors into docker's messages.
pub fn parse<T: Parser>(inv: &Invocation, usage: &str) -> Result<T, CliError> {
    let argv = std::iter::once(inv.name.to_owned()).chain(inv.args.iter().cloned());
    parse_argv(inv.name, usage, argv)
}

/// Runs clap with `berth <name>` as the program name shown in help.
fn parse_argv<T: Parser>(
    name: &str,
    usage: &str,
    argv: impl IntoIterator<Item = String>,
) -> Result<T, CliError> {
    let shown = name
        .replacen("container-", "container ", 1)
        .replacen("image-", "image ", 1);
    let mut command = T::command().bin_name(format!("berth {shown}"));
    command
        .try_get_matches_from_mut(argv)
        .and_then(|m| T::from_arg_matches(&m))
        .map_err(|e| usage_error(name, usage, &e, &command))
}

/// How docker names a flag in messages: `-n, --last` or `--format`.
fn flag_name(command: &clap::Command, arg: &str) -> String {
    let long = arg
        .split([' ', '='])
        .next()
        .unwrap_or(arg)
        .trim_start_matches('-');
    let found = command.get_arguments().find(|a| {
        a.get_long() == Some(long) || a.get_short().is_some_and(|c| long == c.to_string())
    });
    match found {
        Some(a) => match (a.get_short(), a.get_long()) {
            (Some(s), Some(l)) => format!("-{s}, --{l}"),
            (None, Some(l)) => format!("--{l}"),
            (Some(s), None) => format!("-{s}"),
            (None, None) => arg.to_owned(),
        },
        None => arg.to_owned(),
    }
}

/// A wrong argument count: docker's line, exit 1 ("See" for at-least counts, "Run" for
/// the others, as docker words them).
fn arity_error(name: &str, command: &clap::Command, footer: &dyn Fn(&str) -> String) -> CliError {
    let rule = arity(command);
    let verb = if rule.contains("at least") && !rule.contains("at most") {
        "See"
    } else {
        "Run"
    };
    CliError::Usage {
        message: format!("berth: 'berth {name}' {rule}{}", footer(verb)),
        code: 1,
    }
}

/// Docker's wording of how many arguments a command takes.
fn arity(command: &clap::Command) -> String {
    let mut min = 0usize;
    let mut max = Some(0usize);
    for arg in command.get_positionals() {
        let range = arg.get_num_args().unwrap_or_default();
        let (lo, hi) = (range.min_values(), range.max_values());
        if arg.is_required_set() {
            min += lo.max(1);
        }
        max = match max {
            Some(m) if hi != usize::MAX => Some(m + hi.max(1)),
            _ => None,
        };
    }
    let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
    match max {
        Some(0) => "accepts no arguments".to_owned(),
        Some(m) if m == min => format!("requires {min} {}", plural(min)),
        Some(m) if min == 0 => format!("requires at most {m} {}", plural(m)),
        Some(m) => format!("requires at least {min} and at most {m} {}", plural(m)),
        None => format!("requires at least {min} {}", plural(min)),
    }
}

/// Go's parse error for a value a flag could not take.
fn go_parse_error(value: &str, reason: &str) -> String {
    // The texts of Rust's ParseIntError.
    if reason.starts_with("invalid digit")
        || reason.contains("integer from empty string")
        || reason.starts_with("number too")
    {
        format!("strconv.ParseInt: parsing \"{value}\": invalid syntax")
    } else {
        reason.to_owned()
    }
}

fn usage_error(name: &str, usage: &str, e: &clap::Error, command: &clap::Command) -> CliError {
    // Management commands run under an internal name (`container-prune`): show the real one.
    let shown = name
        .replacen("container-", "container ", 1)
        .replacen("image-", "image ", 1);
    let name = shown.as_str();
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(" "),
        _ => String::new(),
    };
    let footer = |verb: &str| {
        format!("\n\nUsage:  berth {usage}\n\n{verb} 'berth {name} --help' for more information")
    };
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => CliError::Help(e.to_string()),
        ErrorKind::UnknownArgument if !context(ContextKind::InvalidArg).starts_with('-') => {
            arity_error(name, command, &footer)
        }
        ErrorKind::UnknownArgument => {
            let arg = context(ContextKind::InvalidArg);
            let message = match arg.strip_prefix('-') {
                Some(short) if !short.starts_with('-') => {
                    let c = short.chars().next().unwrap_or('?');
                    format!("unknown shorthand flag: '{c}' in {arg}")
                }
                _ => format!("unknown flag: {}", arg.split('=').next().unwrap_or(&arg)),
            };
            CliError::Usage {
                message: format!("{message}{}", footer("Run")),
                code: 125,
            }
        }
        ErrorKind::MissingRequiredArgument | ErrorKind::WrongNumberOfValues
            if context(ContextKind::InvalidArg).starts_with('<') =>
        {
            arity_error(name, command, &footer)
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            let arg = context(ContextKind::InvalidArg);
            let value = context(ContextKind::InvalidValue);
            let flag = flag_name(command, &arg);
            let reason = e
                .source()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "invalid value".to_owned());
            let reason = go_parse_error(&value, &reason);
            CliError::Usage {
                message: format!(
                    "invalid argument \"{value}\" for \"{flag}\" flag: {reason}{}",
                    footer("Run")
                ),
                code: 125,
            }
        }
        _ => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_owned();
            CliError::Usage {
                message: format!("{first}{}", footer("See")),
                code: 125,
            }
        }
    }
}

use std::error::Error as _;

/// clap's check of one `--filter key=value`, with docker's message.
pub fn filter_arg(s: &str) -> Result<String, String> {
    if s.contains('=') {
        Ok(s.to_owned())
    } else {
        Err("bad format of filter (expected name=value)".to_owned())
    }
}

/// Docker's `-f key=value` filters.
pub fn filters(list: &[String]) -> Result<berth_reference::Filters, CliError> {
    let mut f = berth_reference::Filters::new();
    for item in list {
        let (k, v) = item.split_once('=').ok_or_else(|| {
            CliError::Message("bad format of filter (expected name=value)".to_owned())
        })?;
        f.add(k.trim().to_lowercase(), v.to_owned());
    }
    Ok(f)
}
