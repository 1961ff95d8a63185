//! `broker completions <shell>` and `broker man`: generated from the same
//! clap definitions that parse the command line, so they never drift.

use anyhow::Result;
use clap::CommandFactory;

use crate::args::Cli;
use crate::exit::Outcome;

/// Prints a completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<Outcome> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "broker", &mut std::io::stdout());
    Ok(Outcome::Done)
}

/// Prints the man page in roff.
pub fn man() -> Result<Outcome> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(Outcome::Done)
}
