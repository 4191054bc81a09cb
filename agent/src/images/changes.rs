//! `commit -c`: the Dockerfile instructions that change an image's config
//! (`CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`, `LABEL`, `EXPOSE`), parsed
//! once before anything is frozen or written, then applied to the config.

use std::collections::HashMap;

use oci_spec::image::{Config, ImageConfiguration};

use super::ImageError;

/// One parsed change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
}

/// Parses one `-c` value; the error is what the user sees.
pub fn parse(input: &str) -> Result<Change, ImageError> {
    parse_str(input).map_err(ImageError::Invalid)
}

fn parse_str(input: &str) -> Result<Change, String> {
    let trimmed = input.trim();
    let (word, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
    let rest = rest.trim();
    let instr = word.to_ascii_uppercase();
    let known = ["CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "LABEL", "EXPOSE"];
    if instr.is_empty() {
        return Err("empty change: want an instruction such as CMD [\"sh\"]".into());
    }
    if !known.contains(&instr.as_str()) {
        return Err(format!("{word} is not a valid change command (use one of {})", known.join(", ")));
    }
    if rest.is_empty() {
        return Err(format!("{instr} requires at least one argument"));
    }
    Ok(match instr.as_str() {
        "CMD" => Change::Cmd(command(rest)),
        "ENTRYPOINT" => Change::Entrypoint(command(rest)),
        "ENV" => Change::Env(pairs(&instr, rest)?),
        "LABEL" => Change::Label(pairs(&instr, rest)?),
        "WORKDIR" => Change::Workdir(rest.to_owned()),
        "USER" => {
            if rest.split_whitespace().count() > 1 {
                return Err("USER requires exactly one argument".into());
            }
            Change::User(rest.to_owned())
        }
        _ => Change::Expose(words(rest)?.iter().map(|p| port(p)).collect::<Result<_, _>>()?),
    })
}

/// Exec form (a JSON array of strings) or shell form (`/bin/sh -c "..."`).
fn command(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".into(), "-c".into(), rest.into()]
}

/// `K=V K2="v 2"`, or the legacy `K V with spaces` (only for one pair).
fn pairs(instr: &str, rest: &str) -> Result<Vec<(String, String)>, String> {
    let ws = words(rest)?;
    if !ws[0].contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{instr} names must be followed by a value: {rest}"))?;
        return Ok(vec![(k.to_owned(), v.trim().to_owned())]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some(("", _)) => Err(format!("{instr} names can not be blank")),
            Some((k, v)) => Ok((k.to_owned(), v.to_owned())),
            None => Err(format!("syntax error - can't find = in {w:?}. Must be of the form: name=value")),
        })
        .collect()
}

/// Splits on whitespace, honouring double and single quotes and `\`.
fn words(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                in_word = true;
                cur.push(chars.next().ok_or("unfinished escape at the end of the change")?);
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unmatched quote in {s:?}"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `80`, `80/tcp`, `53/udp` → `80/tcp`, `53/udp`.
fn port(p: &str) -> Result<String, String> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let bad = || format!("invalid port {p:?}: want PORT[/PROTO] with PROTO tcp, udp or sctp");
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    match num.parse::<u16>() {
        Ok(n) if n > 0 => Ok(format!("{n}/{proto}")),
        _ => Err(bad()),
    }
}

/// Applies changes in order to the image config.
pub fn apply(config: &mut ImageConfiguration, changes: &[Change]) {
    if changes.is_empty() {
        return;
    }
    let mut c: Config = config.config().clone().unwrap_or_default();
    for ch in changes {
        match ch {
            Change::Cmd(v) => {
                c.set_cmd(Some(v.clone()));
            }
            Change::Entrypoint(v) => {
                c.set_entrypoint(Some(v.clone()));
            }
            Change::Env(kvs) => {
                let mut env = c.env().clone().unwrap_or_default();
                for (k, v) in kvs {
                    env.retain(|e| e.split('=').next() != Some(k.as_str()));
                    env.push(format!("{k}={v}"));
                }
                c.set_env(Some(env));
            }
            Change::Workdir(w) => {
                let base = c.working_dir().clone().unwrap_or_else(|| "/".into());
                let dir = if w.starts_with('/') { w.clone() } else { format!("{}/{w}", base.trim_end_matches('/')) };
                c.set_working_dir(Some(dir));
            }
            Change::User(u) => {
                c.set_user(Some(u.clone()));
            }
            Change::Label(kvs) => {
                let labels = c.labels_mut().get_or_insert_with(HashMap::new);
                for (k, v) in kvs {
                    labels.insert(k.clone(), v.clone());
                }
            }
            Change::Expose(ports) => {
                let mut all = c.exposed_ports().clone().unwrap_or_default();
                for p in ports {
                    if !all.contains(p) {
                        all.push(p.clone());
                    }
                }
                c.set_exposed_ports(Some(all));
            }
        }
    }
    config.set_config(Some(c));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_every_instruction() {
        let cases: Vec<(&str, Result<Change, &str>)> = vec![
            (r#"CMD ["echo","hi"]"#, Ok(Change::Cmd(s(&["echo", "hi"])))),
            ("CMD echo hi there", Ok(Change::Cmd(s(&["/bin/sh", "-c", "echo hi there"])))),
            ("cmd [not json", Ok(Change::Cmd(s(&["/bin/sh", "-c", "[not json"])))),
            (r#"ENTRYPOINT ["/bin/sh", "-c"]"#, Ok(Change::Entrypoint(s(&["/bin/sh", "-c"])))),
            ("ENV A=b", Ok(Change::Env(kv(&[("A", "b")])))),
            (r#"ENV A="b c" D=e\ f"#, Ok(Change::Env(kv(&[("A", "b c"), ("D", "e f")])))),
            ("ENV A b c", Ok(Change::Env(kv(&[("A", "b c")])))),
            ("WORKDIR /srv", Ok(Change::Workdir("/srv".into()))),
            ("USER 1000:1000", Ok(Change::User("1000:1000".into()))),
            ("LABEL a=b 'c d'=e", Ok(Change::Label(kv(&[("a", "b"), ("c d", "e")])))),
            ("EXPOSE 80/tcp 53/UDP 443", Ok(Change::Expose(s(&["80/tcp", "53/udp", "443/tcp"])))),
            ("RUN true", Err("RUN is not a valid change command")),
            ("FROM x", Err("FROM is not a valid change command")),
            ("", Err("empty change")),
            ("CMD", Err("CMD requires at least one argument")),
            ("ENV   ", Err("ENV requires at least one argument")),
            ("ENV A", Err("ENV names must be followed by a value: A")),
            ("ENV =b", Err("ENV names can not be blank")),
            ("ENV A=b C", Err("syntax error - can't find = in \"C\"")),
            ("LABEL a=\"b", Err("unmatched quote")),
            ("USER a b", Err("USER requires exactly one argument")),
            ("EXPOSE 80/xyz", Err("invalid port \"80/xyz\"")),
            ("EXPOSE 0", Err("invalid port \"0\"")),
            ("EXPOSE 70000", Err("invalid port \"70000\"")),
        ];
        for (input, want) in cases {
            match (parse(input), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{input:?}"),
                (Err(e), Err(want)) => {
                    assert!(matches!(e, ImageError::Invalid(_)), "{input:?}");
                    assert!(e.to_string().starts_with(want), "{input:?}: {e}");
                }
                (got, want) => panic!("{input:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn applies_in_order() {
        let mut cfg = ImageConfiguration::default();
        let mut base = Config::default();
        base.set_env(Some(s(&["PATH=/bin", "A=old"])));
        base.set_working_dir(Some("/app".into()));
        cfg.set_config(Some(base));
        let changes: Vec<Change> =
            ["ENV A=new B=1", "WORKDIR sub", "CMD [\"x\"]", "LABEL k=v", "EXPOSE 80", "EXPOSE 80/tcp"]
                .iter()
                .map(|c| parse(c).unwrap())
                .collect();
        apply(&mut cfg, &changes);
        let c = cfg.config().as_ref().unwrap();
        assert_eq!(c.env().as_ref().unwrap(), &s(&["PATH=/bin", "A=new", "B=1"]));
        assert_eq!(c.working_dir().as_deref(), Some("/app/sub"));
        assert_eq!(c.cmd().as_ref().unwrap(), &s(&["x"]));
        assert_eq!(c.labels().as_ref().unwrap().get("k").map(String::as_str), Some("v"));
        assert_eq!(c.exposed_ports().as_ref().unwrap(), &s(&["80/tcp"]));
    }
}
