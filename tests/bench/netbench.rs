//! netbench: a tiny std-only load generator and receiver for tests/bench/network.sh.
//!
//! Built statically by the script (`rustc -O -C target-feature=+crt-static`) so that the same
//! binary runs on the host and inside a busybox image. Addresses are numeric (`IP:PORT`): a
//! static glibc cannot load NSS modules, and the benchmark never needs a resolver except in
//! `dns` mode, which speaks DNS itself.
//!
//!   netbench sink PORT                   TCP: accept, read and discard; one line per connection
//!   netbench send IP:PORT BYTES          TCP: send BYTES, wait for the peer to close; MB/s
//!   netbench echo PORT                   TCP: accept, echo one byte, close
//!   netbench connect-rate IP:PORT N      N x (connect, 1-byte echo, close); mean/p50/p99 us
//!   netbench udp-echo PORT               UDP: echo every datagram
//!   netbench udp-rate IP:PORT N          N x 1-byte UDP round trip; mean/p50/p99 us
//!   netbench dns NAME N                  N x A query for NAME to resolv.conf's nameserver

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

/// Large enough that the syscall count is no limit at several GB/s.
const BUF: usize = 256 * 1024;

/// Round trips not counted before measuring: first ARP, conntrack and page faults.
const WARMUP: usize = 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match a.as_slice() {
        ["sink", port] => port_arg(port).and_then(sink),
        ["send", addr, bytes] => addr_arg(addr).and_then(|s| send(s, num_arg(bytes)?)),
        ["echo", port] => port_arg(port).and_then(echo),
        ["connect-rate", addr, n] => addr_arg(addr).and_then(|s| connect_rate(s, num_arg(n)?)),
        ["udp-echo", port] => port_arg(port).and_then(udp_echo),
        ["udp-rate", addr, n] => addr_arg(addr).and_then(|s| udp_rate(s, num_arg(n)?)),
        ["dns", name, n] => num_arg(n).and_then(|n| dns(name, n)),
        _ => Err(format!(
            "usage: netbench sink PORT | send IP:PORT BYTES | echo PORT | connect-rate IP:PORT N \
             | udp-echo PORT | udp-rate IP:PORT N | dns NAME N (got {args:?})"
        )),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netbench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn port_arg(s: &str) -> Result<u16, String> {
    s.parse().map_err(|e| format!("port {s:?}: {e}"))
}

fn num_arg(s: &str) -> Result<u64, String> {
    s.parse().map_err(|e| format!("number {s:?}: {e}"))
}

fn addr_arg(s: &str) -> Result<SocketAddr, String> {
    s.parse()
        .map_err(|e| format!("address {s:?} (want IP:PORT): {e}"))
}

fn ctx<T>(what: &str, r: io::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn listen(port: u16) -> Result<TcpListener, String> {
    ctx(
        &format!("listen on port {port}"),
        TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)),
    )
}

fn sink(port: u16) -> Result<(), String> {
    let l = listen(port)?;
    loop {
        let (mut s, peer) = match l.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("netbench: accept: {e}");
                continue;
            }
        };
        // A thread per connection so a stalled sender never blocks the next one.
        thread::spawn(move || {
            let mut buf = vec![0u8; BUF];
            let start = Instant::now();
            let mut total: u64 = 0;
            loop {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        eprintln!("netbench: read from {peer}: {e}");
                        return;
                    }
                }
            }
            let secs = start.elapsed().as_secs_f64();
            // Closing after EOF tells the sender that every byte arrived.
            drop(s);
            println!(
                "sink {peer} {total} bytes {:.1} MB/s",
                total as f64 / secs / 1e6
            );
        });
    }
}

fn send(addr: SocketAddr, bytes: u64) -> Result<(), String> {
    let buf = vec![0x5au8; BUF];
    let start = Instant::now();
    let mut s = ctx(&format!("connect {addr}"), TcpStream::connect(addr))?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(BUF as u64) as usize;
        ctx("write", s.write_all(&buf[..n]))?;
        left -= n as u64;
    }
    ctx("shutdown", s.shutdown(Shutdown::Write))?;
    // Wait for the sink's close: the figure counts bytes delivered, not bytes buffered.
    let mut b = [0u8; 64];
    while ctx("wait for close", s.read(&mut b))? > 0 {}
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{:.1} MB/s ({bytes} bytes in {secs:.3} s)",
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

fn echo(port: u16) -> Result<(), String> {
    let l = listen(port)?;
    loop {
        let Ok((mut s, _)) = l.accept() else { continue };
        let _ = s.set_nodelay(true);
        let mut b = [0u8; 1];
        if let Ok(1) = s.read(&mut b) {
            let _ = s.write_all(&b);
        }
    }
}

