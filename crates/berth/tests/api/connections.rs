//! Slow and idle clients (issue 7, part 1) and bounded logs (part 5): on the `slow` server
//! (2 s timeouts, 1 MB PostgreSQL logs), a client trickling its head or its body and a kept-alive
//! connection left idle are cut off; on a server with 512 open files, 2,000 idle connections
//! leave `/healthz` answering, and so do slow heads and bodies beyond the total and per-address
//! caps. Bounds are generous: only "cut off eventually" is asserted.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;

const SLOW_TIMEOUT_SECS: u64 = 2;
/// Much longer than the timeouts: a connection still open then was never going to be closed.
const CUT_OFF_BOUND: Duration = Duration::from_secs(30);

static SLOW: OnceLock<Result<Server, String>> = OnceLock::new();

fn slow() -> &'static Server {
    static_server(&SLOW, "slow", || {
        format!(
            "{}\n[http]\nheader_timeout_secs = {SLOW_TIMEOUT_SECS}\nbody_timeout_secs = {SLOW_TIMEOUT_SECS}\nidle_timeout_secs = {SLOW_TIMEOUT_SECS}\nsend_timeout_secs = {SLOW_TIMEOUT_SECS}\n\n[log]\npostgres_log_max_mb = 1\npostgres_log_keep = 1\n",
            base_config()
        )
    })
}

fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Feeds `stream` one byte of `trickle` a second (none when empty) until the server closes the
/// connection; returns everything the server sent. Fails if still open after `CUT_OFF_BOUND`.
fn until_cut_off(stream: &mut TcpStream, trickle: &[u8]) -> Result<String, String> {
    let deadline = Instant::now() + CUT_OFF_BOUND;
    let mut received = Vec::new();
    let mut fed = 0usize;
    let text = |r: &[u8]| String::from_utf8_lossy(r).into_owned();
    while Instant::now() < deadline {
        if !trickle.is_empty() {
            let byte = trickle[fed % trickle.len()];
            fed += 1;
            if stream.write_all(&[byte]).is_err() {
                return Ok(text(&received));
            }
        }
        let mut buf = [0u8; 4096];
        // The read timeout (1 s) paces the trickle.
        match stream.read(&mut buf) {
            Ok(0) => return Ok(text(&received)),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Ok(text(&received)),
        }
    }
    Err(format!(
        "still open after {CUT_OFF_BOUND:?} ({fed} bytes sent); received {:?}",
        text(&received)
    ))
}

#[test]
fn a_client_that_trickles_its_head_or_sends_nothing_is_cut_off() {
    let s = slow();
    let trickle = || {
        let mut c = connect(s);
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        let got = until_cut_off(&mut c, b"abcdefgh").unwrap_or_else(|e| panic!("slow head: {e}"));
        assert!(
            !got.contains("200 OK"),
            "a partial head was answered: {got}"
        );
    };
    let silent = || {
        let mut c = connect(s);
        let got = until_cut_off(&mut c, b"").unwrap_or_else(|e| panic!("silent client: {e}"));
        assert!(got.is_empty(), "nothing was asked, yet: {got}");
    };
    std::thread::scope(|t| {
        t.spawn(trickle);
        t.spawn(silent);
    });
}

