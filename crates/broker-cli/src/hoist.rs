//! Global options may appear anywhere on the command line, as in the reference:
//! they are lifted out lexically before the sub-command is parsed. A message
//! literally equal to a global option therefore cannot be given as an argument
//! (use stdin), exactly as with SimpleBroker.

/// Options that belong to the whole program rather than to a sub-command.
const GLOBAL_FLAGS: &[&str] = &[
    "-q",
    "--quiet",
    "--version",
    "--cleanup",
    "--vacuum",
    "--compact",
    "--status",
];
/// Global options that take a value.
const GLOBAL_VALUED: &[&str] = &["-d", "--dir", "-f", "--file", "--db"];

/// The command line split into global options and the sub-command's own words.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Hoisted {
    /// Global options, normalised to `--name` / `--name=value` form.
    pub globals: Vec<String>,
    /// Everything else, in order.
    pub rest: Vec<String>,
}

/// Splits `args` (without the program name) into global options and the rest.
pub fn hoist(args: &[String]) -> Result<Hoisted, String> {
    let mut out = Hoisted::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" && runs_a_command(&out.rest) {
            // `broker run Q -- CMD ARGS`: the child's arguments are its own.
            out.rest.push(arg.clone());
            out.rest.extend(iter.cloned());
            break;
        }
        let before_command = out.rest.iter().all(|w| w.starts_with('-'));
        if let Some((name, value)) = split_valued(arg, before_command) {
            let value = match value {
                Some(v) if !v.is_empty() => v.to_owned(),
                Some(_) => return Err(format!("option {name} requires an argument")),
                None => match iter.next() {
                    Some(v) if !v.starts_with('-') => v.clone(),
                    _ => return Err(format!("option {name} requires an argument")),
                },
            };
            out.globals.push(format!("{}={value}", long_name(name)));
        } else if GLOBAL_FLAGS.contains(&arg.as_str()) || is_global_flag_with_equals(arg) {
            out.globals
                .push(long_name(arg.split('=').next().unwrap_or(arg)).to_owned());
        } else {
            out.rest.push(arg.clone());
        }
    }
    Ok(out)
}

/// Whether the sub-command so far is `run`, whose words after `--` belong to
/// the command it runs (`broker run q -- grep -q x` must keep `-q`).
fn runs_a_command(rest: &[String]) -> bool {
    rest.iter()
        .find(|w| !w.starts_with('-'))
        .is_some_and(|c| c == "run")
}

/// Recognises `-d X`, `--dir X`, `-d=X`, `--dir=X` anywhere, and the attached
/// form `-dX` before the sub-command only (as argparse does; after it, `-foo`
/// is an unknown option, not `-f oo`). Same for `-f`.
/// Returns the option and its inline value, if any.
fn split_valued(arg: &str, before_command: bool) -> Option<(&str, Option<&str>)> {
    if GLOBAL_VALUED.contains(&arg) {
        return Some((arg, None));
    }
    if let Some((name, value)) = arg.split_once('=') {
        if GLOBAL_VALUED.contains(&name) {
            return Some((name, Some(value)));
        }
    }
    if !before_command {
        return None;
    }
    for short in ["-d", "-f"] {
        if let Some(value) = arg.strip_prefix(short) {
            if !value.is_empty() && !value.starts_with('=') {
                return Some((short, Some(value)));
            }
        }
    }
    None
}

fn is_global_flag_with_equals(arg: &str) -> bool {
    arg.split_once('=')
        .is_some_and(|(name, _)| GLOBAL_FLAGS.contains(&name))
}

fn long_name(option: &str) -> &str {
    match option {
        "-d" => "--dir",
        "-f" => "--file",
        "-q" => "--quiet",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(args: &[&str]) -> Result<Hoisted, String> {
        hoist(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn globals_are_lifted_from_anywhere() {
        let out = h(&["read", "q", "-d", "/tmp", "--all", "-q"]).unwrap();
        assert_eq!(out.globals, ["--dir=/tmp", "--quiet"]);
        assert_eq!(out.rest, ["read", "q", "--all"]);
    }

    #[test]
    fn run_keeps_its_command_words() {
        let out = h(&[
            "-q", "run", "q", "-d", "/tmp", "--", "grep", "-q", "-d", "x",
        ])
        .unwrap();
        assert_eq!(out.globals, ["--quiet", "--dir=/tmp"]);
        assert_eq!(out.rest, ["run", "q", "--", "grep", "-q", "-d", "x"]);
        // Elsewhere `--` is no barrier, as in the reference.
        let out = h(&["write", "q", "--", "-q"]).unwrap();
        assert_eq!(out.rest, ["write", "q", "--"]);
    }

    #[test]
    fn valued_forms() {
        for form in [
            &["-d", "X"][..],
            &["--dir", "X"],
            &["-d=X"],
            &["--dir=X"],
            &["-dX"],
        ] {
            assert_eq!(h(form).unwrap().globals, ["--dir=X"], "{form:?}");
        }
        assert_eq!(h(&["-fq.db"]).unwrap().globals, ["--file=q.db"]);
        let late = h(&["write", "q", "-foo"]).unwrap();
        assert!(late.globals.is_empty());
        assert_eq!(late.rest, ["write", "q", "-foo"]);
    }

    #[test]
    fn missing_values_are_errors() {
        assert!(h(&["read", "q", "-d"]).is_err());
        assert!(h(&["-d", "--all"]).is_err());
        assert!(h(&["--dir="]).is_err());
    }

    #[test]
    fn global_words_are_hoisted_even_as_messages() {
        let out = h(&["write", "q", "--status"]).unwrap();
        assert_eq!(out.globals, ["--status"]);
        assert_eq!(out.rest, ["write", "q"]);
    }
}
