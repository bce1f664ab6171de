//! `Name`: a length-prefixed UTF-8 string of at most 255 bytes.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use crate::codec::{need, Cursor, Decode, Decoded, Encode};
use crate::FrameError;

/// The longest [`Name`], in bytes.
pub const MAX_NAME_LEN: usize = 255;

/// A node id, a protocol string or any other short string of the protocol:
/// `len:u8` then `len` bytes of UTF-8.
///
/// The length is checked when a `Name` is made: a string longer than 255
/// bytes is an error, never truncated.
///
/// ```
/// use circuit_frame::Name;
/// assert_eq!(Name::new("router-1").unwrap().as_str(), "router-1");
/// assert!(Name::new("x".repeat(256)).is_err());
/// ```
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Name(String);

impl Name {
    /// Makes a name, refusing strings over [`MAX_NAME_LEN`] bytes.
    pub fn new(name: impl Into<String>) -> Result<Self, FrameError> {
        let name = name.into();
        if name.len() > MAX_NAME_LEN {
            return Err(FrameError::NameTooLong { len: name.len() });
        }
        Ok(Name(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Deref for Name {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Name {
    type Err = FrameError;
    fn from_str(s: &str) -> Result<Self, FrameError> {
        Name::new(s)
    }
}

impl TryFrom<&str> for Name {
    type Error = FrameError;
    fn try_from(s: &str) -> Result<Self, FrameError> {
        Name::new(s)
    }
}

impl TryFrom<String> for Name {
    type Error = FrameError;
    fn try_from(s: String) -> Result<Self, FrameError> {
        Name::new(s)
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

impl Encode for Name {
    fn encoded_len(&self) -> usize {
        1 + self.0.len()
    }

    fn encode_exact(&self, out: &mut [u8]) {
        // The constructor keeps the length within a u8.
        out[0] = self.0.len() as u8;
        out[1..].copy_from_slice(self.0.as_bytes());
    }
}

impl Decode<'_> for Name {
    const MIN_LEN: usize = 1;

    fn decode(input: &[u8]) -> Result<Decoded<Self>, FrameError> {
        let mut c = Cursor::new(input);
        let len = need!(c.u8());
        let bytes = need!(c.take(usize::from(len)));
        let s = std::str::from_utf8(bytes).map_err(|_| FrameError::InvalidUtf8)?;
        Ok(Decoded::Complete {
            message: Name(s.to_owned()),
            consumed: c.pos(),
        })
    }
}
