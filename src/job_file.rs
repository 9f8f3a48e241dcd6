//! `--config job.toml`: a TOML job file whose keys mirror the long flags.
//!
//! The file is turned into the flags it stands for and parsed by the same clap
//! definitions as the command line, so the two can never disagree; a flag given on the
//! command line overrides the file's key. Secrets never go in the file: they come from
//! the environment.

use std::path::Path;

use anyhow::{Context, bail};
use clap::Command;

/// The flags `path` stands for, leaving out keys whose flag `given` (the command line)
/// already has. `command` is the subcommand whose flags the keys must name.
pub fn flags_from_file(
    path: &Path,
    command: &Command,
    given: &[String],
) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read job file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut flags = Vec::new();
    for (key, value) in table {
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            bail!(
                "{}: unknown key '{key}' (keys are the long flags of `tidelake {}`, e.g. workers, tick)",
                path.display(),
                command.get_name()
            );
        };
        if key == "config" {
            bail!(
                "{}: a job file cannot name another job file (key 'config')",
                path.display()
            );
        }
        let flag = format!("--{key}");
        if given
            .iter()
            .any(|g| *g == flag || g.starts_with(&format!("{flag}=")))
        {
            continue;
        }
        let takes_value = arg.get_action().takes_values();
        match value {
            toml::Value::Boolean(b) if !takes_value => {
                if b {
                    flags.push(flag);
                }
            }
            toml::Value::Array(items) => {
                for item in items {
                    flags.push(flag.clone());
                    flags.push(scalar(path, &key, item)?);
                }
            }
            other if takes_value => {
                flags.push(flag);
                flags.push(scalar(path, &key, other)?);
            }
            _ => bail!(
                "{}: key '{key}' is a switch: write `{key} = true`",
                path.display()
            ),
        }
    }
    Ok(flags)
}

fn scalar(path: &Path, key: &str, value: toml::Value) -> anyhow::Result<String> {
    Ok(match value {
        toml::Value::String(s) => s,
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => bail!(
            "{}: key '{key}' has a {} value; use a string or a number",
            path.display(),
            other.type_str()
        ),
    })
}