#[test]
fn a_client_that_trickles_its_body_is_answered_408_and_cut_off() {
    let s = slow();
    let mut c = connect(s);
    c.write_all(
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{",
    )
    .unwrap();
    let got = until_cut_off(&mut c, b" ").unwrap_or_else(|e| panic!("slow body: {e}"));
    assert!(got.starts_with("HTTP/1.1 408"), "not a 408: {got:?}");
    assert!(got.contains("\"error\":\"request_timeout\""), "{got}");
    assert!(
        got.to_ascii_lowercase().contains("connection: close"),
        "{got}"
    );
}

#[test]
fn an_idle_kept_alive_connection_is_closed() {
    let s = slow();
    let mut c = connect(s);
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    // The whole answer, then silence: the connection is kept alive, then closed as idle.
    let mut answer = Vec::new();
    let started = Instant::now();
    while !String::from_utf8_lossy(&answer).contains("\"ok\"") {
        assert!(started.elapsed() < CUT_OFF_BOUND, "no answer: {answer:?}");
        let mut buf = [0u8; 4096];
        match c.read(&mut buf) {
            Ok(0) => panic!("closed before answering: {answer:?}"),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("reading: {e}"),
        }
    }
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(
        !answer.contains("connection: close"),
        "not kept alive: {answer}"
    );
    let rest = until_cut_off(&mut c, b"").unwrap_or_else(|e| panic!("idle connection: {e}"));
    assert!(rest.is_empty(), "{rest}");
}

#[test]
fn a_client_that_does_not_read_its_answers_is_cut_off() {
    const REQUESTS: usize = 200;
    let s = slow();
    let mut c = connect(s);
    // Pipelined requests for a large document, none of whose answers is read: far more than
    // the socket buffers hold, so writing stalls (cut off by the send or the idle timeout,
    // whichever applies to where hyper is in writing).
    let one = b"GET /api/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n";
    c.write_all(&one.repeat(REQUESTS)).unwrap();
    std::thread::sleep(Duration::from_secs(4 * SLOW_TIMEOUT_SECS + 4));
    // Now read what was sent before the server gave up, up to the end of the connection.
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut all = Vec::new();
    let closed = loop {
        let mut buf = [0u8; 65536];
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false
            }
            Err(_) => break true,
        }
    };
    let answered = String::from_utf8_lossy(&all)
        .matches("HTTP/1.1 200")
        .count();
    assert!(
        closed && answered < REQUESTS,
        "closed: {closed}, {answered} of {REQUESTS} answers ({} bytes)",
        all.len()
    );
}

#[test]
fn two_thousand_idle_connections_leave_healthz_answering_with_512_open_files() {
    const NOFILE: u64 = 512;
    const IDLE: usize = 2_000;
    // Timeouts far longer than the test: only the connection cap can keep /healthz reachable.
    let config = format!(
        "{}\n[http]\nheader_timeout_secs = 600\nidle_timeout_secs = 600\n",
        base_config()
    );
    let dir = Dedicated::new_dir("fd-limit", &config);
    let server = Dedicated::start_with_nofile(&dir, ADMIN_PASSWORD, Some(NOFILE));
    let log = server.server.log_text();
    assert!(
        log.contains("open-file limit") && log.contains("\"limit\":512"),
        "the limit in force is not logged: {log}"
    );

    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        // Past the cap, connections wait in the kernel's backlog (or are refused when it is full).
        if let Ok(c) = TcpStream::connect_timeout(&server.server.addr, Duration::from_secs(2)) {
            idle.push(c);
        }
    }
    assert!(
        idle.len() as u64 > NOFILE,
        "only {} connections opened",
        idle.len()
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match raw_http(
            server.server.addr,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ) {
            Ok((200, _)) => break,
            other => assert!(
                Instant::now() < deadline,
                "/healthz does not answer with {} idle connections open: {other:?}; log:\n{}",
                idle.len(),
                server.server.log_text()
            ),
        }
    }
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(
        (fds as u64) < NOFILE,
        "berth holds {fds} descriptors of {NOFILE}"
    );
    let log = server.server.log_text();
    assert!(!log.contains("Too many open files"), "{log}");
    drop(idle);
    server.remove_dir();
}

#[test]
fn requests_are_not_logged_at_info_by_default() {
    let s = slow();
    let id = unique("log-level-probe");
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: {id}\r\nConnection: close\r\n\r\n"
    );
    let (status, _) = raw_http(s.addr, request.as_bytes()).unwrap();
    assert_eq!(status, 200);
    // The line is written before the answer is sent, so it would be there by now.
    let log = s.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&id)).collect();
    assert!(
        lines.iter().all(|l| !l.contains("\"level\":\"INFO\"")),
        "the request is logged at INFO: {lines:#?}"
    );
    assert!(
        log.lines()
            .all(|l| !(l.contains("request completed") && l.contains("\"level\":\"INFO\""))),
        "requests are logged at INFO"
    );
}

