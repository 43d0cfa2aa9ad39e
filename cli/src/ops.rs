//! The operator verbs: `strata get`, `strata logs`, `strata agent drain|deactivate|reactivate`
//! and `strata framework teardown`. Each is one or a few calls to the master's operator API
//! (`POST /api/v1`), and for logs to the agent's `/files/read`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::flags::{
    AgentAction, FrameworkAction, FrameworkCommand, GetFlags, GetKind, LogsFlags, OutputFormat,
};

/// How long one HTTP exchange may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `--watch` and `logs -f` look again.
const POLL_INTERVAL: Duration = Duration::from_secs(2);
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// One HTTP/1.1 request; returns the status and the body. Enough for the master's and agent's
/// JSON endpoints, which answer with a length or close the connection.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, String)> {
    let socket = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&socket, HTTP_TIMEOUT).with_context(|| {
        format!("nothing answers at {addr}: is `strata master` (or `strata dev`) running there?")
    })?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\naccept: application/json\r\n"
    );
    if method == "POST" {
        request.push_str("content-type: application/json\r\n");
    }
    request.push_str(&format!("content-length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .with_context(|| format!("no complete answer from {addr}"))?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("malformed answer from {addr}"))?;
    let status = head
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("malformed status line from {addr}"))?;
    let chunked = head.lines().any(|line| {
        line.to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// Removes chunked transfer encoding.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || tail.len() < size {
            break;
        }
        out.push_str(&tail[..size]);
        rest = tail[size..].strip_prefix("\r\n").unwrap_or(&tail[size..]);
    }
    out
}

/// Makes an operator call and returns its JSON answer (`{}` for calls that answer 202).
pub(crate) fn operator(master: &str, call: Value) -> anyhow::Result<Value> {
    let (status, body) = http(master, "POST", "/api/v1", Some(&call))?;
    match status {
        // Calls that change something answer 200 with no body, or 202.
        200 | 202 if body.trim().is_empty() => Ok(json!({})),
        200 => serde_json::from_str(&body)
            .with_context(|| format!("the master answered with invalid JSON: {body}")),
        307 => bail!("{master} is not the leading master; point --master at the leader"),
        503 => bail!("the master at {master} is not ready: {}", body.trim()),
        _ => bail!("the master refused the call ({status}): {}", body.trim()),
    }
}

