//! A TCP proxy that a test can stop forwarding, to cut a node off from the others.
//!
//! Each connection gets a *tag* naming whose connection it is; blocking a tag closes that
//! tag's open connections and refuses its new ones. A Kafka proxy tags a connection by the
//! client id of its first request: a broker's replica fetcher (`rill-replica-fetcher-{me}-..`)
//! and liveness checks (`rill-controller-liveness-{me}`) become `node-{me}`, anything else
//! (test clients) `client`. A plain proxy tags every connection with one fixed tag.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a proxy names a connection.
#[derive(Clone)]
enum Tagger {
    /// Every connection has this tag.
    Fixed(String),
    /// The client id of the first Kafka request decides (see the module doc).
    KafkaClientId,
}

#[derive(Default)]
struct State {
    blocked: HashSet<String>,
    /// Open connections: tag, client side, upstream side.
    conns: Vec<(String, TcpStream, TcpStream)>,
}

/// A running proxy on `127.0.0.1:<port>` forwarding to one upstream address.
pub struct Proxy {
    /// `127.0.0.1:port` to connect to instead of the upstream.
    pub addr: String,
    state: Arc<Mutex<State>>,
}

impl Proxy {
    /// A proxy whose connections all carry `tag`.
    pub fn plain(upstream: &str, tag: &str) -> Proxy {
        Proxy::start(upstream, Tagger::Fixed(tag.to_string()))
    }

    /// A proxy in front of a Kafka listener, tagging by client id.
    pub fn kafka(upstream: &str) -> Proxy {
        Proxy::start(upstream, Tagger::KafkaClientId)
    }

    fn start(upstream: &str, tagger: Tagger) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let upstream = upstream.to_string();
        let st = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let (st, upstream, tagger) = (st.clone(), upstream.clone(), tagger.clone());
                std::thread::spawn(move || serve(client, &upstream, &tagger, &st));
            }
        });
        Proxy { addr, state }
    }

    /// Closes `tag`'s open connections and refuses its new ones until [`Proxy::unblock`].
    pub fn block(&self, tag: &str) {
        let mut st = self.state.lock().expect("proxy state");
        st.blocked.insert(tag.to_string());
        st.conns.retain(|(t, a, b)| {
            if t == tag {
                let _ = a.shutdown(Shutdown::Both);
                let _ = b.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }

    /// Forwards `tag`'s connections again.
    pub fn unblock(&self, tag: &str) {
        self.state.lock().expect("proxy state").blocked.remove(tag);
    }
}

fn serve(mut client: TcpStream, upstream: &str, tagger: &Tagger, st: &Mutex<State>) {
    let _ = client.set_nodelay(true);
    let mut first = Vec::new();
    let tag = match tagger {
        Tagger::Fixed(t) => t.clone(),
        Tagger::KafkaClientId => {
            let Some(frame) = read_frame(&mut client) else {
                return;
            };
            let tag = tag_of(&frame);
            first = frame;
            tag
        }
    };
    if st.lock().expect("proxy state").blocked.contains(&tag) {
        return;
    }
    let Ok(mut up) = TcpStream::connect_timeout(
        &upstream.parse().expect("upstream address"),
        Duration::from_secs(5),
    ) else {
        return;
    };
    let _ = up.set_nodelay(true);
    if up.write_all(&first).is_err() {
        return;
    }
    let (Ok(c2), Ok(u2)) = (client.try_clone(), up.try_clone()) else {
        return;
    };
    {
        let mut s = st.lock().expect("proxy state");
        // Blocked while connecting: do not let it through.
        if s.blocked.contains(&tag) {
            return;
        }
        if let (Ok(c3), Ok(u3)) = (client.try_clone(), up.try_clone()) {
            s.conns.push((tag, c3, u3));
        }
    }
    let back = std::thread::spawn(move || pipe(u2, c2));
    pipe(client, up);
    let _ = back.join();
}

/// Copies until either side closes, then closes both.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// One length-prefixed Kafka frame, prefix included.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).ok()?;
    let n = usize::try_from(i32::from_be_bytes(len)).ok()?;
    let mut frame = len.to_vec();
    frame.resize(4 + n, 0);
    s.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

/// `node-{id}` for a broker's own connections, else `client` (request header v1+: key,
/// version, correlation id, then the client id as an int16-length string).
fn tag_of(frame: &[u8]) -> String {
    let client_id = frame
        .get(12..14)
        .map(|l| i16::from_be_bytes([l[0], l[1]]))
        .and_then(|l| usize::try_from(l).ok())
        .and_then(|l| frame.get(14..14 + l))
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let node = client_id
        .strip_prefix("rill-replica-fetcher-")
        .and_then(|rest| rest.split('-').next())
        .or_else(|| client_id.strip_prefix("rill-controller-liveness-"));
    match node {
        Some(id) => format!("node-{id}"),
        None => "client".to_string(),
    }
}

/// A cluster whose nodes reach each other only through proxies: node `i`'s Kafka listener
/// sits behind `kafka[i]` (its advertised address), and its Raft traffic to node `j` goes
/// through `raft[i][j]` (its own `controller.quorum.voters` entry for `j`).
pub struct Network {
    /// One Kafka proxy per node, index = node id - 1.
    pub kafka: Vec<Proxy>,
    /// `raft[i][j]`: node i+1's route to node j+1's controller listener (`None` for i == j).
    pub raft: Vec<Vec<Option<Proxy>>>,
}

impl Network {
    /// Cuts node `id` off from every other node (clients still reach it).
    pub fn isolate(&self, id: usize) {
        self.set(id, true);
    }

    /// Undoes [`Network::isolate`].
    pub fn heal(&self, id: usize) {
        self.set(id, false);
    }

    fn set(&self, id: usize, cut: bool) {
        let n = self.kafka.len();
        let apply = |p: &Proxy, tag: &str| {
            if cut {
                p.block(tag)
            } else {
                p.unblock(tag)
            }
        };
        for other in (1..=n).filter(|o| *o != id) {
            apply(&self.kafka[id - 1], &format!("node-{other}"));
            apply(&self.kafka[other - 1], &format!("node-{id}"));
            if let Some(p) = &self.raft[id - 1][other - 1] {
                apply(p, "raft");
            }
            if let Some(p) = &self.raft[other - 1][id - 1] {
                apply(p, "raft");
            }
        }
    }
}
