//! Handler-based watching, on the current thread or a background one.

use std::thread::JoinHandle;

use super::{StopHandle, WatchError, Watcher};
use crate::delivery::Sink;
use crate::error::Result;
use crate::message::Message;

/// Adapts a handler function into a [`Sink`]: a message counts as delivered
/// when the handler returns `Ok`; on `Err` it stays queued (consume mode).
pub struct HandlerSink<H> {
    handler: H,
}

impl<H, E> HandlerSink<H>
where
    H: FnMut(&Message) -> std::result::Result<(), E>,
{
    /// Wraps `handler`.
    pub fn new(handler: H) -> Self {
        HandlerSink { handler }
    }
}

/// A handler's failure, with the message it failed on.
#[derive(Debug)]
pub struct HandlerFailure<E> {
    /// What the handler returned.
    pub error: E,
    /// The message (still in the queue in consume mode).
    pub message: Message,
}

impl<H, E> Sink for HandlerSink<H>
where
    H: FnMut(&Message) -> std::result::Result<(), E>,
{
    type Error = HandlerFailure<E>;

    fn accept(&mut self, msg: &Message) -> std::result::Result<(), Self::Error> {
        (self.handler)(msg).map_err(|error| HandlerFailure {
            error,
            message: msg.clone(),
        })
    }

    fn flush(&mut self) -> std::result::Result<usize, (usize, Self::Error)> {
        Ok(0)
    }
}

impl Watcher {
    /// Watches with `handler`, until stopped. When the handler fails, the
    /// message stays queued and `on_error` decides: `true` keeps watching (the
    /// message is retried on the next change or rescan, not in a hot loop),
    /// `false` stops. Storage errors stop the watcher and are returned.
    pub fn run_with<H, E, F>(&self, handler: H, mut on_error: F) -> Result<()>
    where
        H: FnMut(&Message) -> std::result::Result<(), E>,
        F: FnMut(&E, &Message) -> bool,
    {
        let mut sink = HandlerSink::new(handler);
        loop {
            match self.run(&mut sink) {
                Ok(()) => return Ok(()),
                Err(WatchError::Backend(e)) => return Err(e),
                Err(WatchError::Sink(f)) => {
                    if !on_error(&f.error, &f.message) {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        }
    }

    /// Runs [`Watcher::run_with`] on a background thread. The returned handle
    /// stops and joins the thread when dropped (the reference's context-manager form).
    pub fn spawn<H, E, F>(self, handler: H, on_error: F) -> WatcherThread
    where
        H: FnMut(&Message) -> std::result::Result<(), E> + Send + 'static,
        F: FnMut(&E, &Message) -> bool + Send + 'static,
        E: 'static,
    {
        let stop = self.stop_handle();
        let join = std::thread::spawn(move || self.run_with(handler, on_error));
        WatcherThread {
            stop,
            join: Some(join),
        }
    }
}

/// A watcher running on a background thread.
pub struct WatcherThread {
    stop: StopHandle,
    join: Option<JoinHandle<Result<()>>>,
}

impl WatcherThread {
    /// Asks the watcher to stop (it finishes the message it is on).
    pub fn stop(&self) {
        self.stop.stop();
    }

    /// Stops the watcher and waits for it; returns its storage error, if any.
    pub fn join(mut self) -> Result<()> {
        self.stop();
        self.wait()
    }

    fn wait(&mut self) -> Result<()> {
        match self.join.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => Ok(()),
        }
    }
}

impl Drop for WatcherThread {
    fn drop(&mut self) {
        self.stop();
        let _ = self.wait();
    }
}
