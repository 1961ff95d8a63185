//! One client connection: a reader that handles frames in order, and one
//! writer (the only task that writes to the socket, so frames never
//! interleave) that sends the answers to this connection's requests before
//! any DATA, and holds DATA back while a request is waiting for its answer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::dispatch::{Conn, Hub};
use crate::frame::{read_frame, FrameError};
use crate::reply;
use crate::request::{self, Reply, Session};

/// DATA frames written per flush at most.
const WRITE_BATCH: usize = 64;
/// Bytes of DATA gathered per flush (about).
const WRITE_BYTES: usize = 1 << 20;
/// Answers queued for the writer before the reader waits.
const REPLY_QUEUE: usize = 64;
/// How long a closing connection keeps reading (and discarding) so that
/// its last answer is not lost to a reset.
const LINGER: Duration = Duration::from_millis(500);
/// How long a closing connection waits for its writer.
const WRITER_EXIT: Duration = Duration::from_secs(5);

/// Serves one connection until the client leaves, breaks the protocol, falls
/// silent for the idle timeout, or the server shuts down.
pub async fn serve(stream: TcpStream, hub: Arc<Hub>, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let conn = Conn::new();
    let (replies, replies_rx) = mpsc::channel::<Reply>(REPLY_QUEUE);
    let writer = tokio::spawn(write_loop(wr, conn.clone(), replies_rx, hub.clone()));
    let session = Session {
        hub: hub.clone(),
        conn: conn.clone(),
    };
    let mut rd = BufReader::new(rd);
    let idle = hub.config.idle_timeout;
    let max = hub.config.max_frame;
    let mut linger = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let next = tokio::select! {
            read = tokio::time::timeout(idle, read_frame(&mut rd, max)) => read,
            _ = shutdown.changed() => break,
            _ = conn.broken.notified() => break,
        };
        let frame = match next {
            Err(_) => break, // silent for too long
            Ok(Ok(None)) => break,
            Ok(Ok(Some(frame))) => frame,
            Ok(Err(FrameError::Broken)) => break,
            Ok(Err(FrameError::Fatal { seq, reason })) => {
                let _ = replies
                    .send(Reply {
                        frame: reply::bad_request(seq, reason),
                        answers: false,
                        then: None,
                    })
                    .await;
                linger = true;
                break;
            }
            Ok(Err(FrameError::Invalid { seq, reason })) => {
                if replies
                    .send(Reply {
                        frame: reply::bad_request(seq, reason),
                        answers: false,
                        then: None,
                    })
                    .await
                    .is_err()
                {
                    break;
                }
                continue;
            }
        };
        let counted = request::is_request(frame.kind);
        if counted {
            conn.pending.fetch_add(1, Ordering::SeqCst);
        }
        if let Some(answer) = request::handle(&session, frame).await {
            if replies.send(answer).await.is_err() {
                break;
            }
        }
    }
    // The members go first, so their unwritten DATA returns to the others;
    // then the writer sends what is left to answer and ends.
    hub.leave_connection(&conn).await;
    drop(replies);
    let mut writer = writer;
    if tokio::time::timeout(WRITER_EXIT, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    if linger {
        // Read what the client still sends for a moment: closing with unread
        // data would reset the connection and could lose the last answer.
        let mut sink = [0u8; 8192];
        let until = tokio::time::Instant::now() + LINGER;
        while let Ok(Ok(n)) = tokio::time::timeout_at(until, rd.read(&mut sink)).await {
            if n == 0 {
                break;
            }
        }
    }
}

/// The connection's only writer.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    conn: Arc<Conn>,
    mut replies: mpsc::Receiver<Reply>,
    hub: Arc<Hub>,
) {
    let timeout = hub.config.idle_timeout;
    let mut carry: Option<Reply> = None;
    let mut open = true;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let mut answered = 0;
        let mut after = Vec::new();
        let mut take = |r: Reply, buf: &mut Vec<u8>| {
            r.frame.encode(buf);
            if r.answers {
                answered += 1;
            }
            if let Some(then) = r.then {
                after.push(then);
            }
        };
        if let Some(r) = carry.take() {
            take(r, &mut buf);
        }
        while open {
            match replies.try_recv() {
                Ok(r) => take(r, &mut buf),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        // DATA only while no request of this connection waits for its answer.
        let data = if open && conn.pending.load(Ordering::SeqCst) == answered {
            conn.take_batch(WRITE_BATCH, WRITE_BYTES)
        } else {
            Vec::new()
        };
        for d in &data {
            buf.extend_from_slice(&d.bytes);
        }
        if buf.is_empty() {
            if !open {
                break;
            }
            tokio::select! {
                r = replies.recv() => match r {
                    Some(r) => carry = Some(r),
                    None => open = false,
                },
                _ = conn.data_ready.notified() => {}
            }
            continue;
        }
        let wrote = tokio::time::timeout(timeout, async {
            wr.write_all(&buf).await?;
            wr.flush().await
        })
        .await;
        if !matches!(wrote, Ok(Ok(()))) {
            conn.mark_broken();
            hub.unwritten(data).await;
            return;
        }
        conn.pending.fetch_sub(answered, Ordering::SeqCst);
        after.into_iter().for_each(|then| then());
        if !data.is_empty() {
            crate::count(&hub.config.stats.data_writes, 1);
            hub.written(data);
        }
    }
    let _ = wr.shutdown().await;
}
