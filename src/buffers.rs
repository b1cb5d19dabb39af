//! Buffers that hold request bodies and pending response bytes: in memory
//! while small, in an anonymous temporary file once they pass a threshold.
//!
//! These are waitress's `buffers.py`:
//!
//! * [`OverflowableBuffer`] is `OverflowableBuffer`: bytes are kept in memory
//!   until the buffer would hold `overflow` bytes or more, then everything
//!   moves to a temporary file (the `tempfile` crate: created already
//!   unlinked, so nothing is left behind if the process dies). Request bodies
//!   use `inbuf_overflow` as the threshold, responses `outbuf_overflow`.
//! * [`FileBuffer`] is `ReadOnlyFileBasedBuffer` (`wsgi.file_wrapper`): a
//!   region of an open file sent as a response body, with `sendfile(2)` on
//!   Linux, FreeBSD and macOS.
//! * [`RequestBody`] is what the application reads as `wsgi.input`.
//!
//! Thread: both: request bodies are filled on the I/O thread and read on a
//! worker; output buffers are filled by a worker and drained by either.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};

#[cfg(unix)]
use std::os::unix::fs::FileExt;

/// Once this many bytes at the front of the memory buffer have been
/// consumed, they are dropped (the rest is moved to the front), so a buffer
/// that is appended to and drained in turn does not grow without bound.
const COMPACT_THRESHOLD: usize = 64 * 1024;

/// A byte queue kept in memory until it reaches `overflow` bytes, then in a
/// temporary file.
///
/// Bytes are appended at the back and consumed from the front
/// ([`front`](Self::front) + [`skip`](Self::skip)), or the whole buffer is
/// turned into a reader with [`into_body`](Self::into_body).
#[derive(Debug)]
pub struct OverflowableBuffer {
    overflow: u64,
    storage: Storage,
}

#[derive(Debug)]
enum Storage {
    /// `data[start..]` is the content.
    Mem { data: Vec<u8>, start: usize },
    /// `read_pos..write_pos` of `file` is the content.
    File {
        file: File,
        read_pos: u64,
        write_pos: u64,
    },
}

/// The front of a buffer, ready to be sent.
#[derive(Debug)]
pub enum Front<'a> {
    /// Bytes in memory.
    Mem(&'a [u8]),
    /// `len` bytes of `file` starting at `offset` (sent with `sendfile(2)`
    /// where available).
    File {
        /// The file.
        file: &'a File,
        /// Where the bytes start.
        offset: u64,
        /// How many bytes there are.
        len: u64,
    },
}

impl OverflowableBuffer {
    /// An empty buffer that moves to a temporary file once it would hold
    /// `overflow` bytes or more.
    pub fn new(overflow: u64) -> OverflowableBuffer {
        OverflowableBuffer {
            overflow,
            storage: Storage::Mem {
                data: Vec::new(),
                start: 0,
            },
        }
    }

    /// An empty buffer whose memory stage starts with room for `capacity`
    /// bytes.
    pub fn with_capacity(overflow: u64, capacity: usize) -> OverflowableBuffer {
        OverflowableBuffer {
            overflow,
            storage: Storage::Mem {
                data: Vec::with_capacity(capacity),
                start: 0,
            },
        }
    }

    /// How many bytes the buffer holds.
    pub fn len(&self) -> u64 {
        match &self.storage {
            Storage::Mem { data, start } => (data.len() - start) as u64,
            Storage::File {
                read_pos,
                write_pos,
                ..
            } => write_pos - read_pos,
        }
    }

    /// True when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the buffer is in memory and has room for at most `bytes`
    /// bytes (what it keeps allocated once drained).
    pub fn is_small(&self, bytes: usize) -> bool {
        match &self.storage {
            Storage::Mem { data, .. } => data.capacity() <= bytes,
            Storage::File { .. } => false,
        }
    }

    /// True once the content lives in a temporary file.
    pub fn is_spilled(&self) -> bool {
        matches!(self.storage, Storage::File { .. })
    }

