//! The command line, declared once: parsing, `--help`, shell completions and
//! the man page are all generated from these definitions.

use clap::{Args, Parser, Subcommand};

/// The compatibility level reported by `--version` (the SimpleBroker release
/// whose behaviour we reproduce); scripts that check it keep working.
pub const COMPAT_VERSION: &str = "simplebroker 2.8.4";

/// Simple message broker with SQLite backend (litebroker, SimpleBroker-compatible)
#[derive(Debug, Parser)]
#[command(
    name = "broker",
    disable_version_flag = true,
    after_help = concat!("litebroker ", env!("CARGO_PKG_VERSION"), ", compatible with simplebroker 2.8.4")
)]
pub struct Cli {
    /// Use DIR instead of the current directory
    #[arg(short = 'd', long = "dir", value_name = "DIR")]
    pub dir: Option<String>,
    /// Database filename or absolute path (default: .broker.db)
    #[arg(short = 'f', long = "file", value_name = "NAME")]
    pub file: Option<String>,
    /// A PostgreSQL database (postgres://user@host:port/db) instead of the
    /// SQLite file; also BROKER_DATABASE_URL
    #[arg(long = "db", value_name = "URL")]
    pub db: Option<String>,
    /// With --cleanup on PostgreSQL: yes, drop litebroker's schema
    #[arg(long)]
    pub yes: bool,
    /// Suppress non-error output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Show version information
    #[arg(long)]
    pub version: bool,
    /// Delete the database file and exit
    #[arg(long)]
    pub cleanup: bool,
    /// Remove claimed messages and exit
    #[arg(long)]
    pub vacuum: bool,
    /// With --vacuum: also rebuild the file to its smallest size
    #[arg(long)]
    pub compact: bool,
    /// Show global message count, last timestamp, and DB size (`--status --json`: as JSON)
    #[arg(long)]
    pub status: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Add a message to a queue (use - for stdin)
    Write(WriteArgs),
    /// Remove and return message(s), or lease them with --lease
    Read(ReadCmdArgs),
    /// Return message(s) without removing them
    Peek(ReadArgs),
    /// Atomically transfer messages between queues
    Move(MoveArgs),
    /// Show queues and message counts
    List(ListArgs),
    /// Delete a queue, a message, or everything
    Delete(DeleteArgs),
    /// Send a message to all existing queues
    Broadcast(BroadcastArgs),
    /// Manage queue aliases
    Alias(AliasArgs),
    /// Watch a queue and print messages as they arrive
    Watch(WatchArgs),
    /// Initialize a SimpleBroker database in the current directory
    Init(InitArgs),
    /// Acknowledge leased messages: they are removed for good
    Ack(AckArgs),
    /// Give a leased message back to its queue, now or after --delay
    Nack(NackArgs),
    /// Extend a lease: it then expires DURATION from now
    Extend(ExtendArgs),
    /// Per-queue delivery settings (visibility timeout, max receives, dead-letter queue)
    Queue(QueueArgs),
    /// Move dead-lettered messages back to the queues they came from
    Redrive(RedriveArgs),
    /// Run a command for each message: ack on exit 0, retry with backoff otherwise
    Run(RunArgs),
    /// Publish a message to a topic: every matching subscription gets a copy
    Publish(PublishArgs),
    /// Create a durable subscription: a queue fed by a topic pattern
    Subscribe(SubscribeArgs),
    /// Remove a subscription and its pending messages
    Unsubscribe(UnsubscribeArgs),
    /// List subscriptions with their pattern, depth and position
    Subscriptions,
    /// Print what is published to matching topics while it runs (a private subscription)
    Listen(ListenArgs),
    /// List topics with their message counts and offsets
    Topics,
    /// Per-topic settings (log retention)
    Topic(TopicArgs),
    /// Publish a request and print the first reply
    Request(RequestArgs),
    /// Answer a request (as printed by read/listen --json)
    Reply(ReplyArgs),
    /// Write messages as NDJSON (one object per message) for backup or transfer
    Dump(DumpArgs),
    /// Restore messages from NDJSON produced by `dump`, keeping ids and order
    Load(LoadArgs),
    /// API keys for `serve`, kept in the database (hashed): create, list, revoke
    Keys(KeysArgs),
    /// Serve the queues over HTTP (litebroker's API and the PyQueue server's) until SIGTERM or Ctrl-C
    Serve(ServeArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Print the manual page (roff)
    Man,
}

/// `write <queue> <message|->`
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Queue name (or @alias)
    pub queue: String,
    /// Message body, or - to read it from stdin
    #[arg(allow_hyphen_values = true)]
    pub message: String,
    /// Keep the message invisible to readers for this long (e.g. 30s, 5m)
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,
    /// Attach a header (repeatable); the value is typed like JSON: 3, 2.5, true, null, "3"
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
}