fn connect_rate(addr: SocketAddr, n: u64) -> Result<(), String> {
    let mut us = Vec::with_capacity(n as usize);
    for i in 0..WARMUP as u64 + n {
        let start = Instant::now();
        let mut s = ctx(&format!("connect {addr}"), TcpStream::connect(addr))?;
        ctx("nodelay", s.set_nodelay(true))?;
        ctx("write", s.write_all(b"x"))?;
        let mut b = [0u8; 1];
        ctx("read echo", s.read_exact(&mut b))?;
        drop(s);
        if i >= WARMUP as u64 {
            us.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!("{}", stats(&mut us));
    Ok(())
}

fn udp_echo(port: u16) -> Result<(), String> {
    let s = ctx("bind", UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)))?;
    let mut b = [0u8; 2048];
    loop {
        if let Ok((n, peer)) = s.recv_from(&mut b) {
            let _ = s.send_to(&b[..n], peer);
        }
    }
}

fn udp_rate(addr: SocketAddr, n: u64) -> Result<(), String> {
    let s = ctx("bind", UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))?;
    ctx(&format!("connect {addr}"), s.connect(addr))?;
    ctx("timeout", s.set_read_timeout(Some(Duration::from_secs(2))))?;
    let mut us = Vec::with_capacity(n as usize);
    let mut b = [0u8; 16];
    for i in 0..WARMUP as u64 + n {
        let msg = (i as u32).to_be_bytes();
        let start = Instant::now();
        ctx("send", s.send(&msg))?;
        loop {
            let got = ctx(&format!("reply {i} from {addr}"), s.recv(&mut b))?;
            if b[..got] == msg {
                break;
            }
        }
        if i >= WARMUP as u64 {
            us.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!("{}", stats(&mut us));
    Ok(())
}

fn nameserver() -> Result<SocketAddr, String> {
    let conf = ctx(
        "read /etc/resolv.conf",
        std::fs::read_to_string("/etc/resolv.conf"),
    )?;
    conf.lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .find_map(|v| v.trim().parse::<Ipv4Addr>().ok())
        .map(|ip| SocketAddr::from((ip, 53)))
        .ok_or_else(|| "no IPv4 nameserver in /etc/resolv.conf".to_string())
}

/// A standard recursive query for one A record.
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

fn dns(name: &str, n: u64) -> Result<(), String> {
    if name.split('.').any(|l| l.is_empty() || l.len() > 63) {
        return Err(format!("bad name {name:?}"));
    }
    let server = nameserver()?;
    let s = ctx("bind", UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)))?;
    ctx(&format!("connect {server}"), s.connect(server))?;
    ctx("timeout", s.set_read_timeout(Some(Duration::from_secs(2))))?;
    let mut us = Vec::with_capacity(n as usize);
    let mut b = [0u8; 1500];
    let (mut empty, mut lost) = (0u64, 0u64);
    for i in 0..WARMUP as u64 + n {
        let id = i as u16;
        let q = query(id, name);
        let start = Instant::now();
        ctx("send", s.send(&q))?;
        let reply = loop {
            match s.recv(&mut b) {
                Ok(got) if got >= 12 && b[..2] == id.to_be_bytes() => break Some(got),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break None;
                }
                Err(e) => return Err(format!("reply from {server}: {e}")),
            }
        };
        let Some(_) = reply else {
            lost += 1;
            continue;
        };
        let rcode = b[3] & 0x0f;
        let answers = u16::from_be_bytes([b[6], b[7]]);
        if rcode != 0 || answers == 0 {
            empty += 1;
        }
        if i >= WARMUP as u64 {
            us.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    println!(
        "{} server {server} no-answer {empty} lost {lost}",
        stats(&mut us)
    );
    if empty > 0 || lost > 0 {
        return Err(format!(
            "{name}: {empty} replies without an answer, {lost} lost"
        ));
    }
    Ok(())
}

fn stats(us: &mut [f64]) -> String {
    if us.is_empty() {
        return "n 0".to_string();
    }
    us.sort_by(f64::total_cmp);
    let pct = |p: f64| us[((us.len() - 1) as f64 * p).round() as usize];
    let mean = us.iter().sum::<f64>() / us.len() as f64;
    format!(
        "n {} mean {mean:.1} p50 {:.1} p99 {:.1} max {:.1} us",
        us.len(),
        pct(0.5),
        pct(0.99),
        us[us.len() - 1]
    )
}
