//! Lossless delivery: hold a batch, hand it to a [`Sink`], consume what the sink
//! really took, give back the rest in place.
//!
//! The reference consumes a message and then prints it, so a dead pipe or a
//! crash loses it. Here a message is held (invisible to other readers) while it
//! is delivered, and consumed only after the sink confirms it; what the sink did
//! not take returns to its original position. If the process is killed, the
//! next reader finds the holder dead and returns its messages (see
//! [`crate::backend::sqlite::holder`]): a kill costs at most a redelivery of
//! what was delivered since the last acknowledgement, never a loss.

use crate::backend::Backend;
use crate::error::Error;
use crate::message::{Filter, Message};

/// Where delivered messages go (stdout, a handler, a socket).
///
/// A message the sink has pushed out may still be *in transit*: written, but
/// not yet known to have been taken by the receiver (bytes in a pipe that its
/// reader has not read). Delivery consumes a message only once the sink
/// confirms it, so a sink with a receiver that can vanish keeps the messages in
/// transit few and reports them.
pub trait Sink {
    /// The sink's own failure type.
    type Error;

    /// Takes `msg` for delivery; may buffer it.
    fn accept(&mut self, msg: &Message) -> Result<(), Self::Error>;

    /// Pushes out everything accepted since the last flush, and returns how
    /// many of the messages pushed out so far are still in transit: always
    /// the latest ones, all earlier ones being confirmed. A sink whose receiver
    /// has a message as soon as it is written returns 0.
    ///
    /// On failure, says how many of the messages not yet confirmed when it was
    /// called (those in transit, then those accepted since the last flush)
    /// reached the receiver in full, in order; the others never will, and the
    /// sink forgets them.
    fn flush(&mut self) -> Result<usize, (usize, Self::Error)>;

    /// Waits until no message is in transit: each has been confirmed, or the
    /// receiver went away, which fails saying how many of those in transit
    /// reached it in full, in order. The default has nothing to wait for.
    fn confirm(&mut self) -> Result<(), (usize, Self::Error)> {
        Ok(())
    }
}

/// How a delivery run is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// Stop after this many messages (`None`: until the queue is empty).
    pub max: Option<usize>,
    /// Messages held per transaction.
    pub batch: usize,
    /// Messages written to the sink between progress records: the most a kill
    /// at the worst moment can cause to be delivered twice.
    pub ack_every: usize,
}

impl Pacing {
    /// How many messages to take next, `delivered` being done (0: stop).
    fn next_batch(&self, delivered: usize) -> usize {
        self.max
            .map_or(self.batch, |m| m.saturating_sub(delivered).min(self.batch))
    }

    /// One message, acknowledged as soon as it is delivered.
    pub fn single() -> Self {
        Pacing {
            max: Some(1),
            batch: 1,
            ack_every: 1,
        }
    }
}

/// Why a delivery run stopped early.
#[derive(Debug)]
pub enum DeliveryError<E> {
    /// The storage failed.
    Backend(Error),
    /// The sink failed; every message it did not take is back in the queue.
    Sink(E),
}

impl<E> From<Error> for DeliveryError<E> {
    fn from(e: Error) -> Self {
        DeliveryError::Backend(e)
    }
}

/// Delivers messages of `queue` passing `filter` into `sink`; returns how many
/// were delivered (and consumed).
pub fn deliver<S: Sink>(
    backend: &mut dyn Backend,
    queue: &str,
    filter: &Filter,
    pacing: Pacing,
    sink: &mut S,
) -> Result<usize, DeliveryError<S::Error>> {
    in_batches(pacing, |want| {
        let held = backend.hold(queue, filter, want)?;
        if held.is_empty() {
            return Ok(0);
        }
        deliver_batch(backend, &held, pacing.ack_every.max(1), sink)
    })
}

/// Runs `step` with the size of each next batch until pacing says stop or a
/// step finds nothing (returns 0); returns how many messages the steps delivered.
fn in_batches<E>(
    pacing: Pacing,
    mut step: impl FnMut(usize) -> Result<usize, E>,
) -> Result<usize, E> {
    let mut delivered = 0;
    loop {
        let want = pacing.next_batch(delivered);
        if want == 0 {
            return Ok(delivered);
        }
        match step(want)? {
            0 => return Ok(delivered),
            n => delivered += n,
        }
    }
}