/// Options shared by every command that selects messages.
#[derive(Debug, Args, Clone, Default)]
pub struct Selection {
    /// Output as line-delimited JSON (includes timestamps)
    #[arg(long)]
    pub json: bool,
    /// Include timestamps in output
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Target a specific message by its 19-digit timestamp ID
    #[arg(
        short = 'm',
        long = "message",
        value_name = "ID",
        allow_hyphen_values = true
    )]
    pub message: Option<String>,
    /// Only messages newer than this time bound
    #[arg(
        long,
        visible_alias = "after",
        value_name = "TS",
        allow_hyphen_values = true
    )]
    pub since: Option<String>,
    /// Only messages older than this time bound
    #[arg(long, value_name = "TS", allow_hyphen_values = true)]
    pub before: Option<String>,
}

/// `read|peek <queue> [options]`
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Queue name (or @alias)
    pub queue: String,
    /// Process all messages
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub select: Selection,
}

/// `read <queue> [options] [--lease [DURATION]] [--max N]`
#[derive(Debug, Args)]
pub struct ReadCmdArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    /// Lease instead of consuming: each message stays invisible until acked,
    /// nacked or the lease ends (default: the queue's visibility timeout, 30s)
    #[arg(
        long,
        value_name = "DURATION",
        num_args = 0..=1,
        default_missing_value = "",
        require_equals = false
    )]
    pub lease: Option<String>,
    /// Read at most N messages
    #[arg(long, value_name = "N", conflicts_with = "all")]
    pub max: Option<usize>,
}

/// `ack <queue> <receipt>...`
#[derive(Debug, Args)]
pub struct AckArgs {
    /// Queue the messages were leased from (or @alias)
    pub queue: String,
    /// Receipts printed by `read --lease --json`
    #[arg(required = true)]
    pub receipts: Vec<String>,
}

/// `nack <queue> <receipt> [--delay DURATION]`
#[derive(Debug, Args)]
pub struct NackArgs {
    /// Queue the message was leased from (or @alias)
    pub queue: String,
    /// Receipt printed by `read --lease --json`
    pub receipt: String,
    /// Keep it invisible this long before it can be read again
    #[arg(long, value_name = "DURATION")]
    pub delay: Option<String>,
}

/// `extend <queue> <receipt> <duration>`
#[derive(Debug, Args)]
pub struct ExtendArgs {
    /// Queue the message was leased from (or @alias)
    pub queue: String,
    /// Receipt printed by `read --lease --json`
    pub receipt: String,
    /// New lease length, counted from now
    pub duration: String,
}

/// `queue config <queue> [...]`
#[derive(Debug, Args)]
pub struct QueueArgs {
    #[command(subcommand)]
    pub action: QueueAction,
}

/// What to do with a queue's settings.
#[derive(Debug, Subcommand)]
pub enum QueueAction {
    /// Show or change a queue's delivery settings (no options: show them)
    Config(QueueConfigArgs),
}

/// `queue config <queue> [--visibility D] [--max-receives N] [--dead-letter Q] [--clear]`
#[derive(Debug, Args)]
pub struct QueueConfigArgs {
    /// Queue name
    pub queue: String,
    #[command(flatten)]
    pub delivery: DeliveryFlags,
    /// Forget every setting first (then apply the ones given)
    #[arg(long)]
    pub clear: bool,
    /// Print the settings as JSON
    #[arg(long)]
    pub json: bool,
}

/// The delivery settings `queue config` stores for a queue and `run` applies
/// to one run (declared once so the two commands cannot drift apart).
#[derive(Debug, Args)]
pub struct DeliveryFlags {
    /// Lease length (visibility timeout): how long a delivered message stays
    /// hidden before it is delivered again (`read --lease` and `run` default)
    #[arg(long = "visibility", visible_alias = "lease", value_name = "DURATION")]
    pub visibility: Option<String>,
    /// Deliveries after which an unacknowledged message goes to the dead-letter queue
    #[arg(long, value_name = "N")]
    pub max_receives: Option<u32>,
    /// Where messages go after --max-receives deliveries
    #[arg(long, value_name = "QUEUE")]
    pub dead_letter: Option<String>,
}

