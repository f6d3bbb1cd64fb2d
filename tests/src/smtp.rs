//! A real SMTP server on 127.0.0.1 that keeps what it receives, for tests that
//! check what the mailer sends.
//!
//! It speaks the server side of plain SMTP (RFC 5321): greeting, EHLO/HELO, MAIL
//! FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT; no TLS, no AUTH. It
//! advertises 8BITMIME and SMTPUTF8 so any body the client chooses is accepted.
//! Every message the client completes with `.` is kept; nothing is relayed.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// One message as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEmail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub to: Vec<String>,
    /// The message as sent after `DATA` (headers, blank line, body), dot-unstuffed,
    /// with CRLF line ends and without the final `.` line.
    pub data: String,
}

impl ReceivedEmail {
    /// The first header called `name` (case-insensitive), unfolded, with no
    /// RFC 2047 decoding.
    pub fn header(&self, name: &str) -> Option<String> {
        let (headers, _) = self.split();
        let mut unfolded: Vec<String> = Vec::new();
        for line in headers.split("\r\n") {
            match unfolded.last_mut() {
                Some(previous) if line.starts_with([' ', '\t']) => previous.push_str(line),
                _ => unfolded.push(line.to_owned()),
            }
        }
        unfolded.into_iter().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// The body with its `Content-Transfer-Encoding` undone (quoted-printable and
    /// base64; 7bit and 8bit as is) and line ends as `\n`, so a test can look for a
    /// token in it whatever encoding the sender chose. Single-part messages only.
    pub fn body_text(&self) -> String {
        let (_, body) = self.split();
        let encoding = self
            .header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let decoded = match encoding.as_str() {
            "quoted-printable" => {
                quoted_printable::decode(body, quoted_printable::ParseMode::Robust)
                    .expect("quoted-printable body")
            }
            "base64" => {
                let compact: String = body.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("base64 body")
            }
            _ => body.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&decoded).replace("\r\n", "\n")
    }

    fn split(&self) -> (&str, &str) {
        self.data
            .split_once("\r\n\r\n")
            .unwrap_or((self.data.as_str(), ""))
    }
}

/// A running SMTP sink; it stops when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
    server: JoinHandle<()>,
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts a sink on `port` of 127.0.0.1 (0: any free port). A test can leave a
    /// port from [`free_port`] closed to play a server that is down, then start
    /// the sink there to bring it back.
    pub async fn start_on(port: u16) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap_or_else(|e| panic!("SMTP sink cannot listen on port {port}: {e}"));
        let addr = listener.local_addr().expect("sink address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let server = tokio::spawn(accept_loop(listener, Arc::clone(&received)));
        Self {
            addr,
            received,
            server,
        }
    }

    /// Where the sink listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:<port>`: plain SMTP, as the mailer's `smtp_url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedEmail> {
        self.received.lock().expect("sink lock").clone()
    }

    /// Waits until at least `count` messages have arrived and returns them all;
    /// panics, saying how many came, when `timeout` passes first.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedEmail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} email(s) within {timeout:?}, got {}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts the sessions.
        self.server.abort();
    }
}

/// A port of 127.0.0.1 that nothing listens on (free when this returns; another
/// process could take it, which is unlikely within a test).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind port 0");
    listener.local_addr().expect("local address").port()
}

async fn accept_loop(listener: TcpListener, received: Arc<Mutex<Vec<ReceivedEmail>>>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    sessions.spawn(session(stream, Arc::clone(&received)));
                }
                Err(error) => eprintln!("SMTP sink: accept failed: {error}"),
            },
            // Reap finished sessions so the set does not grow without bound.
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

/// One client connection. I/O errors end it quietly: a client may hang up
/// without QUIT (lettre does, after a send).
async fn session(stream: TcpStream, received: Arc<Mutex<Vec<ReceivedEmail>>>) {
    let _ = serve(stream, received).await;
}