pub fn get(flags: GetFlags) -> anyhow::Result<()> {
    loop {
        let value = fetch(&flags.master.master, flags.kind)?;
        let text = match flags.output {
            OutputFormat::Json => serde_json::to_string_pretty(&value)? + "\n",
            OutputFormat::Yaml => to_yaml(&value),
            OutputFormat::Table => table(flags.kind, &value),
        };
        let mut stdout = std::io::stdout().lock();
        if flags.watch {
            // Clear the screen and go home, as `watch` does.
            write!(stdout, "\x1b[2J\x1b[H")?;
        }
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        if !flags.watch {
            return Ok(());
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The list `kind` names, as JSON objects in the operator API's form.
fn fetch(master: &str, kind: GetKind) -> anyhow::Result<Value> {
    Ok(match kind {
        GetKind::Agents => {
            operator(master, json!({"type": "GET_AGENTS"}))?["get_agents"]["agents"].take()
        }
        GetKind::Frameworks => {
            operator(master, json!({"type": "GET_FRAMEWORKS"}))?["get_frameworks"]["frameworks"]
                .take()
        }
        GetKind::Tasks => {
            operator(master, json!({"type": "GET_TASKS"}))?["get_tasks"]["tasks"].take()
        }
        GetKind::Roles => {
            operator(master, json!({"type": "GET_ROLES"}))?["get_roles"]["roles"].take()
        }
        GetKind::Offers => {
            let (status, body) = http(master, "GET", "/master/state", None)?;
            if status != 200 {
                bail!(
                    "the master refused /master/state ({status}): {}",
                    body.trim()
                );
            }
            let state: Value = serde_json::from_str(&body)?;
            let offers: Vec<Value> = state["frameworks"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|framework| framework["offers"].as_array().cloned().unwrap_or_default())
                .collect();
            Value::Array(offers)
        }
    })
}

/// `{"value": "x"}` or `"x"` as text.
pub(crate) fn id(value: &Value) -> String {
    value
        .get("value")
        .unwrap_or(value)
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// Sums a scalar resource of a resource list, for display.
fn scalar(resources: &Value, name: &str) -> Number {
    Number(
        resources
            .as_array()
            .into_iter()
            .flatten()
            .filter(|resource| resource["name"] == name)
            .filter_map(|resource| resource["scalar"]["value"].as_f64())
            .fold(0.0, |sum, value| sum + value),
    )
}

/// A resource amount as people write it: `2`, `0.5`, never `-0`.
struct Number(f64);

impl std::fmt::Display for Number {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Three decimals is Mesos's precision for scalars.
        let rounded = (self.0 * 1000.0).round() / 1000.0 + 0.0;
        write!(f, "{rounded}")
    }
}

fn table(kind: GetKind, items: &Value) -> String {
    let items = items.as_array().cloned().unwrap_or_default();
    let (header, rows): (Vec<&str>, Vec<Vec<String>>) = match kind {
        GetKind::Agents => (
            vec![
                "ID",
                "HOSTNAME",
                "ACTIVE",
                "CPUS",
                "MEM (MiB)",
                "ALLOCATED CPUS",
                "ALLOCATED MEM",
            ],
            items
                .iter()
                .map(|agent| {
                    let info = &agent["agent_info"];
                    vec![
                        id(&info["id"]),
                        format!(
                            "{}:{}",
                            info["hostname"].as_str().unwrap_or(""),
                            info["port"]
                        ),
                        agent["active"].as_bool().unwrap_or(false).to_string(),
                        format!("{}", scalar(&agent["total_resources"], "cpus")),
                        format!("{}", scalar(&agent["total_resources"], "mem")),
                        format!("{}", scalar(&agent["allocated_resources"], "cpus")),
                        format!("{}", scalar(&agent["allocated_resources"], "mem")),
                    ]
                })
                .collect(),
        ),
        GetKind::Frameworks => (
            vec![
                "ID",
                "NAME",
                "ACTIVE",
                "CONNECTED",
                "ROLES",
                "CPUS",
                "MEM (MiB)",
            ],
            items
                .iter()
                .map(|framework| {
                    let info = &framework["framework_info"];
                    let roles: Vec<String> = info["roles"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|role| role.as_str().map(str::to_owned))
                        .chain(info["role"].as_str().map(str::to_owned))
                        .collect();
                    vec![
                        id(&info["id"]),
                        info["name"].as_str().unwrap_or("").to_owned(),
                        framework["active"].as_bool().unwrap_or(false).to_string(),
                        framework["connected"]
                            .as_bool()
                            .unwrap_or(false)
                            .to_string(),
                        roles.join(","),
                        format!("{}", scalar(&framework["allocated_resources"], "cpus")),
                        format!("{}", scalar(&framework["allocated_resources"], "mem")),
                    ]
                })
                .collect(),
        ),
        GetKind::Tasks => (
            vec!["ID", "FRAMEWORK", "STATE", "AGENT", "CPUS", "MEM (MiB)"],
            items
                .iter()
                .map(|task| {
                    vec![
                        id(&task["task_id"]),
                        id(&task["framework_id"]),
                        task["state"]
                            .as_str()
                            .unwrap_or("")
                            .trim_start_matches("TASK_")
                            .to_owned(),
                        id(&task["agent_id"]),
                        format!("{}", scalar(&task["resources"], "cpus")),
                        format!("{}", scalar(&task["resources"], "mem")),
                    ]
                })
                .collect(),
        ),
        GetKind::Offers => (
            vec!["ID", "FRAMEWORK", "AGENT", "CPUS", "MEM (MiB)"],
            items
                .iter()
                .map(|offer| {
                    vec![
                        id(&offer["id"]),
                        id(&offer["framework_id"]),
                        id(&offer["agent_id"]),
                        format!("{}", scalar(&offer["resources"], "cpus")),
                        format!("{}", scalar(&offer["resources"], "mem")),
                    ]
                })
                .collect(),
        ),
        GetKind::Roles => (
            vec!["ROLE", "WEIGHT", "FRAMEWORKS", "CPUS", "MEM (MiB)"],
            items
                .iter()
                .map(|role| {
                    vec![
                        role["name"].as_str().unwrap_or("").to_owned(),
                        format!("{}", role["weight"].as_f64().unwrap_or(1.0)),
                        role["frameworks"]
                            .as_array()
                            .map_or(0, Vec::len)
                            .to_string(),
                        format!("{}", scalar(&role["resources"], "cpus")),
                        format!("{}", scalar(&role["resources"], "mem")),
                    ]
                })
                .collect(),
        ),
    };
    render_table(&header, &rows)
}

/// Left-aligned columns separated by two spaces, as kubectl prints them.
fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

/// Writes JSON as YAML (block style; strings quoted when YAML would read them otherwise).
fn to_yaml(value: &Value) -> String {
    fn scalar(value: &Value) -> String {
        match value {
            Value::Null => "null".to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::String(s) => {
                let plain = !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c))
                    && !matches!(s.as_str(), "true" | "false" | "null" | "yes" | "no" | "~")
                    && s.parse::<f64>().is_err();
                if plain {
                    s.clone()
                } else {
                    Value::String(s.clone()).to_string()
                }
            }
            _ => unreachable!("only scalars here"),
        }
    }
    fn write(value: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, item) in map {
                    match item {
                        Value::Object(inner) if !inner.is_empty() => {
                            out.push_str(&format!("{pad}{key}:\n"));
                            write(item, indent + 2, out);
                        }
                        Value::Array(inner) if !inner.is_empty() => {
                            out.push_str(&format!("{pad}{key}:\n"));
                            write(item, indent, out);
                        }
                        _ => out.push_str(&format!("{pad}{key}: {}\n", inline(item))),
                    }
                }
            }
            Value::Array(items) if !items.is_empty() => {
                for item in items {
                    let mut nested = String::new();
                    write(item, indent + 2, &mut nested);
                    match item {
                        Value::Object(inner) if !inner.is_empty() => {
                            // The first line of the item goes after the dash.
                            let nested = nested.trim_start_matches(' ');
                            out.push_str(&format!("{pad}- {nested}"));
                        }
                        Value::Array(inner) if !inner.is_empty() => {
                            out.push_str(&format!("{pad}-\n{nested}"));
                        }
                        _ => out.push_str(&format!("{pad}- {}\n", inline(item))),
                    }
                }
            }
            other => out.push_str(&format!("{pad}{}\n", inline(other))),
        }
    }
    fn inline(value: &Value) -> String {
        match value {
            Value::Object(_) => "{}".to_owned(),
            Value::Array(_) => "[]".to_owned(),
            other => scalar(other),
        }
    }
    let mut out = String::new();
    write(value, 0, &mut out);
    out
}