/// `keys create|list|revoke`
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

/// What `keys` does.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Create a key and print its secret (shown this once only)
    Create {
        /// The key's name
        #[arg(long)]
        name: String,
        /// A grant, PATTERN=PERMISSIONS (repeatable), e.g. 'orders.*=read,write'; permissions: read, write, delete, manage
        #[arg(long = "allow", value_name = "PATTERN=PERMS", required = true)]
        allow: Vec<String>,
    },
    /// List the keys (names and grants, never secrets)
    List,
    /// Revoke a key: `serve` refuses it within a second
    Revoke {
        /// The key's name
        name: String,
    },
}

/// `serve [--http ADDR:PORT] [--api-keys-file FILE] [--tls-cert FILE --tls-key FILE] [--insecure-no-auth]`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to serve HTTP on (port 0: any free port, printed)
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub http: String,
    /// API keys in the PyQueue server's format: {"KEY": {"description": ..., "queues": {"NAME-or-GLOB": ["read", "write", "delete", "manage"]}}}
    #[arg(long, value_name = "FILE")]
    pub api_keys_file: Option<std::path::PathBuf>,
    /// Also serve the TCP Message Broker's binary protocol on ADDR:PORT (it has no
    /// keys: a non-loopback address needs --insecure-no-auth)
    #[arg(long, value_name = "ADDR:PORT")]
    pub tcp: Option<String>,
    /// Serve without API keys on a non-loopback address (anyone who can connect may do anything)
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Serve HTTPS: the certificate chain, PEM (with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The certificate's private key, PEM (with --tls-cert)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
}

/// `redrive <dlq> [<queue>]`
#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// Dead-letter queue to empty
    pub dlq: String,
    /// Move everything here instead of back to each message's source queue
    pub queue: Option<String>,
}

/// `run <queue> [options] -- <command> [args]`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Queue to work on (or @alias)
    pub queue: String,
    /// Delivery settings for this run (default: the queue's; the lease is kept
    /// alive while the command runs)
    #[command(flatten)]
    pub delivery: DeliveryFlags,
    /// Exit once no message is visible instead of waiting for more
    #[arg(long)]
    pub drain: bool,
    /// Delay before the first retry of a failed message; doubles each time (max 15m)
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub backoff: String,
    /// The command and its arguments; the body arrives on its stdin
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// `publish <topic> <message|-> [-H key=value]...`
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Topic: dot-separated words of letters, digits and hyphens (no wildcards)
    pub topic: String,
    /// Message body, or - to read it from stdin
    #[arg(allow_hyphen_values = true)]
    pub message: String,
    /// Attach a header (repeatable); the value is typed like JSON: 3, 2.5, true, null, "3"
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
}

/// `subscribe <name> <pattern> [--from earliest|latest|OFFSET|TIME]`
#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// Subscription name; read it like a queue
    pub name: String,
    /// Topic pattern: = matches one word, + one or more (news.+, logs.=.error)
    pub pattern: String,
    /// Start in the topic log: earliest, latest (default), an offset, or a time
    #[arg(long, value_name = "POSITION", default_value = "latest")]
    pub from: String,
}

/// `unsubscribe <name>`
#[derive(Debug, Args)]
pub struct UnsubscribeArgs {
    /// Subscription name
    pub name: String,
}

/// `listen <pattern> [--json] [-t] [--count N] [--timeout D]`
#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Topic pattern to listen to
    pub pattern: String,
    /// Output as line-delimited JSON (with topic, offset and headers)
    #[arg(long)]
    pub json: bool,
    /// Include timestamps in output
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Exit after N messages
    #[arg(long, value_name = "N")]
    pub count: Option<usize>,
    /// Exit after this long (exit 2 if nothing arrived)
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Remove the private subscription if its listener cannot be seen for this long
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub expire: String,
}

/// `topic config <topic-or-pattern> [--retain COUNT|DURATION | --unlimited]`
#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(subcommand)]
    pub action: TopicAction,
}

/// What to do with a topic's settings.
#[derive(Debug, Subcommand)]
pub enum TopicAction {
    /// Show or change how much of a topic's log is kept
    Config(TopicConfigArgs),
}

/// `topic config <topic-or-pattern> [--retain COUNT|DURATION] [--unlimited]`
#[derive(Debug, Args)]
pub struct TopicConfigArgs {
    /// A topic, or a pattern covering several
    pub pattern: String,
    /// Keep at most COUNT messages, or those younger than DURATION (e.g. 1000, 7d)
    #[arg(long, value_name = "COUNT|DURATION", conflicts_with = "unlimited")]
    pub retain: Option<String>,
    /// Keep the whole log (the default)
    #[arg(long)]
    pub unlimited: bool,
}

