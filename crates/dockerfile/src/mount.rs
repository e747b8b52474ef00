//! `RUN --mount=…` specs (BuildKit syntax): `type=cache,target=/root/.cache,id=x,sharing=locked`.
//!
//! As in BuildKit, a spec is checked twice: when the Dockerfile is parsed only `from=` is looked
//! at (it may not use variables); the full parse happens when the step runs, after each value
//! has been expanded with the stage's variables ([`crate::Scope::step`]).

/// What a RUN mount provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// A read-only (by default) view of the context, a stage or an image.
    Bind,
    /// A persistent cache directory shared between builds.
    Cache,
    /// An empty tmpfs.
    Tmpfs,
    /// A build secret file.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    /// The name used in specs and messages (`cache`).
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// How concurrent builds share one cache mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Concurrent writers share the directory (the default).
    Shared,
    /// Each concurrent user gets its own copy.
    Private,
    /// Users wait for each other.
    Locked,
}

/// One `--mount` of a RUN, values expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=` (default `bind`).
    pub kind: MountType,
    /// `target=` / `dst=` / `destination=`.
    pub target: Option<String>,
    /// `source=` / `src=`: a path inside `from` (or the context).
    pub source: Option<String>,
    /// `from=`: a stage name or index, or an image.
    pub from: Option<String>,
    /// Read-only: `ro`/`rw` if given, else true for bind, secret and ssh.
    pub readonly: bool,
    /// `id=` (cache, secret, ssh).
    pub id: Option<String>,
    /// `sharing=` (cache only; `None` means shared).
    pub sharing: Option<Sharing>,
    /// `mode=` in octal (cache, secret, ssh).
    pub mode: Option<u32>,
    /// `uid=` (cache, secret, ssh).
    pub uid: Option<u32>,
    /// `gid=` (cache, secret, ssh).
    pub gid: Option<u32>,
    /// `size=` (tmpfs), as written (`64m`).
    pub size: Option<String>,
    /// `required` (secret, ssh).
    pub required: bool,
    /// `env=` (secret): expose the secret as this variable.
    pub env: Option<String>,
}

impl Mount {
    fn new() -> Mount {
        Mount {
            kind: MountType::Bind,
            target: None,
            source: None,
            from: None,
            readonly: false,
            id: None,
            sharing: None,
            mode: None,
            uid: None,
            gid: None,
            size: None,
            required: false,
            env: None,
        }
    }
}

/// The parse-time check: `from=` may not contain a variable (a `$` anywhere but at the end).
/// Returns the `from=` value, if any.
pub(crate) fn check_from(spec: &str) -> Result<Option<String>, String> {
    let mut from = None;
    for field in csv_fields(spec)? {
        if let Some((key, value)) = field.split_once('=')
            && key.eq_ignore_ascii_case("from")
        {
            if value.find('$').is_some_and(|i| i + 1 != value.len()) {
                return Err(
                    "'from' doesn't support variable expansion, define alias stage instead".into(),
                );
            }
            from = Some(value.to_string());
        }
    }
    Ok(from)
}

