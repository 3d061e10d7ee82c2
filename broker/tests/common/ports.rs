//! Ports announced before they are bound, shared by the broker's and the admin's test
//! harnesses (the admin's includes this file by path).

/// A port nothing listens on right now, picked below the kernel's ephemeral range. The port
/// is bound later by a broker (controller ports must be known up front to list the voters);
/// an ephemeral-range port can be taken meanwhile by any outgoing connection (a test's
/// client, another node's fetcher), one below it only by another listener. Bounded tries,
/// then the kernel's choice.
pub fn free_port() -> u16 {
    use std::hash::BuildHasher;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32_768);
    let floor = 10_000u16.min(ephemeral_low.saturating_sub(1_000));
    let span = u64::from(ephemeral_low.saturating_sub(floor).max(1));
    for attempt in 0u32..200 {
        let random =
            std::collections::hash_map::RandomState::new().hash_one((std::process::id(), attempt));
        let port = floor + (random % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