#[test]
fn a_postgresql_log_that_keeps_growing_is_rotated() {
    let s = slow();
    let log = s.data_dir().join("logs").join("system-postgres.log");
    let copy = s.data_dir().join("logs").join("system-postgres.log.1");
    assert!(log.is_file(), "{} is missing", log.display());
    // What a chatty PostgreSQL would write: 3 MB through an O_APPEND descriptor, like its stderr.
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let line = format!("{}\n", "LOG:  something worth a line ".repeat(3));
    for _ in 0..(3 * 1024 * 1024 / line.len()) {
        f.write_all(line.as_bytes()).unwrap();
    }
    let max = 1024 * 1024;
    let deadline = Instant::now() + Duration::from_secs(60);
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    while size(&log) > max || !copy.is_file() {
        assert!(
            Instant::now() < deadline,
            "the log is still {} bytes",
            size(&log)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Writes through the old descriptor land at the start of the emptied file.
    f.write_all(b"after rotation\n").unwrap();
    assert!(size(&log) < max);
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("after rotation"));
}

/// A connection to `server` from `127.0.0.{last}` (all of 127/8 is loopback on Linux), so one
/// test can be several client addresses.
fn connect_from(server: &Server, last: u8) -> TcpStream {
    use std::os::fd::FromRawFd;
    let std::net::SocketAddr::V4(remote) = server.addr else {
        panic!("the test server is not on IPv4: {}", server.addr)
    };
    let sockaddr = |ip: std::net::Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let local = sockaddr(std::net::Ipv4Addr::new(127, 0, 0, last), 0);
    let remote = sockaddr(*remote.ip(), remote.port());
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor owned here, handed to TcpStream at the end.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let stream = TcpStream::from_raw_fd(fd);
        let r = libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        let r = libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len);
        assert_eq!(r, 0, "connect: {}", std::io::Error::last_os_error());
        stream
    }
}

/// Whether the server has closed `c` (read without blocking: end of stream or an error).
fn closed_by_server(mut c: &TcpStream) -> bool {
    c.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    let closed = match c.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != ErrorKind::WouldBlock,
    };
    c.set_nonblocking(false).unwrap();
    closed
}

/// A head begun and never finished, or a complete head whose body never comes.
fn slow_client(server: &Server, last: u8, body: bool) -> TcpStream {
    let mut c = connect_from(server, last);
    let start: &[u8] = if body {
        b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"grant"
    } else {
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: abc"
    };
    c.write_all(start).unwrap();
    c
}

#[test]
fn slow_clients_beyond_the_caps_leave_healthz_answering() {
    const MAX: usize = 16;
    const PER_ADDRESS: usize = 8;
    // Timeouts far longer than the test: only making room can keep /healthz reachable.
    let config = format!(
        "{}\n[http]\nheader_timeout_secs = 600\nbody_timeout_secs = 600\nidle_timeout_secs = 600\n\
         max_connections = {MAX}\nmax_connections_per_address = {PER_ADDRESS}\n",
        base_config()
    );
    let dir = Dedicated::new_dir("slow-caps", &config);
    let server = Dedicated::start(&dir, ADMIN_PASSWORD);
    let s = &server.server;
    let healthz = |last: u8| -> Result<u16, String> {
        let mut c = connect_from(s, last);
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        text.strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("no answer: {text:?}"))
    };
    let until_healthy = |last: u8, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match healthz(last) {
                Ok(200) => break,
                other => assert!(
                    Instant::now() < deadline,
                    "/healthz does not answer {what}: {other:?}; log:\n{}",
                    s.log_text()
                ),
            }
        }
    };

    // Four addresses, each at its own cap with half-sent heads and bodies: twice the total cap.
    let mut slow = Vec::new();
    for last in 2..6u8 {
        for i in 0..PER_ADDRESS {
            slow.push(slow_client(s, last, i % 2 == 1));
        }
    }
    until_healthy(1, "past the total cap of slow heads and bodies");
    drop(slow);

    // One address over its own cap: its oldest slow connections make room for its newest.
    let same = (0..PER_ADDRESS + 4)
        .map(|i| slow_client(s, 6, i % 2 == 1))
        .collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let closed = same.iter().filter(|c| closed_by_server(c)).count();
        if closed >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{closed} of {} connections from one address closed, cap {PER_ADDRESS}",
            same.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    until_healthy(6, "from an address at its cap");
    drop(same);
    server.remove_dir();
}
