//! Man pages and shell completions, generated from the command-line definition (for packaging:
//! `scripts/package.sh` runs `confd-rs generate`).

use std::path::Path;

use clap::CommandFactory;

use crate::cli::{Cli, Generate};

pub fn main(what: &Generate) -> std::io::Result<u8> {
    match what {
        Generate::Man { dir } => man_pages(dir)?,
        Generate::Completions { shell } => clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "confd-rs",
            &mut std::io::stdout(),
        ),
    }
    Ok(crate::error::OK)
}

/// `confd-rs.1`, and `confd-rs-SUBCOMMAND.1` for each visible subcommand.
fn man_pages(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let cmd = Cli::command();
    write_page(dir, "confd-rs", cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("confd-rs-{}", sub.get_name());
        write_page(dir, &name, sub.clone().name(name.clone()))?;
    }
    Ok(())
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> std::io::Result<()> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut out)?;
    std::fs::write(dir.join(format!("{name}.1")), out)
}
