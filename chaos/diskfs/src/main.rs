//! `chaos-diskfs --backing DIR --mount DIR --control SOCKET [--seed N]`: mounts the layer at the mount point
//! over the backing directory, prints `ready` once it answers, and serves control commands (see
//! `diskfs::control`) until `quit`. Removed entries wait in `<backing>.trash` until their directory is synced.

use anyhow::{bail, Context};
use diskfs::control::{apply, Command};
use diskfs::fs::{DiskFs, Knobs};
use diskfs::layer::Layer;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

struct Args {
    backing: PathBuf,
    mount: PathBuf,
    control: PathBuf,
    seed: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = std::env::args_os().skip(1);
    let (mut backing, mut mount, mut control, mut seed) = (None, None, None, 0);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag:?} needs a value"))?;
        match flag.to_str() {
            Some("--backing") => backing = Some(PathBuf::from(value)),
            Some("--mount") => mount = Some(PathBuf::from(value)),
            Some("--control") => control = Some(PathBuf::from(value)),
            Some("--seed") => {
                seed = value
                    .to_str()
                    .and_then(|s| s.parse().ok())
                    .context("--seed takes an unsigned integer")?
            }
            _ => bail!("unknown argument {flag:?}; usage: chaos-diskfs --backing DIR --mount DIR --control SOCKET [--seed N]"),
        }
    }
    Ok(Args {
        backing: backing.context("--backing is required")?,
        mount: mount.context("--mount is required")?,
        control: control.context("--control is required")?,
        seed,
    })
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let backing = std::fs::canonicalize(&args.backing)
        .with_context(|| format!("backing directory {}", args.backing.display()))?;
    let mut trash = backing.clone().into_os_string();
    trash.push(".trash");
    let layer = Arc::new(Mutex::new(Layer::new(backing, trash.into(), args.seed)?));
    let knobs = Arc::new(Knobs::default());
    let fs = DiskFs {
        layer: layer.clone(),
        knobs: knobs.clone(),
    };
    let mut config = fuser::Config::default();
    // No auto_unmount: its fusermount3 watcher did not unmount on `quit` here. The owner of the process
    // (`diskfs::mount::Mount`) unmounts with `fusermount3 -u` if this process dies without unmounting.
    config.mount_options = vec![fuser::MountOption::FSName("chaos-diskfs".into())];
    config.n_threads = Some(4);
    let session = fuser::spawn_mount(fs, &args.mount, &config)
        .with_context(|| format!("mounting {}", args.mount.display()))?;
    let _ = std::fs::remove_file(&args.control);
    let listener = UnixListener::bind(&args.control)
        .with_context(|| format!("control socket {}", args.control.display()))?;
    println!("ready");
    std::io::stdout().flush()?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            continue;
        }
        let (answer, quit) = match Command::parse(line.trim()) {
            Ok(cmd) => (apply(&cmd, &layer, &knobs), cmd == Command::Quit),
            Err(e) => (format!("err {e}"), false),
        };
        let _ = stream.write_all(format!("{answer}\n").as_bytes());
        if quit {
            break;
        }
    }
    let _ = std::fs::remove_file(&args.control);
    session.umount_and_join().context("unmounting")?;
    Ok(())
}
