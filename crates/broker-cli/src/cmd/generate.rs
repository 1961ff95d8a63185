//! `broker completions <shell>` and `broker man`: generated from the same
//! clap definitions that parse the command line, so they never drift.

use anyhow::Result;
use std::io::Write;

use clap::{Command, CommandFactory};

use crate::args::Cli;
use crate::exit::Outcome;

/// Prints a completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<Outcome> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "broker", &mut std::io::stdout());
    Ok(Outcome::Done)
}

/// Prints the man page in roff: one page, `broker(1)`, with every
/// sub-command (and its options) in its COMMANDS section, so it never points
/// to `broker-write(1)`-style pages that are not installed.
pub fn man() -> Result<Outcome> {
    let mut cmd = Cli::command();
    cmd.build(); // gives each sub-command its `broker write` name
    let page = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        render_command(&mut out, sub)?;
    }
    page.render_extra_section(&mut out)?;
    std::io::stdout().write_all(&out)?;
    Ok(Outcome::Done)
}

/// One sub-command as a `.SS` subsection: its summary, synopsis and options,
/// then its own sub-commands.
fn render_command(out: &mut Vec<u8>, cmd: &Command) -> std::io::Result<()> {
    if cmd.get_name() == "help" || cmd.is_hide_set() {
        return Ok(());
    }
    let name = cmd.get_bin_name().unwrap_or(cmd.get_name()).to_owned();
    writeln!(out, ".SS \"{}\"", roff_escape(&name))?;
    if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
        writeln!(out, "{}", roff_escape(&about.to_string()))?;
    }
    let page = clap_mangen::Man::new(cmd.clone());
    let mut part = Vec::new();
    page.render_synopsis_section(&mut part)?;
    page.render_options_section(&mut part)?;
    let text = String::from_utf8_lossy(&part)
        .replace(".SH SYNOPSIS\n", ".PP\n")
        .replace(".SH OPTIONS\n", "");
    out.extend_from_slice(text.as_bytes());
    for sub in cmd.get_subcommands() {
        render_command(out, sub)?;
    }
    Ok(())
}

/// Text safe as a roff line: backslashes and dashes escaped, no leading control character.
fn roff_escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
