//! Stand-ins for the parts of the CLI's `cmd` module that `load.rs` and
//! `dump.rs` import, so the fuzz target compiles those two files unchanged.

pub struct Ctx;
impl Ctx {
    pub fn open(&self) -> anyhow::Result<litebroker::Broker> {
        unreachable!("the fuzz target never opens a database")
    }
    pub fn info(&self, _: &str) {}
}
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    format!("{} {noun}", n.into())
}
pub fn precheck_queue(_: &str) -> anyhow::Result<()> {
    Ok(())
}
pub mod read {
    pub fn io_to_lib(e: std::io::Error) -> litebroker::Error {
        litebroker::Error::io("cannot write to stdout", e)
    }
    pub fn is_closed_stdout(_: &litebroker::Error) -> bool {
        false
    }
}
#[path = "../../crates/broker-cli/src/cmd/dump.rs"]
pub mod dump;
#[path = "../../crates/broker-cli/src/cmd/load.rs"]
pub mod load;