/// Parses one `--mount` value, passing every `key=value` value through `expand` first.
pub(crate) fn parse_mount(
    spec: &str,
    expand: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Mount, String> {
    let mut m = Mount::new();
    let mut ro_auto = true;
    for field in csv_fields(spec)? {
        let Some((key, value)) = field.split_once('=') else {
            flag_field(&mut m, &field, &mut ro_auto)?;
            continue;
        };
        let key = key.to_ascii_lowercase();
        let value = expand(value)?;
        apply(&mut m, &key, value, &field, &mut ro_auto)?;
    }
    validate(&m)?;
    if ro_auto {
        m.readonly = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    Ok(m)
}

/// A bare word: `ro`, `rw`, `required`.
fn flag_field(m: &mut Mount, field: &str, ro_auto: &mut bool) -> Result<(), String> {
    match field.to_ascii_lowercase().as_str() {
        "readonly" | "ro" => (m.readonly, *ro_auto) = (true, false),
        "readwrite" | "rw" => (m.readonly, *ro_auto) = (false, false),
        "required" => m.required = required_allowed(m, "required")?,
        _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
    }
    Ok(())
}

fn required_allowed(m: &Mount, key: &str) -> Result<bool, String> {
    if matches!(m.kind, MountType::Secret | MountType::Ssh) {
        Ok(true)
    } else {
        Err(format!(
            "unexpected key '{key}' for mount type '{}'",
            m.kind.as_str()
        ))
    }
}

fn apply(
    m: &mut Mount,
    key: &str,
    value: String,
    field: &str,
    ro_auto: &mut bool,
) -> Result<(), String> {
    let invalid = || format!("invalid value for {key}: {value}");
    match key {
        "type" => m.kind = mount_type(&value)?,
        "from" => m.from = Some(value),
        "source" | "src" => m.source = Some(value),
        "target" | "dst" | "destination" => m.target = Some(value),
        "readonly" | "ro" => {
            m.readonly = go_bool(&value).ok_or_else(invalid)?;
            *ro_auto = false;
        }
        "readwrite" | "rw" => {
            m.readonly = !go_bool(&value).ok_or_else(invalid)?;
            *ro_auto = false;
        }
        "required" => {
            required_allowed(m, key)?;
            m.required = go_bool(&value).ok_or_else(invalid)?;
        }
        "size" if m.kind == MountType::Tmpfs => m.size = Some(value),
        "size" => {
            let kind = m.kind.as_str();
            return Err(format!("unexpected key 'size' for mount type '{kind}'"));
        }
        "id" => m.id = Some(value),
        "sharing" => m.sharing = Some(sharing(&value)?),
        "mode" => {
            let mode = u32::from_str_radix(&value, 8);
            m.mode = Some(mode.map_err(|_| format!("invalid value {value} for mode"))?);
        }
        "uid" => {
            m.uid = Some(
                value
                    .parse()
                    .map_err(|_| format!("invalid value {value} for uid"))?,
            )
        }
        "gid" => {
            m.gid = Some(
                value
                    .parse()
                    .map_err(|_| format!("invalid value {value} for gid"))?,
            )
        }
        "env" => m.env = Some(value),
        _ => return Err(format!("unexpected key '{key}' in '{field}'")),
    }
    Ok(())
}

/// BuildKit's consistency rules between fields.
fn validate(m: &Mount) -> Result<(), String> {
    let kind = m.kind.as_str();
    if !matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    ) {
        for (name, set) in [
            ("mode", m.mode.is_some()),
            ("uid", m.uid.is_some()),
            ("gid", m.gid.is_some()),
        ] {
            if set {
                return Err(format!("{name} not allowed for {kind:?} type mounts"));
            }
        }
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!("invalid cache sharing set for {kind} mount"));
    }
    Ok(())
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn mount_type(v: &str) -> Result<MountType, String> {
    Ok(match v.to_ascii_lowercase().as_str() {
        "bind" => MountType::Bind,
        "cache" => MountType::Cache,
        "tmpfs" => MountType::Tmpfs,
        "secret" => MountType::Secret,
        "ssh" => MountType::Ssh,
        _ => return Err(format!("unsupported mount type {v:?}")),
    })
}

fn sharing(v: &str) -> Result<Sharing, String> {
    match v.to_ascii_lowercase().as_str() {
        "shared" => Ok(Sharing::Shared),
        "private" => Ok(Sharing::Private),
        "locked" => Ok(Sharing::Locked),
        _ => Err(format!("unsupported sharing value {v:?}")),
    }
}

/// Splits a CSV record (the format BuildKit reads mount specs with): commas separate fields,
/// a field may be double-quoted, `""` inside quotes is one quote.
fn csv_fields(spec: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = spec.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if quoted {
        return Err(format!(
            "failed to parse csv mounts: unterminated quote in {spec:?}"
        ));
    }
    fields.push(cur);
    Ok(fields.into_iter().filter(|f| !f.is_empty()).collect())
}