/// Delivers one held batch: flushes the sink every `ack_every` messages and
/// records progress for what the sink confirmed, waits until the sink has
/// confirmed the rest, then settles the whole batch in one transaction:
/// consumed as far as confirmed, the rest released in place. A kill in
/// between is covered by the progress record.
fn deliver_batch<S: Sink>(
    backend: &mut dyn Backend,
    held: &[Message],
    ack_every: usize,
    sink: &mut S,
) -> Result<usize, DeliveryError<S::Error>> {
    let mut flushed = 0; // held[..flushed] are pushed out
    let mut confirmed = 0; // held[..confirmed] reached the receiver
    let mut recorded = 0; // progress is recorded through held[..recorded]
    for (i, msg) in held.iter().enumerate() {
        if let Err(e) = sink.accept(msg) {
            let through = wind_down(sink, confirmed, i);
            finish_batch(backend, held, through)?;
            return Err(DeliveryError::Sink(e));
        }
        let accepted = i + 1;
        if accepted - flushed == ack_every || accepted == held.len() {
            match sink.flush() {
                Ok(in_transit) => confirmed = accepted.saturating_sub(in_transit),
                Err((n, e)) => {
                    finish_batch(backend, held, confirmed + n)?;
                    return Err(DeliveryError::Sink(e));
                }
            }
            flushed = accepted;
            if confirmed > recorded && confirmed < held.len() {
                // With everything confirmed the settle follows at once and needs
                // no record: a kill in between redelivers at most the last chunk.
                backend.record_progress(held[confirmed - 1].seq)?;
                recorded = confirmed;
            }
        }
    }
    if let Err((n, e)) = sink.confirm() {
        finish_batch(backend, held, confirmed + n)?;
        return Err(DeliveryError::Sink(e));
    }
    finish_batch(backend, held, held.len())?;
    Ok(held.len())
}

/// After the sink refused a message, with `accepted` taken before it and
/// `confirmed` of those confirmed: pushes out and confirms what it can, and
/// returns how many reached the receiver.
fn wind_down<S: Sink>(sink: &mut S, confirmed: usize, accepted: usize) -> usize {
    match sink.flush() {
        Err((n, _)) => confirmed + n,
        Ok(in_transit) => {
            let confirmed = accepted.saturating_sub(in_transit);
            match sink.confirm() {
                Ok(()) => accepted,
                Err((n, _)) => confirmed + n,
            }
        }
    }
}

/// Settles a batch: `held[..through]` got out and are consumed, the rest
/// return to their queue in place.
fn finish_batch(backend: &mut dyn Backend, held: &[Message], through: usize) -> Result<(), Error> {
    let through = through.min(held.len());
    let consumed = (through > 0).then(|| held[0].seq..=held[through - 1].seq);
    let released = held.get(through..).filter(|rest| !rest.is_empty());
    let released = released.map(|rest| rest[0].seq..=rest[rest.len() - 1].seq);
    backend.settle(consumed, released)
}

/// Delivers leased messages of `queue` into `sink`: each batch is leased
/// (committed) first, then written; whatever the sink did not take in full
/// is returned to the queue at once, its receive not counted. A kill after
/// the lease costs a redelivery when the lease expires, never a loss.
pub fn deliver_leased<S: Sink>(
    backend: &mut dyn Backend,
    queue: &str,
    filter: &Filter,
    pacing: Pacing,
    visibility: Option<std::time::Duration>,
    sink: &mut S,
) -> Result<usize, DeliveryError<S::Error>> {
    in_batches(pacing, |want| {
        let leased = backend.lease(queue, filter, want, visibility)?;
        match write_all(&leased, sink) {
            Ok(()) => Ok(leased.len()),
            Err((through, e)) => {
                let unsent: Vec<_> = leased[through..].iter().filter_map(|m| m.receipt).collect();
                backend.give_back(queue, &unsent)?;
                Err(DeliveryError::Sink(e))
            }
        }
    })
}

/// Accepts, flushes and confirms every message; on failure, how many reached
/// the receiver in full.
fn write_all<S: Sink>(messages: &[Message], sink: &mut S) -> Result<(), (usize, S::Error)> {
    for (i, msg) in messages.iter().enumerate() {
        if let Err(e) = sink.accept(msg) {
            return Err((wind_down(sink, 0, i), e));
        }
    }
    let in_transit = sink.flush()?;
    let confirmed = messages.len().saturating_sub(in_transit);
    sink.confirm().map_err(|(n, e)| (confirmed + n, e))
}