/// `request <topic> <message|-> [--timeout D]`
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// Topic to send the request to
    pub topic: String,
    /// Request body, or - to read it from stdin
    #[arg(allow_hyphen_values = true)]
    pub message: String,
    /// How long to wait for a reply (exit 2 when none came)
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: String,
    /// Attach a header (repeatable)
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Print the reply as JSON
    #[arg(long)]
    pub json: bool,
    /// Include the reply's timestamp
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
}

/// `reply <request-json|-> <message|->`
#[derive(Debug, Args)]
pub struct ReplyArgs {
    /// The request as one JSON line from `read/listen/watch --json` (- for stdin)
    #[arg(allow_hyphen_values = true)]
    pub request: String,
    /// Reply body (- for stdin, if the request is not)
    #[arg(allow_hyphen_values = true)]
    pub message: String,
    /// Attach a header (repeatable)
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
}

/// `move <source> <dest> [options]`
#[derive(Debug, Args)]
pub struct MoveArgs {
    /// Source queue
    pub source: String,
    /// Destination queue
    pub dest: String,
    /// Move all messages
    #[arg(long, conflicts_with = "message")]
    pub all: bool,
    #[command(flatten)]
    pub select: Selection,
}

/// `list [--stats] [--pattern GLOB]`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show claimed and total counts too
    #[arg(long)]
    pub stats: bool,
    /// Only queues whose names match this fnmatch glob
    #[arg(short = 'p', long = "pattern", value_name = "GLOB")]
    pub pattern: Option<String>,
}

/// `delete <queue> [-m ID]` or `delete --all`
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Queue to delete
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub queue: Option<String>,
    /// Delete all queues
    #[arg(long)]
    pub all: bool,
    /// Delete only the message with this ID
    #[arg(short = 'm', long = "message", value_name = "ID")]
    pub message: Option<String>,
}

/// `broadcast <message|-> [--pattern GLOB]`
#[derive(Debug, Args)]
pub struct BroadcastArgs {
    /// Message body, or - to read it from stdin
    #[arg(allow_hyphen_values = true)]
    pub message: String,
    /// Only queues whose names match this fnmatch glob
    #[arg(short = 'p', long = "pattern", value_name = "GLOB")]
    pub pattern: Option<String>,
}

/// `alias add|remove|list`
#[derive(Debug, Args)]
pub struct AliasArgs {
    #[command(subcommand)]
    pub action: AliasAction,
}

/// What to do with aliases.
#[derive(Debug, Subcommand)]
pub enum AliasAction {
    /// Create ALIAS pointing at queue TARGET
    Add {
        /// Alias name (a plain queue name)
        alias: String,
        /// Target queue
        target: String,
    },
    /// Remove an alias (messages are untouched)
    Remove {
        /// Alias name
        alias: String,
    },
    /// List aliases
    List {
        /// Only aliases of this queue
        #[arg(long, value_name = "QUEUE")]
        target: Option<String>,
    },
}

/// `watch <queue> [--peek | --move DEST] [--json] [-t] [--since TS]`
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Queue to watch (or @alias)
    pub queue: String,
    /// Monitor without consuming
    #[arg(long, conflicts_with = "move_to")]
    pub peek: bool,
    /// Continuously drain every message to DEST, printing each after it moved
    #[arg(long = "move", value_name = "DEST", conflicts_with = "since")]
    pub move_to: Option<String>,
    /// Output as line-delimited JSON (includes timestamps)
    #[arg(long)]
    pub json: bool,
    /// Include timestamps in output
    #[arg(short = 't', long = "timestamps")]
    pub timestamps: bool,
    /// Only messages newer than this time bound
    #[arg(
        long,
        visible_alias = "after",
        value_name = "TS",
        allow_hyphen_values = true
    )]
    pub since: Option<String>,
}

/// `init [--force]`
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Accepted for compatibility; an existing database is never overwritten
    #[arg(long)]
    pub force: bool,
}

/// `dump [<queue>...]`
#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Queues to dump (default: all)
    pub queues: Vec<String>,
}

/// `load [FILE]`
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// NDJSON file to read (default: stdin)
    #[arg(default_value = "-")]
    pub file: String,
}

/// `completions <shell>`
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for
    pub shell: clap_complete::Shell,
}
