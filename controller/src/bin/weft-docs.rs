//! weft-docs: writes weftd's and weftctl's man pages (clap_mangen) and weftctl's shell
//! completions (clap_complete) into a directory. The Debian package is built from its
//! output (scripts/package.sh), so none of these files is checked in and each matches the
//! command line of the binaries it ships with.
//!
//! `weft-docs OUT` writes `OUT/man/weftd.1`, `OUT/man/weftctl.1`, one
//! `OUT/man/weftctl-<command>.1` per subcommand, and `OUT/completions/{weftctl.bash,
//! _weftctl, weftctl.fish}`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

#[allow(dead_code)]
#[path = "weftctl/cli.rs"]
mod weftctl_cli;
#[allow(dead_code)]
#[path = "weftd/cli.rs"]
mod weftd_cli;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: weft-docs OUT_DIR");
        return ExitCode::from(2);
    };
    match write_all(Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weft-docs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes every page and script; returns the files written.
fn write_all(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut written = Vec::new();
    written.push(man_page(&man, weftd_cli::Cli::command())?);
    let weftctl = weftctl_cli::Cli::command();
    written.push(man_page(&man, weftctl.clone())?);
    for sub in weftctl.get_subcommands() {
        let name = format!("weftctl-{}", sub.get_name());
        written.push(man_page(&man, sub.clone().name(name))?);
    }
    for (shell, file) in [
        (Shell::Bash, "weftctl.bash"),
        (Shell::Zsh, "_weftctl"),
        (Shell::Fish, "weftctl.fish"),
    ] {
        let path = completions.join(file);
        let mut f = std::fs::File::create(&path)?;
        clap_complete::generate(shell, &mut weftctl.clone(), "weftctl", &mut f);
        written.push(path);
    }
    Ok(written)
}

/// Renders `cmd`'s page as `DIR/<name>.1`.
fn man_page(dir: &Path, cmd: clap::Command) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{}.1", cmd.get_name()));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    std::fs::write(&path, buf)?;
    Ok(path)
}
