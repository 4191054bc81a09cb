//! `top`: the container's processes as the host's `ps` shows them (Docker
//! runs `ps` too): `ps` with the caller's options (default `-ef`), the rows
//! kept whose PID is in the container's cgroup. The last column (the
//! command) keeps its spaces.
use std::collections::HashSet;
use std::sync::Arc;

use super::{ContainerError, InvalidError, Manager, Wanted};
use crate::error::{AgentError, Result};

/// `ps`'s titles and the container's rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Top {
    pub titles: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Manager {
    #[tracing::instrument(skip_all, fields(id = %key))]
    pub async fn top(self: &Arc<Self>, key: &str, ps_args: &str) -> Result<Top> {
        let rec = self.refresh(key).await?;
        if !rec.state.status.is_live() {
            return Err(ContainerError::wrong_state(&rec.name, rec.state.status, Wanted::Running).into());
        }
        let args: Vec<&str> =
            if ps_args.trim().is_empty() { vec!["-ef"] } else { ps_args.split_whitespace().collect() };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .env("LC_ALL", "C")
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|source| AgentError::Io { context: "run ps".into(), source })?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
            return Err(ContainerError::from(InvalidError::Ps(text)).into());
        }
        let pids: HashSet<u64> = self.cgroups.pids(&rec.id).into_iter().collect();
        parse(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

/// `ps`'s output, the rows of `pids` only.
fn parse(text: &str, pids: &HashSet<u64>) -> Result<Top> {
    let mut lines = text.lines();
    let titles: Vec<String> = lines.next().unwrap_or_default().split_whitespace().map(str::to_owned).collect();
    let pid_at = titles.iter().position(|t| t == "PID").ok_or(ContainerError::from(InvalidError::TopNoPid))?;
    let last = titles.len() - 1;
    let rows = lines
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            let pid: u64 = fields.get(pid_at)?.parse().ok()?;
            if !pids.contains(&pid) || fields.len() < titles.len() {
                return None;
            }
            let mut row: Vec<String> = fields[..last].iter().map(|f| (*f).to_owned()).collect();
            row.push(fields[last..].join(" "));
            Some(row)
        })
        .collect();
    Ok(Top { titles, rows })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_the_containers_pids_with_the_command_whole() {
        let text = "UID   PID  PPID  C STIME TTY  TIME     CMD\n\
                    root    1     0  0 10:00 ?    00:00:01 /sbin/init\n\
                    root  400   390  0 10:01 ?    00:00:00 sleep 1000\n\
                    root  401   400  0 10:01 ?    00:00:00 sh -c echo a  b\n";
        let top = parse(text, &[400, 401].into_iter().collect()).unwrap();
        assert_eq!(top.titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
        assert_eq!(top.rows.len(), 2);
        assert_eq!(top.rows[0][7], "sleep 1000");
        assert_eq!(top.rows[1][7], "sh -c echo a b");
        let err = parse("USER COMMAND\nroot init\n", &HashSet::new()).unwrap_err().to_string();
        assert!(err.contains("Couldn't find PID field in ps output"), "{err}");
    }
}
