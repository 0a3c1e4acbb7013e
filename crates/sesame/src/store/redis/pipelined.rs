//! Session reads and new sessions sent to Redis together: every command that arrives while
//! the previous batch is on the wire goes out with the others as one pipeline, in one write.
//!
//! A session read or a new session is one round trip on both sides of the benchmark, and the
//! server's time went to the system calls and per-command work around it (one socket write per
//! command), not to Redis. Batching keeps each command current: it waits for a batch *sent
//! after it arrived*, never joins one already in flight, so a read sees every write
//! acknowledged before it started. Commands of a batch run in arrival order, each on its own
//! (no transaction), and an error reply fails only its own command.

use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue, Value};
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;

/// Commands per pipeline at most.
const MAX_BATCH: usize = 128;

type Reply = oneshot::Sender<Result<Value, String>>;

#[derive(Debug, Clone)]
pub(super) struct Pipelined {
    tx: mpsc::UnboundedSender<(Cmd, Reply)>,
}

impl Pipelined {
    /// Start the batching task on the current runtime; it ends when the last handle is dropped.
    pub(super) fn start(conn: ConnectionManager) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(conn, rx));
        Self { tx }
    }

    /// Send `cmd` with the next batch and convert its reply.
    pub(super) async fn query<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreError> {
        let stopped = || StoreError::Other("the Redis pipeline task has stopped".into());
        let (reply, answer) = oneshot::channel();
        self.tx.send((cmd, reply)).map_err(|_| stopped())?;
        let value = answer.await.map_err(|_| stopped())?.map_err(StoreError::Other)?;
        Ok(redis::from_redis_value(value.extract_error()?).map_err(redis::RedisError::from)?)
    }
}

async fn run(mut conn: ConnectionManager, mut rx: mpsc::UnboundedReceiver<(Cmd, Reply)>) {
    let mut batch: Vec<(Cmd, Reply)> = Vec::with_capacity(MAX_BATCH);
    let mut replies: Vec<Reply> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let values: Result<Vec<Value>, redis::RedisError> = if batch.len() == 1 {
            // Alone: sent as it would have been without batching.
            let (cmd, reply) = batch.pop().expect("one command");
            replies.push(reply);
            cmd.query_async::<Value>(&mut conn).await.map(|v| vec![v])
        } else {
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for (cmd, reply) in batch.drain(..) {
                pipe.add_command(cmd);
                replies.push(reply);
            }
            pipe.query_async(&mut conn).await
        };
        match values {
            Ok(values) if values.len() == replies.len() => {
                for (reply, value) in replies.drain(..).zip(values) {
                    let _ = reply.send(Ok(value));
                }
            }
            Ok(values) => {
                let e = format!("{} commands got {} replies", replies.len(), values.len());
                replies.drain(..).for_each(|reply| drop(reply.send(Err(e.clone()))));
            }
            Err(e) => {
                let e = e.to_string();
                replies.drain(..).for_each(|reply| drop(reply.send(Err(e.clone()))));
            }
        }
    }
}