pub fn logs(flags: LogsFlags) -> anyhow::Result<()> {
    let master = &flags.master.master;
    let tasks = operator(master, json!({"type": "GET_TASKS"}))?;
    let tasks = &tasks["get_tasks"];
    let candidates: Vec<&Value> = ["tasks", "completed_tasks", "unreachable_tasks"]
        .iter()
        .flat_map(|list| tasks[*list].as_array().into_iter().flatten())
        .filter(|task| id(&task["task_id"]) == flags.task_id)
        .filter(|task| {
            flags
                .framework
                .as_ref()
                .is_none_or(|framework| id(&task["framework_id"]) == *framework)
        })
        .collect();
    let task = match candidates.as_slice() {
        [] => bail!(
            "the master knows no task {:?}; `strata get tasks` lists them",
            flags.task_id
        ),
        [task] => *task,
        _ => bail!(
            "several frameworks have a task {:?}; say which with --framework",
            flags.task_id
        ),
    };
    let framework_id = id(&task["framework_id"]);
    let agent_id = id(&task["agent_id"]);
    // A command task's executor is named after the task.
    let executor_id = task
        .get("executor_id")
        .map(id)
        .filter(|executor| !executor.is_empty())
        .unwrap_or_else(|| flags.task_id.clone());
    let agents = operator(master, json!({"type": "GET_AGENTS"}))?;
    let agent = agents["get_agents"]["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|agent| id(&agent["agent_info"]["id"]) == agent_id)
        .with_context(|| format!("the task's agent {agent_id} is not connected to the master"))?;
    let agent_addr = format!(
        "{}:{}",
        agent["agent_info"]["hostname"]
            .as_str()
            .unwrap_or("127.0.0.1"),
        agent["agent_info"]["port"].as_i64().unwrap_or(5051)
    );
    let file = if flags.stderr { "stderr" } else { "stdout" };
    let path = format!("/frameworks/{framework_id}/executors/{executor_id}/runs/latest/{file}");
    let mut offset: u64 = 0;
    let mut stdout = std::io::stdout().lock();
    loop {
        let query = format!(
            "/files/read?path={}&offset={offset}&length=1048576",
            percent_encode(&path)
        );
        let (status, body) = http(&agent_addr, "GET", &query, None)?;
        match status {
            200 => {}
            404 => bail!(
                "the agent at {agent_addr} has no {file} for task {} (its sandbox may have been garbage-collected)",
                flags.task_id
            ),
            _ => bail!(
                "the agent at {agent_addr} refused to read {file} ({status}): {}",
                body.trim()
            ),
        }
        let read: Value = serde_json::from_str(&body)?;
        let data = read["data"].as_str().unwrap_or("");
        stdout.write_all(data.as_bytes())?;
        stdout.flush()?;
        offset += data.len() as u64;
        if !flags.follow {
            return Ok(());
        }
        if data.is_empty() {
            if task_ended(master, &flags.task_id, &framework_id)? {
                return Ok(());
            }
            std::thread::sleep(FOLLOW_INTERVAL);
        }
    }
}

/// Tells whether the task is in a terminal state now.
fn task_ended(master: &str, task_id: &str, framework_id: &str) -> anyhow::Result<bool> {
    let tasks = operator(master, json!({"type": "GET_TASKS"}))?;
    let live = tasks["get_tasks"]["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|task| id(&task["task_id"]) == task_id && id(&task["framework_id"]) == framework_id);
    Ok(!live)
}

/// Encodes a path for a query string.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

pub fn agent(action: AgentAction) -> anyhow::Result<()> {
    let (master, call, done) = match action {
        AgentAction::Drain(flags) => {
            let mut drain =
                json!({"agent_id": {"value": flags.target.agent_id}, "mark_gone": flags.mark_gone});
            if let Some(grace) = flags.max_grace_period {
                drain["max_grace_period"] = json!({"nanoseconds": grace.as_nanos() as u64});
            }
            (
                flags.target.master.master,
                json!({"type": "DRAIN_AGENT", "drain_agent": drain}),
                "draining",
            )
        }
        AgentAction::Deactivate(target) => (
            target.master.master,
            json!({"type": "DEACTIVATE_AGENT", "deactivate_agent": {"agent_id": {"value": target.agent_id}}}),
            "deactivated",
        ),
        AgentAction::Reactivate(target) => (
            target.master.master,
            json!({"type": "REACTIVATE_AGENT", "reactivate_agent": {"agent_id": {"value": target.agent_id}}}),
            "reactivated",
        ),
    };
    operator(&master, call)?;
    #[allow(clippy::print_stdout)]
    {
        println!("agent {done}");
    }
    Ok(())
}

pub fn framework(command: FrameworkCommand) -> anyhow::Result<()> {
    match command.action {
        FrameworkAction::Teardown(target) => {
            operator(
                &target.master.master,
                json!({"type": "TEARDOWN", "teardown": {"framework_id": {"value": target.framework_id}}}),
            )?;
            #[allow(clippy::print_stdout)]
            {
                println!("framework {} torn down", target.framework_id);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_quotes_what_yaml_would_misread() {
        let value = json!({"a": "true", "b": "1.5", "c": "plain", "d": [1, {"e": "x y"}], "f": {}});
        assert_eq!(
            to_yaml(&value),
            "a: \"true\"\nb: \"1.5\"\nc: plain\nd:\n- 1\n- e: \"x y\"\nf: {}\n"
        );
    }

    #[test]
    fn tables_align_columns() {
        let table = render_table(&["ID", "NAME"], &[vec!["a-long-id".into(), "x".into()]]);
        assert_eq!(table, "ID         NAME\na-long-id  x\n");
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
