//! The subset of Go's text/template that `--format` and `inspect -f` need: text, `{{.A.B}}`,
//! `{{.}}`, `{{json .X}}`, `{{.Label "k"}}`, `{{index .M "k"}}`, `upper`/`lower`/`title`/`join`/
//! `len`, pipes (`{{.X | json}}`) and the `{{-`/`-}}` trim markers. Values are JSON values and
//! print as Go prints decoded JSON (`map[k:v]`, `[a b]`, `<no value>` for a missing field).
//!
//! gtmpl (the crates.io port of Go templates) was considered: it has no `json` function, no
//! method calls with arguments and has not been released for years, so this small, tested
//! interpreter of exactly the subset is used instead.

use std::collections::BTreeMap;

use serde_json::Value;

/// A `--format` string that cannot be parsed or run (Docker's "template parsing error").
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("template parsing error: {0}")]
pub struct TemplateError(pub String);

impl berth_errdefs::HasCategory for TemplateError {
    fn category(&self) -> berth_errdefs::Category {
        berth_errdefs::Category::InvalidParameter
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// `.A.B` (empty for `.`).
    Path(Vec<String>),
    Str(String),
    Num(i64),
}

#[derive(Debug, Clone, PartialEq)]
enum Cmd {
    /// A value on its own: `.A.B`, `"text"`.
    Value(Arg),
    /// `.Label "k"`: the one method with an argument (ps rows).
    Method(Vec<String>, Vec<Arg>),
    /// `fn arg…`.
    Func(String, Vec<Arg>),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    /// Commands joined by `|`: each result is the last argument of the next.
    Pipe(Vec<Cmd>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

/// What a template is run against: a value and, for ps rows, the labels `.Label` reads.
pub struct Data<'a> {
    pub value: &'a Value,
    pub labels: Option<&'a BTreeMap<String, String>>,
}

impl Data<'_> {
    /// A row context (ps, images): `{{json .}}` goes through Go's `json.Marshal`, which
    /// escapes `<`, `>` and `&`.
    fn is_row(&self) -> bool {
        self.labels.is_some()
    }
}

const FUNCS: &[&str] = &[
    "json", "upper", "lower", "title", "join", "index", "len", "println",
];

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut nodes = Vec::new();
        let mut rest = src;
        while let Some(start) = rest.find("{{") {
            let mut text = rest[..start].to_owned();
            let mut inner = &rest[start + 2..];
            if let Some(stripped) = inner.strip_prefix("- ") {
                text.truncate(text.trim_end().len());
                inner = stripped;
            }
            let end = find_close(inner)
                .ok_or_else(|| TemplateError(format!("unclosed action in {src:?}")))?;
            let mut action = &inner[..end];
            let mut after = &inner[end + 2..];
            if let Some(stripped) = action.strip_suffix(" -") {
                action = stripped;
                after = after.trim_start();
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text));
            }
            nodes.push(Node::Pipe(parse_pipe(action)?));
            rest = after;
        }
        if !rest.is_empty() {
            nodes.push(Node::Text(rest.to_owned()));
        }
        Ok(Template { nodes })
    }

    /// Runs the template; its output.
    pub fn render(&self, data: &Data) -> Result<String, TemplateError> {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Pipe(cmds) => out.push_str(&go_print(&eval_pipe(cmds, data)?)),
            }
        }
        Ok(out)
    }

    /// The table header: each action replaced by its field's title from `headers` (a
    /// `.Label "k"` column is titled `k`, as docker's).
    pub fn render_header(&self, headers: &Value) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            match node {
                Node::Text(t) => out.push_str(t),
                Node::Pipe(cmds) => {
                    if let Some(Cmd::Method(_, args)) = cmds.first()
                        && let Some(Arg::Str(k)) = args.first()
                    {
                        out.push_str(k);
                        continue;
                    }
                    let field = Template {
                        nodes: vec![node.clone()],
                    }
                    .top_fields();
                    if let Some(title) = field
                        .first()
                        .and_then(|f| headers.get(f))
                        .and_then(Value::as_str)
                    {
                        out.push_str(title);
                    }
                }
            }
        }
        out
    }

    /// The fields the template names at top level (`.ID`, `.Label`), in order: the header
    /// of a table.
    pub fn top_fields(&self) -> Vec<String> {
        let mut fields = Vec::new();
        for node in &self.nodes {
            if let Node::Pipe(cmds) = node {
                for cmd in cmds {
                    let path = match cmd {
                        Cmd::Value(Arg::Path(p)) | Cmd::Method(p, _) => Some(p),
                        Cmd::Func(_, args) => args.iter().find_map(|a| match a {
                            Arg::Path(p) => Some(p),
                            _ => None,
                        }),
                        _ => None,
                    };
                    if let Some(first) = path.and_then(|p| p.first()) {
                        fields.push(first.clone());
                    }
                }
            }
        }
        fields
    }
}