async fn serve(stream: TcpStream, received: Arc<Mutex<Vec<ReceivedEmail>>>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    reply(&mut writer, "220 punctual-smtp-sink ESMTP ready").await?;
    let mut from: Option<String> = None;
    let mut to: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(&mut reader).await? else {
            return Ok(());
        };
        let (verb, argument) = match line.split_once(' ') {
            Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
            None => (line.to_ascii_uppercase(), ""),
        };
        match verb.as_str() {
            "EHLO" => {
                from = None;
                to.clear();
                reply(
                    &mut writer,
                    "250-punctual-smtp-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 10485760",
                )
                .await?;
            }
            "HELO" => {
                from = None;
                to.clear();
                reply(&mut writer, "250 punctual-smtp-sink").await?;
            }
            "MAIL" => match path_after(argument, "FROM:") {
                Some(sender) => {
                    from = Some(sender);
                    to.clear();
                    reply(&mut writer, "250 2.1.0 OK").await?;
                }
                None => reply(&mut writer, "501 5.5.4 Syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" => match (&from, path_after(argument, "TO:")) {
                (None, _) => reply(&mut writer, "503 5.5.1 MAIL first").await?,
                (Some(_), Some(recipient)) => {
                    to.push(recipient);
                    reply(&mut writer, "250 2.1.5 OK").await?;
                }
                (Some(_), None) => {
                    reply(&mut writer, "501 5.5.4 Syntax: RCPT TO:<address>").await?
                }
            },
            "DATA" => {
                let Some(sender) = from.take().filter(|_| !to.is_empty()) else {
                    reply(&mut writer, "503 5.5.1 MAIL and RCPT first").await?;
                    continue;
                };
                reply(&mut writer, "354 End data with <CR><LF>.<CR><LF>").await?;
                let Some(data) = read_data(&mut reader).await? else {
                    return Ok(());
                };
                let message = ReceivedEmail {
                    from: sender,
                    to: std::mem::take(&mut to),
                    data,
                };
                let queued = {
                    let mut all = received.lock().expect("sink lock");
                    all.push(message);
                    all.len()
                };
                reply(&mut writer, &format!("250 2.0.0 OK queued as {queued}")).await?;
            }
            "RSET" => {
                from = None;
                to.clear();
                reply(&mut writer, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(&mut writer, "250 2.0.0 OK").await?,
            "QUIT" => {
                reply(&mut writer, "221 2.0.0 Bye").await?;
                return Ok(());
            }
            _ => reply(&mut writer, "500 5.5.2 Command not recognized").await?,
        }
    }
}

/// `<address>` after `keyword` (`FROM:` or `TO:`), ignoring parameters such as
/// `BODY=8BITMIME`. The null sender `<>` is the empty string.
fn path_after(argument: &str, keyword: &str) -> Option<String> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    let rest = rest.strip_prefix('<')?;
    let (address, _parameters) = rest.split_once('>')?;
    Some(address.to_owned())
}

/// One command line without its CRLF; `None` when the client hung up.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<String>> {
    let mut bytes = Vec::new();
    if reader.read_until(b'\n', &mut bytes).await? == 0 {
        return Ok(None);
    }
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// The message after DATA up to the lone `.` line, dot-unstuffed; `None` when
/// the client hung up before finishing it.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<String>> {
    let mut data = String::new();
    loop {
        let Some(line) = read_line(reader).await? else {
            return Ok(None);
        };
        if line == "." {
            return Ok(Some(data));
        }
        // RFC 5321 §4.5.2: the client doubled every leading dot.
        let line = line.strip_prefix('.').unwrap_or(&line);
        data.push_str(line);
        data.push_str("\r\n");
    }
}

/// One reply in one write: split into small writes, Nagle's algorithm and the
/// client's delayed ACKs would add tens of milliseconds to every command.
async fn reply<W: AsyncWrite + Unpin>(writer: &mut W, text: &str) -> std::io::Result<()> {
    writer.write_all(format!("{text}\r\n").as_bytes()).await?;
    writer.flush().await
}
