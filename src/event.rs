//! What the daemon loop reacts to besides the store (which has its own channel per source) and
//! the stop request (a watch channel, selected first so it never queues behind a burst).

#[derive(Debug)]
pub enum Event {
    /// Re-read confd.toml, conf.d and templates (SIGHUP or an edit in the confdir).
    Reconfigure(&'static str),
    /// Compare the sets nginx's balancer holds with the files, and send what differs (see
    /// `dynamic::watch_nginx`).
    Resync(&'static str),
}