/// The index of the `}}` closing an action, skipping string literals.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (Some(b'"'), b'\\') => i += 1,
            (Some(q), c) if c == q => quote = None,
            (None, b'"' | b'`') => quote = Some(bytes[i]),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Splits an action into words, keeping quoted strings whole (quotes included).
fn words(action: &str) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    let mut chars = action.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        if c == '"' || c == '`' {
            word.push(c);
            chars.next();
            let mut closed = false;
            while let Some(ch) = chars.next() {
                word.push(ch);
                if ch == '\\' && c == '"' {
                    if let Some(esc) = chars.next() {
                        word.push(esc);
                    }
                } else if ch == c {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err(TemplateError(format!(
                    "unterminated quoted string in {action:?}"
                )));
            }
        } else if c == '|' {
            word.push(c);
            chars.next();
        } else {
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() || ch == '|' {
                    break;
                }
                word.push(ch);
                chars.next();
            }
        }
        out.push(word);
    }
    Ok(out)
}

fn parse_pipe(action: &str) -> Result<Vec<Cmd>, TemplateError> {
    let words = words(action)?;
    let mut cmds = Vec::new();
    for part in words.split(|w| w == "|") {
        cmds.push(parse_cmd(part, action)?);
    }
    if cmds.is_empty() {
        return Err(TemplateError(format!(
            "missing value for command in {action:?}"
        )));
    }
    Ok(cmds)
}

fn parse_cmd(words: &[String], action: &str) -> Result<Cmd, TemplateError> {
    let Some((head, rest)) = words.split_first() else {
        return Err(TemplateError(format!(
            "missing value for command in {action:?}"
        )));
    };
    let args = rest
        .iter()
        .map(|w| parse_arg(w))
        .collect::<Result<Vec<_>, _>>()?;
    if FUNCS.contains(&head.as_str()) {
        return Ok(Cmd::Func(head.clone(), args));
    }
    match parse_arg(head)? {
        Arg::Path(p) if !args.is_empty() => Ok(Cmd::Method(p, args)),
        arg if args.is_empty() => Ok(Cmd::Value(arg)),
        _ => Err(TemplateError(format!(
            "can't give argument to non-function {head}"
        ))),
    }
}

fn parse_arg(word: &str) -> Result<Arg, TemplateError> {
    if word == "." {
        return Ok(Arg::Path(Vec::new()));
    }
    if let Some(path) = word.strip_prefix('.') {
        let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(TemplateError(format!("bad field {word:?}")));
        }
        return Ok(Arg::Path(parts));
    }
    if let Some(raw) = word.strip_prefix('`').and_then(|w| w.strip_suffix('`')) {
        return Ok(Arg::Str(raw.to_owned()));
    }
    if word.starts_with('"') {
        return serde_json::from_str::<String>(word)
            .map(Arg::Str)
            .map_err(|_| TemplateError(format!("bad string {word}")));
    }
    if let Ok(n) = word.parse::<i64>() {
        return Ok(Arg::Num(n));
    }
    Err(TemplateError(format!("function {word:?} not defined")))
}

fn eval_pipe(cmds: &[Cmd], data: &Data) -> Result<Option<Value>, TemplateError> {
    let mut piped: Option<Option<Value>> = None;
    for cmd in cmds {
        let result = match cmd {
            Cmd::Value(arg) => {
                if piped.is_some() {
                    return Err(TemplateError("can't pipe into a value".into()));
                }
                eval_arg(arg, data)?
            }
            Cmd::Method(path, args) => eval_method(path, args, data)?,
            Cmd::Func(name, args) => {
                let mut values = args
                    .iter()
                    .map(|a| eval_arg(a, data))
                    .collect::<Result<Vec<_>, _>>()?;
                let escape = name == "json" && data.is_row() && args == &[Arg::Path(Vec::new())];
                if let Some(p) = piped.take() {
                    values.push(p);
                }
                let mut v = call(name, &values)?;
                if escape && let Value::String(text) = &v {
                    v = Value::String(html_escape(text));
                }
                Some(v)
            }
        };
        piped = Some(result);
    }
    Ok(piped.flatten())
}

