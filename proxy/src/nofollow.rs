//! Writing under a directory without following symbolic links (`iacscope export`): every
//! step below the directory the user named is taken from an opened directory (`openat`,
//! `O_NOFOLLOW`), so a link planted anywhere below it, or swapped in between a check and a
//! use, is refused instead of followed. Temporary files get unpredictable names, are created
//! exclusively and are renamed over the target, which replaces a link itself, never what it
//! points to. What to write is left to the caller.

use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};

/// Tries at a fresh temporary name before giving up (each is 64 random bits).
const TEMP_TRIES: usize = 8;

/// Why a name below the directory was not used.
#[derive(Debug)]
pub enum Refused {
    /// It is a symbolic link (not followed).
    Link,
    /// It exists but is not what was asked for (a directory, a regular file).
    WrongType,
    /// Some other I/O error.
    Io(io::Error),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Link => f.write_str("a symbolic link, not followed"),
            Refused::WrongType => f.write_str("not a regular file or directory as expected"),
            Refused::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A random hex suffix for a temporary name, from the system's secure generator.
fn random_suffix() -> io::Result<String> {
    let mut b = [0u8; 8];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut b)
        .map_err(|_| io::Error::other("no secure random numbers"))?;
    Ok(iacscope_shared::mud::hex(&b))
}

/// An opened directory; names below it are single path components.
#[derive(Debug)]
pub struct Dir {
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

#[cfg(unix)]
mod imp {
    use super::{random_suffix, Dir, Refused, TEMP_TRIES};
    use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
    use std::io;
    use std::path::Path;

    fn io(e: rustix::io::Errno) -> io::Error {
        io::Error::from(e)
    }

    /// What `name` in `dir` is, without following it.
    fn kind(dir: &Dir, name: &str) -> Option<FileType> {
        rfs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| FileType::from_raw_mode(st.st_mode))
    }

    /// An open error turned into why, looking at the name itself when the error could
    /// mean a link (`ELOOP`, or `ENOTDIR` with `O_DIRECTORY`).
    fn refused(dir: &Dir, name: &str, e: rustix::io::Errno) -> Refused {
        match kind(dir, name) {
            Some(FileType::Symlink) => Refused::Link,
            Some(_) if e == rustix::io::Errno::NOTDIR || e == rustix::io::Errno::LOOP => {
                Refused::WrongType
            }
            _ => Refused::Io(io(e)),
        }
    }

    pub(super) fn open_root(path: &Path) -> io::Result<Dir> {
        std::fs::create_dir_all(path)?;
        let fd = rfs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    pub(super) fn subdir(dir: &Dir, name: &str) -> Result<Dir, Refused> {
        match rfs::mkdirat(&dir.fd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::EXIST => {}
            Err(e) => return Err(Refused::Io(io(e))),
        }
        let fd = rfs::openat(
            &dir.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| refused(dir, name, e))?;
        Ok(Dir {
            fd,
            path: dir.path.join(name),
        })
    }

    pub(super) fn open_read(dir: &Dir, name: &str) -> Result<Option<std::fs::File>, Refused> {
        // NONBLOCK: a FIFO planted under the name does not hang the open.
        let fd = match rfs::openat(
            &dir.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) if e == rustix::io::Errno::NOENT => return Ok(None),
            Err(e) => return Err(refused(dir, name, e)),
        };
        let st = rfs::fstat(&fd).map_err(|e| Refused::Io(io(e)))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Refused::WrongType);
        }
        Ok(Some(std::fs::File::from(fd)))
    }

    pub(super) fn create_temp(dir: &Dir, name: &str) -> io::Result<(String, std::fs::File)> {
        let mut last = None;
        for _ in 0..TEMP_TRIES {
            let tmp = format!(".{name}.{}.new", random_suffix()?);
            match rfs::openat(
                &dir.fd,
                tmp.as_str(),
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o644),
            ) {
                Ok(fd) => return Ok((tmp, std::fs::File::from(fd))),
                Err(e) if e == rustix::io::Errno::EXIST => last = Some(io(e)),
                Err(e) => return Err(io(e)),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
    }

    pub(super) fn rename(dir: &Dir, from: &str, to: &str) -> io::Result<()> {
        rfs::renameat(&dir.fd, from, &dir.fd, to).map_err(io)
    }

    pub(super) fn remove(dir: &Dir, name: &str) {
        let _ = rfs::unlinkat(&dir.fd, name, AtFlags::empty());
    }
}

