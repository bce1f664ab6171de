//! The two traits every message implements.

use crate::FrameError;

/// What an incremental decoder found at the start of its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A whole message, and how many input bytes it took.
    Complete {
        /// The message.
        message: T,
        /// Bytes of input it used; the next message starts there.
        consumed: usize,
    },
    /// The input is the start of a message but too short: at least `needed`
    /// bytes in total (counted from the start of the input) are required
    /// before decoding can make progress.
    Incomplete {
        /// The total input length needed at least.
        needed: usize,
    },
}

impl<T> Decoded<T> {
    /// Applies `f` to a complete message, keeping `consumed` and `needed`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decoded<U> {
        match self {
            Decoded::Complete { message, consumed } => Decoded::Complete {
                message: f(message),
                consumed,
            },
            Decoded::Incomplete { needed } => Decoded::Incomplete { needed },
        }
    }

    /// The message and its size, or `None` if the input was too short.
    pub fn complete(self) -> Option<(T, usize)> {
        match self {
            Decoded::Complete { message, consumed } => Some((message, consumed)),
            Decoded::Incomplete { .. } => None,
        }
    }
}

/// A message that can be written to the wire.
pub trait Encode {
    /// The exact number of bytes [`encode`](Encode::encode) will write.
    fn encoded_len(&self) -> usize;

    /// Writes the message at the start of `out` and returns its size.
    ///
    /// Fails with [`FrameError::BufferTooSmall`] (writing nothing) when `out`
    /// is shorter than [`encoded_len`](Encode::encoded_len).
    fn encode(&self, out: &mut [u8]) -> Result<usize, FrameError> {
        let needed = self.encoded_len();
        let available = out.len();
        match out.get_mut(..needed) {
            Some(dst) => {
                self.encode_exact(dst);
                Ok(needed)
            }
            None => Err(FrameError::BufferTooSmall { needed, available }),
        }
    }

    /// Writes the message into `out`, whose length is exactly
    /// [`encoded_len`](Encode::encoded_len). Implementors write this one;
    /// callers use [`encode`](Encode::encode).
    fn encode_exact(&self, out: &mut [u8]);

    /// Appends the message to a vector.
    fn encode_to_vec(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.encoded_len(), 0);
        self.encode_exact(&mut out[start..]);
    }
}

/// A message that can be read incrementally from the wire.
pub trait Decode<'a>: Sized {
    /// The fewest bytes any message of this type takes.
    const MIN_LEN: usize;

    /// Decodes one message from the start of `input`.
    ///
    /// Never panics. Returns [`Decoded::Incomplete`] when `input` is a valid
    /// prefix that is too short, and an error when the bytes can never be
    /// this message.
    fn decode(input: &'a [u8]) -> Result<Decoded<Self>, FrameError>;
}

/// Reads fixed-size little-endian fields from a slice, checking lengths.
pub(crate) struct Cursor<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        Cursor { input, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes, or `Err(needed total)`.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], usize> {
        let end = self.pos + n;
        match self.input.get(self.pos..end) {
            Some(bytes) => {
                self.pos = end;
                Ok(bytes)
            }
            None => Err(end),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], usize> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, usize> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, usize> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, usize> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Decodes a nested message at the cursor.
    pub(crate) fn decode<T: Decode<'a>>(&mut self) -> Result<Result<T, usize>, FrameError> {
        let rest = self.input.get(self.pos..).unwrap_or(&[]);
        Ok(match T::decode(rest)? {
            Decoded::Complete { message, consumed } => {
                self.pos += consumed;
                Ok(message)
            }
            Decoded::Incomplete { needed } => Err(self.pos + needed),
        })
    }
}

/// Writes fields into an exactly-sized buffer.
pub(crate) struct Writer<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(out: &'a mut [u8]) -> Self {
        Writer { out, pos: 0 }
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let end = self.pos + bytes.len();
        self.out[self.pos..end].copy_from_slice(bytes);
        self.pos = end;
        self
    }

    pub(crate) fn message(&mut self, m: &impl Encode) -> &mut Self {
        let end = self.pos + m.encoded_len();
        m.encode_exact(&mut self.out[self.pos..end]);
        self.pos = end;
        self
    }
}

/// Unwraps a cursor read, returning `Ok(Decoded::Incomplete)` from the
/// enclosing decoder when the input is too short.
macro_rules! need {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(needed) => return Ok($crate::Decoded::Incomplete { needed }),
        }
    };
}
pub(crate) use need;