/// A field missing from an object is an error (docker runs templates with
/// `missingkey=error`); a field of a non-object is Go's "no value".
fn eval_arg(arg: &Arg, data: &Data) -> Result<Option<Value>, TemplateError> {
    match arg {
        Arg::Str(s) => Ok(Some(Value::String(s.clone()))),
        Arg::Num(n) => Ok(Some(Value::from(*n))),
        Arg::Path(path) => {
            let mut v = data.value;
            for part in path {
                let Some(map) = v.as_object() else {
                    return Ok(None);
                };
                v = map.get(part).ok_or_else(|| {
                    TemplateError(format!(
                        "template: :1: executing \"\" at <.{}>: map has no entry for key \"{part}\"",
                        path.join(".")
                    ))
                })?;
            }
            Ok(Some(v.clone()))
        }
    }
}

/// What Go's `json.Marshal` does to `<`, `>` and `&` in its output.
fn html_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn eval_method(path: &[String], args: &[Arg], data: &Data) -> Result<Option<Value>, TemplateError> {
    match (path, args, data.labels) {
        ([name], [Arg::Str(key)], Some(labels)) if name == "Label" => Ok(Some(Value::String(
            labels.get(key).cloned().unwrap_or_default(),
        ))),
        _ => Err(TemplateError(format!(
            "can't evaluate field {} with arguments",
            path.join(".")
        ))),
    }
}

fn call(name: &str, args: &[Option<Value>]) -> Result<Value, TemplateError> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(TemplateError(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            )))
        }
    };
    let text = |v: &Option<Value>| go_print(v);
    match name {
        "json" => {
            arity(1)?;
            let v = args[0].clone().unwrap_or(Value::Null);
            Ok(Value::String(serde_json::to_string(&v).unwrap_or_default()))
        }
        "upper" => arity(1).map(|()| Value::String(text(&args[0]).to_uppercase())),
        "lower" => arity(1).map(|()| Value::String(text(&args[0]).to_lowercase())),
        "title" => arity(1).map(|()| Value::String(title(&text(&args[0])))),
        "len" => {
            arity(1)?;
            let n = match &args[0] {
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                Some(Value::String(s)) => s.len(),
                _ => return Err(TemplateError("len of nil pointer".into())),
            };
            Ok(Value::from(n))
        }
        "join" => {
            arity(2)?;
            let items = match &args[0] {
                Some(Value::Array(a)) => a.iter().map(|v| go_print(&Some(v.clone()))).collect(),
                other => vec![go_print(other)],
            };
            Ok(Value::String(items.join(&text(&args[1]))))
        }
        "index" => {
            arity(2)?;
            Ok(match (&args[0], &args[1]) {
                // Docker's maps are Go `map[string]string`: a missing key is "".
                (Some(Value::Object(m)), Some(Value::String(k))) => {
                    m.get(k).cloned().unwrap_or(Value::String(String::new()))
                }
                (Some(Value::Null), _) => Value::String(String::new()),
                (Some(Value::Array(a)), Some(Value::Number(n))) => n
                    .as_u64()
                    .and_then(|i| a.get(usize::try_from(i).ok()?))
                    .cloned()
                    .ok_or_else(|| TemplateError("index out of range".into()))?,
                _ => return Err(TemplateError("can't index item".into())),
            })
        }
        "println" => Ok(Value::String(format!(
            "{}\n",
            args.iter().map(go_print).collect::<Vec<_>>().join(" ")
        ))),
        other => Err(TemplateError(format!("function {other:?} not defined"))),
    }
}