    /// Appends `bytes`, moving everything to a temporary file first if the
    /// buffer would then hold `overflow` bytes or more.
    ///
    /// An error means the temporary file could not be created or written;
    /// the buffer is left as it was before the call.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        match &mut self.storage {
            Storage::Mem { data, start } => {
                let held = (data.len() - *start) as u64;
                if held + bytes.len() as u64 >= self.overflow {
                    let mut file = tempfile::tempfile()?;
                    file.write_all(&data[*start..])?;
                    file.write_all(bytes)?;
                    let write_pos = held + bytes.len() as u64;
                    self.storage = Storage::File {
                        file,
                        read_pos: 0,
                        write_pos,
                    };
                } else {
                    if *start >= COMPACT_THRESHOLD && *start * 2 >= data.len() {
                        data.drain(..*start);
                        *start = 0;
                    }
                    data.extend_from_slice(bytes);
                }
            }
            Storage::File {
                file, write_pos, ..
            } => {
                write_all_at(file, bytes, *write_pos)?;
                *write_pos += bytes.len() as u64;
            }
        }
        Ok(())
    }

    /// The bytes at the front, to be sent; consume them with
    /// [`skip`](Self::skip).
    pub fn front(&self) -> Front<'_> {
        match &self.storage {
            Storage::Mem { data, start } => Front::Mem(&data[*start..]),
            Storage::File {
                file,
                read_pos,
                write_pos,
            } => Front::File {
                file,
                offset: *read_pos,
                len: write_pos - read_pos,
            },
        }
    }

    /// Drops `n` bytes from the front (at most [`len`](Self::len)).
    pub fn skip(&mut self, n: u64) {
        match &mut self.storage {
            Storage::Mem { data, start } => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                *start = start.saturating_add(n).min(data.len());
                if *start == data.len() {
                    data.clear();
                    *start = 0;
                }
            }
            Storage::File {
                read_pos,
                write_pos,
                ..
            } => {
                *read_pos = read_pos.saturating_add(n).min(*write_pos);
                if *read_pos == *write_pos {
                    // Drained: back to memory, as waitress does; dropping
                    // the file closes it (it was created unlinked), so a
                    // long-lived connection keeps neither a descriptor nor
                    // disk space.
                    self.storage = Storage::Mem {
                        data: Vec::new(),
                        start: 0,
                    };
                }
            }
        }
    }

    /// Turns the buffer into a reader positioned at its first byte.
    pub fn into_body(self) -> io::Result<RequestBody> {
        match self.storage {
            Storage::Mem { mut data, start } => {
                if start > 0 {
                    data.drain(..start);
                }
                Ok(RequestBody::from_vec(data))
            }
            Storage::File {
                mut file,
                read_pos,
                write_pos,
            } => {
                file.seek(SeekFrom::Start(read_pos))?;
                Ok(RequestBody {
                    inner: BodyInner::File(Box::new(FileBody {
                        file: io::BufReader::new(file),
                        start: read_pos,
                        len: write_pos - read_pos,
                        pos: 0,
                    })),
                })
            }
        }
    }
}

fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        while !buf.is_empty() {
            match file.write_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(buf)
    }
}

/// A region of an open file sent as a response body: waitress's
/// `ReadOnlyFileBasedBuffer`.
#[derive(Debug)]
pub struct FileBuffer {
    file: File,
    offset: u64,
    remaining: u64,
}

impl FileBuffer {
    /// `len` bytes of `file` from `offset`.
    pub fn new(file: File, offset: u64, len: u64) -> FileBuffer {
        FileBuffer {
            file,
            offset,
            remaining: len,
        }
    }

    /// Bytes left to send.
    pub fn len(&self) -> u64 {
        self.remaining
    }

    /// True when everything has been sent.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }

    /// The bytes at the front.
    pub fn front(&self) -> Front<'_> {
        Front::File {
            file: &self.file,
            offset: self.offset,
            len: self.remaining,
        }
    }

    /// Drops `n` bytes from the front.
    pub fn skip(&mut self, n: u64) {
        let n = n.min(self.remaining);
        self.offset += n;
        self.remaining -= n;
    }
}

/// One entry of a channel's output queue.
#[derive(Debug)]
pub enum OutBuffer {
    /// Bytes written by the application (memory, then a temporary file).
    Bytes(OverflowableBuffer),
    /// A file body sent straight from the file.
    File(FileBuffer),
}

