//! Aggregator states and their byte encoding.
//!
//! Between calls an aggregator's state lives in the server as opaque bytes,
//! so every state type implements [`State`]. The SDK implements it for
//! numbers, `bool`, `String`, `Option`, `Vec` and tuples (so `(u64, f64)`
//! or `Vec<f64>` work as they are), and for [`Json<T>`] around any serde
//! type. A struct of such fields implements it by encoding its fields in
//! order:
//!
//! ```
//! use luminate_plugin_sdk::state::{State, StateError};
//!
//! #[derive(Default)]
//! struct Counts { satisfied: u64, total: u64 }
//!
//! impl State for Counts {
//!     fn encode(&self, out: &mut Vec<u8>) {
//!         self.satisfied.encode(out);
//!         self.total.encode(out);
//!     }
//!     fn decode(input: &mut &[u8]) -> Result<Self, StateError> {
//!         Ok(Self { satisfied: u64::decode(input)?, total: u64::decode(input)? })
//!     }
//! }
//! ```
//!
//! The encoding is little-endian and length-prefixed; decoding never trusts
//! a length beyond the bytes actually present.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt;

/// A value that round-trips through bytes.
pub trait State: Sized {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Reads one value from the front of `input`, advancing it.
    fn decode(input: &mut &[u8]) -> Result<Self, StateError>;

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes exactly one value: trailing bytes are an error.
    fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        let mut input = bytes;
        let value = Self::decode(&mut input)?;
        if input.is_empty() {
            Ok(value)
        } else {
            Err(StateError::new(format!(
                "{} trailing bytes after the state",
                input.len()
            )))
        }
    }
}

/// Bytes that are not a valid state: truncated, or from another plugin
/// version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError(String);

impl StateError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], StateError> {
    if input.len() < n {
        return Err(StateError::new(format!(
            "truncated state: needed {n} more bytes, {} left",
            input.len()
        )));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn take_len(input: &mut &[u8]) -> Result<usize, StateError> {
    let len = u64::decode(input)?;
    usize::try_from(len).map_err(|_| StateError::new(format!("length {len} too large")))
}

macro_rules! fixed_width_state {
    ($($ty:ty),*) => {$(
        impl State for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(input: &mut &[u8]) -> Result<Self, StateError> {
                let bytes = take(input, std::mem::size_of::<$ty>())?;
                let mut array = [0u8; std::mem::size_of::<$ty>()];
                array.copy_from_slice(bytes);
                Ok(<$ty>::from_le_bytes(array))
            }
        }
    )*};
}

fixed_width_state!(u8, u16, u32, u64, i8, i16, i32, i64, f32, f64);

impl State for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Result<Self, StateError> {
        match u8::decode(input)? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(StateError::new(format!("invalid bool byte {other}"))),
        }
    }
}

impl State for () {
    fn encode(&self, _out: &mut Vec<u8>) {}
    fn decode(_input: &mut &[u8]) -> Result<Self, StateError> {
        Ok(())
    }
}

impl State for String {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u64).encode(out);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Result<Self, StateError> {
        let len = take_len(input)?;
        let bytes = take(input, len)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| StateError::new(e.to_string()))
    }
}

impl<T: State> State for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(value) => {
                out.push(1);
                value.encode(out);
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Result<Self, StateError> {
        match bool::decode(input)? {
            false => Ok(None),
            true => T::decode(input).map(Some),
        }
    }
}

impl<T: State> State for Vec<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u64).encode(out);
        for item in self {
            item.encode(out);
        }
    }
    fn decode(input: &mut &[u8]) -> Result<Self, StateError> {
        let len = take_len(input)?;
        // Every element takes at least one byte, except zero-sized ones:
        // never reserve more than the input can hold.
        let mut items = Vec::with_capacity(len.min(input.len()));
        for _ in 0..len {
            items.push(T::decode(input)?);
        }
        Ok(items)
    }
}

macro_rules! tuple_state {
    ($($name:ident),+) => {
        impl<$($name: State),+> State for ($($name,)+) {
            #[allow(non_snake_case)]
            fn encode(&self, out: &mut Vec<u8>) {
                let ($($name,)+) = self;
                $($name.encode(out);)+
            }
            fn decode(input: &mut &[u8]) -> Result<Self, StateError> {
                Ok(($($name::decode(input)?,)+))
            }
        }
    };
}

tuple_state!(A);
tuple_state!(A, B);
tuple_state!(A, B, C);
tuple_state!(A, B, C, D);
tuple_state!(A, B, C, D, E);
tuple_state!(A, B, C, D, E, F);

/// Any serde type as a state, encoded as JSON. Convenient for rich states;
/// the binary impls are smaller and faster for numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Json<T>(pub T);

impl<T: Serialize + DeserializeOwned> State for Json<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        // Serialising plain data into a Vec cannot fail; a type whose
        // Serialize impl fails (a map with non-string keys) is a bug that
        // must show in the author's tests, hence the panic.
        let json = serde_json::to_vec(&self.0).expect("state must serialise to JSON");
        (json.len() as u64).encode(out);
        out.extend_from_slice(&json);
    }
    fn decode(input: &mut &[u8]) -> Result<Self, StateError> {
        let len = take_len(input)?;
        let bytes = take(input, len)?;
        serde_json::from_slice(bytes)
            .map(Json)
            .map_err(|e| StateError::new(format!("invalid JSON state: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: State + PartialEq + fmt::Debug>(value: T) {
        let bytes = value.to_bytes();
        assert_eq!(T::from_bytes(&bytes).unwrap(), value);
    }

    #[test]
    fn common_shapes_round_trip() {
        round_trip(42u64);
        round_trip(-7i64);
        round_trip(0.25f64);
        round_trip(true);
        round_trip(String::from("état"));
        round_trip(Some(3u32));
        round_trip(None::<u32>);
        round_trip(vec![1.5f64, -2.0, 3.25]);
        round_trip((1u64, 2.5f64, vec![String::from("a")]));
        round_trip(Json(std::collections::BTreeMap::from([(
            String::from("k"),
            1u8,
        )])));
    }

    #[test]
    fn truncated_bytes_are_an_error_not_a_panic() {
        let bytes = (1u64, 2u64).to_bytes();
        for cut in 0..bytes.len() {
            assert!(
                <(u64, u64)>::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut bytes = 1u64.to_bytes();
        bytes.push(0);
        assert!(
            u64::from_bytes(&bytes)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
    }

    #[test]
    fn a_huge_declared_length_does_not_allocate() {
        let bytes = u64::MAX.to_bytes();
        assert!(Vec::<u64>::from_bytes(&bytes).is_err());
        assert!(String::from_bytes(&bytes).is_err());
    }
}