fn title(s: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// How Go's fmt prints a decoded JSON value.
pub fn go_print(v: &Option<Value>) -> String {
    match v {
        None => "<no value>".to_owned(),
        Some(v) => go_value(v),
    }
}

fn go_value(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Go decodes JSON numbers as float64 and `%v` prints them in the shortest form, with an
/// exponent only from 1e21 on.
fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64().filter(|i| i.unsigned_abs() < 1 << 53) {
        return i.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.abs() >= 1e21 || (f != 0.0 && f.abs() < 1e-4) {
        let s = format!("{f:e}");
        // Rust writes `1e21`, Go `1e+21`.
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e:0>2}"),
            Some((m, e)) => format!("{m}e-{:0>2}", &e[1..]),
            None => s,
        }
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(t: &str, v: &Value) -> String {
        Template::parse(t)
            .expect("parse")
            .render(&Data {
                value: v,
                labels: None,
            })
            .expect("render")
    }

    #[test]
    fn fields_and_paths() {
        let v = json!({"ID":"abc","State":{"Status":"running","Pid":42,"Running":true}});
        assert_eq!(run("{{.ID}}", &v), "abc");
        assert_eq!(run("id={{.ID}} {{.State.Status}}", &v), "id=abc running");
        assert_eq!(run("{{.State.Pid}} {{.State.Running}}", &v), "42 true");
        assert_eq!(run("{{.ID.Deeper}}", &v), "<no value>");
        let missing = Template::parse("{{.Nope}}").expect("parse").render(&Data {
            value: &v,
            labels: None,
        });
        assert!(missing.is_err());
    }

    #[test]
    fn go_printing_of_composites() {
        let v = json!({"M":{"b":1,"a":"x"},"L":["a","b"],"N":null,"Big":1795595968,"F":0.5});
        assert_eq!(run("{{.M}}", &v), "map[a:x b:1]");
        assert_eq!(run("{{.L}}", &v), "[a b]");
        assert_eq!(run("{{.N}}", &v), "<nil>");
        assert_eq!(run("{{.Big}} {{.F}}", &v), "1795595968 0.5");
    }

    #[test]
    fn json_function_and_pipes() {
        let v = json!({"A":{"x":"<&>"},"S":"s"});
        assert_eq!(run("{{json .}}", &v), r#"{"A":{"x":"<&>"},"S":"s"}"#);
        assert_eq!(run("{{json .A}}", &v), r#"{"x":"<&>"}"#);
        assert_eq!(run("{{.S | json}}", &v), r#""s""#);
        assert_eq!(run("{{upper .S}}{{.S | upper}}", &v), "SS");
        assert_eq!(run(r#"{{index .A "x"}}"#, &v), "<&>");
        assert_eq!(run(r#"{{join .L ","}}"#, &json!({"L":["a","b"]})), "a,b");
    }

    #[test]
    fn label_method_reads_the_labels() {
        let labels: BTreeMap<String, String> = [("com.x".to_owned(), "1".to_owned())].into();
        let t = Template::parse(r#"{{.Label "com.x"}}/{{.Label "nope"}}"#).expect("parse");
        let out = t
            .render(&Data {
                value: &json!({}),
                labels: Some(&labels),
            })
            .expect("render");
        assert_eq!(out, "1/");
        let row = json!({"A":"<none>"});
        let escaped = Template::parse("{{json .}} {{json .A}}")
            .expect("parse")
            .render(&Data {
                value: &row,
                labels: Some(&labels),
            });
        assert_eq!(
            escaped.expect("render"),
            r#"{"A":"\u003cnone\u003e"} "<none>""#
        );
    }

    #[test]
    fn trim_markers_and_strings_with_braces() {
        let v = json!({"A":"a"});
        assert_eq!(run("x  {{- .A -}}  y", &v), "xay");
        assert_eq!(run(r#"{{"}}"}}"#, &v), "}}");
        assert_eq!(run("{{`raw`}}", &v), "raw");
    }

    #[test]
    fn bad_templates_are_errors_not_panics() {
        for bad in [
            "{{.ID",
            "{{}}",
            "{{nofunc .X}}",
            r#"{{"unterminated}}"#,
            "{{.A..B}}",
            "{{json}}",
            "{{. | .X}}",
            "{{.X 1}}",
        ] {
            let parsed = Template::parse(bad);
            let rendered = parsed.as_ref().map(|t| {
                t.render(&Data {
                    value: &json!({"X":1}),
                    labels: None,
                })
            });
            assert!(
                parsed.is_err() || rendered.is_ok_and(|r| r.is_err()),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn top_fields_name_the_columns() {
        let t = Template::parse(r#"{{.ID}}\t{{json .Names}}\t{{.Label "x"}}"#).expect("parse");
        assert_eq!(t.top_fields(), vec!["ID", "Names", "Label"]);
    }
}
