//! The `punctual` binary as an operator meets it: help, configuration errors,
//! the default SQLite location, and a clean exit on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn punctual() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_punctual"));
    for (key, _) in std::env::vars() {
        if key.starts_with("PUNCTUAL") || key == "DATABASE_URL" || key == "PORT" || key == "BIND" {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn help_lists_the_commands() {
    let output = punctual().arg("--help").output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for command in ["serve", "migrate"] {
        assert!(text.contains(command), "{command} missing from --help");
    }
}

#[test]
fn invalid_configuration_exits_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("PUNCTUAL__SERVER__PORT", "not-a-port", "SERVER.PORT"),
        ("PUNCTUAL__LOG__FORMAT", "xml", "LOG.FORMAT"),
        ("PUNCTUAL__SERVER__PORTT", "1", "SERVER.PORTT"),
        ("DATABASE_URL", "mysql://x", "database.url"),
        ("PUNCTUAL_ENV", "nowhere", "PUNCTUAL_ENV"),
    ];
    for (key, value, named) in cases {
        let output = punctual()
            .arg("migrate")
            .current_dir(dir.path())
            .env(key, value)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{key}={value} should be refused"
        );
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.to_lowercase().contains(&named.to_lowercase()),
            "{key}={value}: message does not name {named}: {stderr}"
        );
    }
}

#[test]
fn serve_defaults_to_sqlite_prints_its_address_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = punctual()
        .arg("serve")
        .current_dir(dir.path())
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("punctual listening on http://") {
            break rest.trim().to_owned();
        }
    };
    assert!(
        address.starts_with("127.0.0.1:"),
        "binds loopback by default: {address}"
    );
    assert!(
        dir.path().join("data/punctual.db").exists(),
        "default SQLite file created"
    );

    let response = http_get(&address, "/health");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(exit.code(), Some(0));
}

fn http_get(address: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn json_logs_carry_a_request_span_with_route_status_latency_and_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = punctual()
        .arg("serve")
        .current_dir(dir.path())
        .env("PORT", "0")
        .env("PUNCTUAL__LOG__FORMAT", "json")
        .env("PUNCTUAL__LOG__LEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(rest) = line.strip_prefix("punctual listening on http://") {
            break rest.trim().to_owned();
        }
    };
    let mut stream = TcpStream::connect(&address).unwrap();
    write!(
        stream,
        "GET /health HTTP/1.1\r\nHost: x\r\nx-request-id: trace-me-42\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let finished = loop {
        let line = lines.next().expect("a request log line").unwrap();
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if event["fields"]["message"] == "request finished" {
            break event;
        }
    };
    let span = &finished["span"];
    assert_eq!(span["name"], "http_request");
    assert_eq!(span["request_id"], "trace-me-42");
    assert_eq!(span["route"], "/health");
    assert_eq!(span["status"], 200);
    assert_eq!(span["method"], "GET");
    assert!(span["latency_ms"].is_number());
    child.kill().unwrap();
    child.wait().unwrap();
}
