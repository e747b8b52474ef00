//! `RUN --mount=…` specs (BuildKit syntax): `type=cache,target=/root/.cache,id=x,sharing=locked`.

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

/// One `--mount` of a RUN, fields unexpanded (the builder expands them with the stage's scope).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=`.
    pub kind: MountType,
    /// `target=` / `dst=` / `destination=`.
    pub target: Option<String>,
    /// `source=` / `src=`: a path inside `from` (or the context).
    pub source: Option<String>,
    /// `from=`: a stage name or index, or an image.
    pub from: Option<String>,
    /// `readonly`/`ro` (bind defaults to read-only), `rw`/`readwrite` clears it.
    pub readonly: bool,
    /// `id=` (cache, secret, ssh).
    pub id: Option<String>,
    /// `sharing=` (cache).
    pub sharing: Sharing,
    /// `mode=` in octal.
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `size=` (tmpfs), as written.
    pub size: Option<String>,
    /// `required` (secret, ssh).
    pub required: bool,
    /// `env=` (secret): expose the secret as this variable.
    pub env: Option<String>,
}

/// Parses one `--mount` value.
pub(crate) fn parse_mount(spec: &str) -> Result<Mount, String> {
    let fields = csv_fields(spec)?;
    let kind = mount_type(&fields)?;
    let mut m = Mount {
        kind,
        target: None,
        source: None,
        from: None,
        readonly: kind == MountType::Bind,
        id: None,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        env: None,
    };
    for field in &fields {
        apply_field(&mut m, field, spec)?;
    }
    if m.target.is_none() && matches!(kind, MountType::Bind | MountType::Cache | MountType::Tmpfs) {
        return Err(format!("mount type {} requires a target", type_name(kind)));
    }
    Ok(m)
}

fn type_name(kind: MountType) -> &'static str {
    match kind {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

fn mount_type(fields: &[String]) -> Result<MountType, String> {
    let typ = fields
        .iter()
        .filter_map(|f| f.split_once('='))
        .filter(|(k, _)| k.eq_ignore_ascii_case("type"))
        .map(|(_, v)| v)
        .next_back()
        .unwrap_or("bind");
    Ok(match typ {
        "bind" => MountType::Bind,
        "cache" => MountType::Cache,
        "tmpfs" => MountType::Tmpfs,
        "secret" => MountType::Secret,
        "ssh" => MountType::Ssh,
        other => return Err(format!("unsupported mount type {other:?}")),
    })
}

fn apply_field(m: &mut Mount, field: &str, spec: &str) -> Result<(), String> {
    let (key, value) = match field.split_once('=') {
        Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
        None => (field.to_ascii_lowercase(), None),
    };
    let val = || {
        value
            .map(str::to_string)
            .ok_or_else(|| format!("invalid field '{field}' must be a key=value pair"))
    };
    match key.as_str() {
        "type" => {}
        "readonly" | "ro" => m.readonly = parse_bool(value, field)?,
        "readwrite" | "rw" => m.readonly = !parse_bool(value, field)?,
        "required" => m.required = parse_bool(value, field)?,
        "target" | "dst" | "destination" => m.target = Some(val()?),
        "source" | "src" => m.source = Some(val()?),
        "from" => m.from = Some(val()?),
        "id" => m.id = Some(val()?),
        "env" => m.env = Some(val()?),
        "size" => m.size = Some(val()?),
        "sharing" => m.sharing = sharing(&val()?)?,
        "mode" => {
            let v = val()?;
            m.mode = Some(u32::from_str_radix(&v, 8).map_err(|_| format!("invalid mode {v:?}"))?);
        }
        "uid" | "gid" => {
            let v = val()?;
            let n = v.parse().map_err(|_| format!("invalid {key} {v:?}"))?;
            if key == "uid" {
                m.uid = Some(n)
            } else {
                m.gid = Some(n)
            }
        }
        _ => return Err(format!("unexpected key '{key}' in '{spec}'")),
    }
    Ok(())
}

fn parse_bool(value: Option<&str>, field: &str) -> Result<bool, String> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(_) => Err(format!("invalid value for {field}")),
    }
}

fn sharing(v: &str) -> Result<Sharing, String> {
    match v {
        "shared" => Ok(Sharing::Shared),
        "private" => Ok(Sharing::Private),
        "locked" => Ok(Sharing::Locked),
        _ => Err(format!("unsupported sharing value {v:?}")),
    }
}

/// Splits a CSV record (the format BuildKit reads mount specs with): commas separate fields,
/// double quotes protect commas, `""` inside quotes is one quote.
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
    Ok(fields
        .into_iter()
        .filter(|f| !f.trim().is_empty())
        .collect())
}