impl OutBuffer {
    /// Bytes left to send.
    pub fn len(&self) -> u64 {
        match self {
            OutBuffer::Bytes(b) => b.len(),
            OutBuffer::File(f) => f.len(),
        }
    }

    /// True when nothing is left to send.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True for a memory buffer that keeps at most `bytes` allocated.
    pub fn is_small(&self, bytes: usize) -> bool {
        match self {
            OutBuffer::Bytes(b) => b.is_small(bytes),
            OutBuffer::File(_) => false,
        }
    }

    /// The bytes at the front.
    pub fn front(&self) -> Front<'_> {
        match self {
            OutBuffer::Bytes(b) => b.front(),
            OutBuffer::File(f) => f.front(),
        }
    }

    /// Drops `n` sent bytes from the front.
    pub fn skip(&mut self, n: u64) {
        match self {
            OutBuffer::Bytes(b) => b.skip(n),
            OutBuffer::File(f) => f.skip(n),
        }
    }
}

/// The request body as the application reads it (`wsgi.input`): complete
/// before the application runs, in memory or in a temporary file.
///
/// It implements [`Read`], [`BufRead`] and [`Seek`]; seeking is relative to
/// the body's first byte.
#[derive(Debug)]
pub struct RequestBody {
    inner: BodyInner,
}

#[derive(Debug)]
enum BodyInner {
    Mem(io::Cursor<Vec<u8>>),
    /// Boxed: most bodies are in memory, and a request is moved from the
    /// I/O thread to a worker by value (this keeps it 40 bytes smaller).
    File(Box<FileBody>),
}

/// A body in a temporary file.
#[derive(Debug)]
struct FileBody {
    file: io::BufReader<File>,
    /// Offset of the body's first byte in the file.
    start: u64,
    len: u64,
    /// Position relative to `start`.
    pos: u64,
}

impl Default for RequestBody {
    fn default() -> Self {
        RequestBody::empty()
    }
}

impl RequestBody {
    /// An empty body.
    pub fn empty() -> RequestBody {
        RequestBody::from_vec(Vec::new())
    }

    /// A body held in memory.
    pub fn from_vec(data: Vec<u8>) -> RequestBody {
        RequestBody {
            inner: BodyInner::Mem(io::Cursor::new(data)),
        }
    }

    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match &self.inner {
            BodyInner::Mem(c) => c.get_ref().len() as u64,
            BodyInner::File(f) => f.len,
        }
    }

    /// True for an empty body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the body was large enough to be kept in a temporary file.
    pub fn is_spilled(&self) -> bool {
        matches!(self.inner, BodyInner::File(_))
    }

    /// Reads the rest of the body into a vector.
    pub fn to_vec(&mut self) -> io::Result<Vec<u8>> {
        let mut v = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0).min(1 << 20));
        self.read_to_end(&mut v)?;
        Ok(v)
    }
}

impl Read for RequestBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            BodyInner::Mem(c) => c.read(buf),
            BodyInner::File(f) => {
                let FileBody { file, len, pos, .. } = &mut **f;
                let left = *len - *pos;
                if left == 0 {
                    return Ok(0);
                }
                let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                let n = file.read(&mut buf[..want])?;
                *pos += n as u64;
                Ok(n)
            }
        }
    }
}

impl BufRead for RequestBody {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match &mut self.inner {
            BodyInner::Mem(c) => c.fill_buf(),
            BodyInner::File(f) => {
                let FileBody { file, len, pos, .. } = &mut **f;
                let left = usize::try_from(*len - *pos).unwrap_or(usize::MAX);
                let buf = file.fill_buf()?;
                Ok(&buf[..buf.len().min(left)])
            }
        }
    }

    fn consume(&mut self, amt: usize) {
        match &mut self.inner {
            BodyInner::Mem(c) => c.consume(amt),
            BodyInner::File(f) => {
                let FileBody { file, len, pos, .. } = &mut **f;
                let amt = amt.min(usize::try_from(*len - *pos).unwrap_or(usize::MAX));
                file.consume(amt);
                *pos += amt as u64;
            }
        }
    }
}