#[cfg(not(unix))]
mod imp {
    //! Without `openat`: the same checks by path (a swap between check and use is not
    //! caught here).
    use super::{random_suffix, Dir, Refused, TEMP_TRIES};
    use std::io;
    use std::path::Path;

    fn check(path: &Path, want_dir: bool) -> Result<bool, Refused> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => Err(Refused::Link),
            Ok(m) if m.is_dir() == want_dir && (want_dir || m.is_file()) => Ok(true),
            Ok(_) => Err(Refused::WrongType),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Refused::Io(e)),
        }
    }

    pub(super) fn open_root(path: &Path) -> io::Result<Dir> {
        std::fs::create_dir_all(path)?;
        Ok(Dir {
            path: path.to_owned(),
        })
    }

    pub(super) fn subdir(dir: &Dir, name: &str) -> Result<Dir, Refused> {
        let path = dir.path.join(name);
        if !check(&path, true)? {
            std::fs::create_dir(&path).map_err(Refused::Io)?;
        }
        Ok(Dir { path })
    }

    pub(super) fn open_read(dir: &Dir, name: &str) -> Result<Option<std::fs::File>, Refused> {
        let path = dir.path.join(name);
        if !check(&path, false)? {
            return Ok(None);
        }
        std::fs::File::open(&path).map(Some).map_err(Refused::Io)
    }

    pub(super) fn create_temp(dir: &Dir, name: &str) -> io::Result<(String, std::fs::File)> {
        let mut last = None;
        for _ in 0..TEMP_TRIES {
            let tmp = format!(".{name}.{}.new", random_suffix()?);
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.path.join(&tmp))
            {
                Ok(f) => return Ok((tmp, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
    }

    pub(super) fn rename(dir: &Dir, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(dir.path.join(from), dir.path.join(to))
    }

    pub(super) fn remove(dir: &Dir, name: &str) {
        let _ = std::fs::remove_file(dir.path.join(name));
    }
}

impl Dir {
    /// Opens (creating it and its parents when missing) the directory the user named.
    /// Links in that path are the user's choice and are followed; nothing below it is.
    pub fn open_root(path: &Path) -> io::Result<Dir> {
        imp::open_root(path)
    }

    /// The path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory `name` below this one, created when missing; a link (or a
    /// non-directory) there is refused.
    pub fn subdir(&self, name: &str) -> Result<Dir, Refused> {
        imp::subdir(self, name)
    }

    /// The regular file `name`, at most `max` bytes; `Ok(None)` when there is none. A link,
    /// a FIFO or anything else there is refused, and so is a larger file.
    pub fn read(&self, name: &str, max: u64) -> Result<Option<Vec<u8>>, Refused> {
        let Some(f) = imp::open_read(self, name)? else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        f.take(max + 1).read_to_end(&mut buf).map_err(Refused::Io)?;
        if buf.len() as u64 > max {
            return Err(Refused::Io(io::Error::other(format!(
                "larger than {max} bytes"
            ))));
        }
        Ok(Some(buf))
    }

    /// Replaces `name` with `bytes`: a temporary file with a random name, created
    /// exclusively, written and synced, then renamed over `name` (a link there is replaced
    /// itself, its target untouched). On an error the temporary file is removed.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let (tmp, mut f) = imp::create_temp(self, name)?;
        let done = f
            .write_all(bytes)
            .and_then(|()| f.sync_all())
            .and_then(|()| imp::rename(self, &tmp, name));
        if done.is_err() {
            imp::remove(self, &tmp);
        }
        done
    }
}
