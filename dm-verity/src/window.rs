//! A byte range of a file as its own `Read + Seek` stream: a partition of a disk image or block
//! device, handed to [`crate::verify`] as the data or the hash device.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// The `len` bytes of a file starting at `start`, read and seeked as if they were the whole file
/// (reads stop at the end of the window; positions are relative to `start`).
#[derive(Debug)]
pub struct Window {
    file: File,
    start: u64,
    len: u64,
    pos: u64,
}

impl Window {
    /// The `len` bytes of `file` starting at `start`.
    pub fn new(file: File, start: u64, len: u64) -> Window {
        Window {
            file,
            start,
            len,
            pos: 0,
        }
    }

    /// Length of the window in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Read for Window {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        if left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(left.min(usize::MAX as u64) as usize);
        self.file.seek(SeekFrom::Start(self.start + self.pos))?;
        let n = self.file.read(&mut buf[..want])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Window {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let new = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new = new.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek out of range")
        })?;
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::Write;

    #[test]
    fn window_reads_and_seeks_inside_its_range() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&(0u8..100).collect::<Vec<_>>()).unwrap();
        let mut r = Window::new(f, 10, 20);
        assert_eq!(r.len(), 20);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, (10u8..30).collect::<Vec<_>>());
        r.seek(SeekFrom::Start(15)).unwrap();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, (25u8..30).collect::<Vec<_>>());
        assert_eq!(r.seek(SeekFrom::End(-1)).unwrap(), 19);
        assert!(r.seek(SeekFrom::Current(-100)).is_err());
    }

    #[test]
    fn window_past_the_end_of_the_file_reads_what_there_is() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 10]).unwrap();
        let mut r = Window::new(f, 5, 100);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, vec![7u8; 5]);
    }
}