impl Seek for RequestBody {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        match &mut self.inner {
            BodyInner::Mem(c) => c.seek(to),
            BodyInner::File(f) => {
                let FileBody {
                    file,
                    start,
                    len,
                    pos,
                } = &mut **f;
                let target: i128 = match to {
                    SeekFrom::Start(n) => i128::from(n),
                    SeekFrom::End(d) => i128::from(*len) + i128::from(d),
                    SeekFrom::Current(d) => i128::from(*pos) + i128::from(d),
                };
                let target = u64::try_from(target).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "seek to a negative or overflowing position",
                    )
                })?;
                file.seek(SeekFrom::Start(*start + target))?;
                *pos = target;
                Ok(target)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(b: &mut OverflowableBuffer) -> Vec<u8> {
        let mut out = Vec::new();
        while !b.is_empty() {
            let n = match b.front() {
                Front::Mem(s) => {
                    let n = s.len().min(3);
                    out.extend_from_slice(&s[..n]);
                    n
                }
                Front::File { file, offset, len } => {
                    let n = (len as usize).min(5);
                    let mut tmp = vec![0u8; n];
                    file.read_exact_at(&mut tmp, offset).unwrap();
                    out.extend_from_slice(&tmp);
                    n
                }
            };
            b.skip(n as u64);
        }
        out
    }

    #[test]
    fn stays_in_memory_below_overflow() {
        let mut b = OverflowableBuffer::new(10);
        b.append(b"hello").unwrap();
        b.append(b"abcd").unwrap();
        assert!(!b.is_spilled());
        assert_eq!(b.len(), 9);
        assert_eq!(drain(&mut b), b"helloabcd");
        assert!(b.is_empty());
    }

    #[test]
    fn spills_at_overflow_and_keeps_order() {
        let mut b = OverflowableBuffer::new(10);
        b.append(b"hello").unwrap();
        b.skip(2);
        b.append(b"world!!").unwrap(); // 3 + 7 = 10 >= 10: spill
        assert!(b.is_spilled());
        b.append(b"more").unwrap();
        assert_eq!(b.len(), 14);
        assert_eq!(drain(&mut b), b"lloworld!!more");
        // Drained: back in memory, the file closed.
        assert!(!b.is_spilled());
        b.append(b"xyz").unwrap();
        assert!(!b.is_spilled());
        assert_eq!(drain(&mut b), b"xyz");
    }

    #[test]
    fn into_body_reads_and_seeks_in_both_stages() {
        for overflow in [1000, 4] {
            let mut b = OverflowableBuffer::new(overflow);
            b.append(b"0123").unwrap();
            b.append(b"456789").unwrap();
            let mut body = b.into_body().unwrap();
            assert_eq!(body.len(), 10);
            assert_eq!(body.is_spilled(), overflow == 4);
            let mut s = String::new();
            body.read_to_string(&mut s).unwrap();
            assert_eq!(s, "0123456789");
            assert_eq!(body.seek(SeekFrom::Start(3)).unwrap(), 3);
            let mut two = [0u8; 2];
            body.read_exact(&mut two).unwrap();
            assert_eq!(&two, b"34");
            assert_eq!(body.seek(SeekFrom::End(-1)).unwrap(), 9);
            assert_eq!(body.to_vec().unwrap(), b"9");
            assert!(body.seek(SeekFrom::Current(-100)).is_err());
        }
    }

    #[test]
    fn compacts_memory_after_large_consumption() {
        let mut b = OverflowableBuffer::new(u64::MAX);
        let chunk = vec![7u8; COMPACT_THRESHOLD];
        b.append(&chunk).unwrap();
        b.append(b"tail").unwrap();
        b.skip(COMPACT_THRESHOLD as u64);
        b.append(b"!").unwrap();
        match &b.storage {
            Storage::Mem { data, start } => {
                assert_eq!(*start, 0);
                assert_eq!(data.as_slice(), b"tail!");
            }
            Storage::File { .. } => panic!("should not spill"),
        }
    }

    #[test]
    fn file_buffer_tracks_offset() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"abcdefgh").unwrap();
        let mut fb = FileBuffer::new(f, 2, 4);
        assert_eq!(fb.len(), 4);
        fb.skip(3);
        match fb.front() {
            Front::File { offset, len, .. } => assert_eq!((offset, len), (5, 1)),
            Front::Mem(_) => unreachable!(),
        }
        fb.skip(10);
        assert!(fb.is_empty());
    }
}
