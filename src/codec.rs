//! The binary encoding of everything replisim's transport and storage write:
//! network frames ([`crate::net`]) and log and meta records
//! ([`crate::storage`]). MessagePack, structs as maps with their field
//! names, so an encoding is self-describing and decodes into the same types
//! (internally tagged enums, defaults, skipped fields) as serde's JSON.
//!
//! MessagePack rather than JSON because encoding and decoding was the
//! largest cost a protocol added to a simulation: JSON escapes and
//! unescapes every string character by character. `cargo bench --bench
//! harness` measures it. `rmp_serde` encodes; decoding is replisim's own
//! (`de`), which takes what `rmp_serde` decodes along shorter code paths.

mod de;

use serde::{Serialize, de::DeserializeOwned};

/// A value could not be encoded (a map with non-string keys, say).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct EncodeError(#[from] rmp_serde::encode::Error);

/// Bytes that are not an encoding of the expected type.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DecodeError(#[from] de::Error);

/// Appends the encoding of `value` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), EncodeError> {
    value.serialize(&mut rmp_serde::Serializer::new(out).with_struct_map())?;
    Ok(())
}

/// The value `bytes` encode.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    Ok(T::deserialize(&mut de::Decoder::new(bytes))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Op;

    #[test]
    fn an_internally_tagged_value_round_trips() {
        let ops = vec![
            Op::Read {
                key: "k".into(),
                value: None,
            },
            Op::Call {
                key: "k".into(),
                name: "get".into(),
                arg: None,
                value: Some("v".into()),
            },
            Op::Add {
                key: "c".into(),
                amount: -3,
            },
        ];
        let mut bytes = Vec::new();
        encode_into(&mut bytes, &ops).unwrap();
        assert_eq!(decode::<Vec<Op>>(&bytes).unwrap(), ops);
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(decode::<Op>(b"not msgpack").is_err());
        assert!(decode::<Op>(&[]).is_err());
    }
}
