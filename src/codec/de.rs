//! Decoding: a serde `Deserializer` over a MessagePack slice that takes
//! what `rmp_serde::from_slice` takes, value for value and error for
//! error (the tests below hold it to that), except MessagePack extension
//! types, which it refuses (nothing replisim encodes writes one).
//!
//! Why not `rmp_serde`'s own: it sends nearly every request (a struct, a
//! string, a field name) through one large function generic over the
//! visitor, so decoding a message ran through a new copy of it for every
//! field type, tens of kilobytes of code per frame. Here each request has
//! a short path for the encoding it expects (a map for a struct, a string
//! for a field name, an integer for a number) and reads its header with
//! one function shared by every type; anything else falls back to the
//! general path, with the same outcome as `rmp_serde`'s.

use serde::de::{self, DeserializeSeed, Unexpected, Visitor};

/// How deeply arrays and maps may nest (`rmp_serde`'s limit).
const MAX_DEPTH: u16 = 1024;

/// The name `rmp_serde` gives its extension-type newtype.
const EXT_STRUCT_NAME: &str = "_ExtStruct";

/// Bytes that do not decode as the type asked for.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unexpected end of input")]
    Eof,
    #[error("unexpected MessagePack marker 0x{0:02x}")]
    Marker(u8),
    #[error("length mismatch: {0}")]
    Length(u32),
    #[error("a string is not UTF-8: {0}")]
    Utf8(#[from] std::str::Utf8Error),
    #[error("nested deeper than {MAX_DEPTH} levels")]
    Depth,
    #[error("MessagePack extension types are not supported")]
    Ext,
    #[error("{0}")]
    Custom(String),
}

impl de::Error for Error {
    #[cold]
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error::Custom(msg.to_string())
    }
}

/// One value's header, with its payload when that is a scalar, a string
/// or binary (borrowed from the input).
enum Head<'de> {
    Nil,
    Bool(bool),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Str(&'de [u8]),
    Bin(&'de [u8]),
    Array(u32),
    Map(u32),
    Ext,
}

/// Reads values from a slice.
pub struct Decoder<'de> {
    input: &'de [u8],
    /// A marker read ahead (by `Option` and enum requests), not consumed yet.
    peeked: Option<u8>,
    /// How many more levels of arrays and maps may open.
    depth: u16,
}

impl<'de> Decoder<'de> {
    pub fn new(input: &'de [u8]) -> Self {
        Decoder {
            input,
            peeked: None,
            depth: MAX_DEPTH,
        }
    }

    fn bytes(&mut self, len: usize) -> Result<&'de [u8], Error> {
        if len > self.input.len() {
            return Err(Error::Eof);
        }
        let (bytes, rest) = self.input.split_at(len);
        self.input = rest;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        Ok(self.bytes(N)?.try_into().expect("N bytes"))
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn marker(&mut self) -> Result<u8, Error> {
        match self.peeked.take() {
            Some(marker) => Ok(marker),
            None => self.u8(),
        }
    }

    fn peek_marker(&mut self) -> Result<u8, Error> {
        let marker = self.marker()?;
        self.peeked = Some(marker);
        Ok(marker)
    }

    /// The value `marker` starts, its length or payload read. An
    /// extension's payload is left unread (only skipping reads it).
    fn head(&mut self, marker: u8) -> Result<Head<'de>, Error> {
        Ok(match marker {
            0x00..=0x7f => Head::U8(marker),
            0x80..=0x8f => Head::Map(u32::from(marker & 0x0f)),
            0x90..=0x9f => Head::Array(u32::from(marker & 0x0f)),
            0xa0..=0xbf => Head::Str(self.bytes(usize::from(marker & 0x1f))?),
            0xc0 => Head::Nil,
            0xc1 => return Err(Error::Marker(marker)),
            0xc2 => Head::Bool(false),
            0xc3 => Head::Bool(true),
            0xc4 => {
                let len = self.u8()?;
                Head::Bin(self.bytes(usize::from(len))?)
            }
            0xc5 => {
                let len = self.u16()?;
                Head::Bin(self.bytes(usize::from(len))?)
            }
            0xc6 => {
                let len = self.u32()?;
                Head::Bin(self.bytes(len as usize)?)
            }
            0xc7..=0xc9 | 0xd4..=0xd8 => Head::Ext,
            0xca => Head::F32(f32::from_be_bytes(self.array()?)),
            0xcb => Head::F64(f64::from_be_bytes(self.array()?)),
            0xcc => Head::U8(self.u8()?),
            0xcd => Head::U16(self.u16()?),
            0xce => Head::U32(self.u32()?),
            0xcf => Head::U64(u64::from_be_bytes(self.array()?)),
            0xd0 => Head::I8(i8::from_be_bytes(self.array()?)),
            0xd1 => Head::I16(i16::from_be_bytes(self.array()?)),
            0xd2 => Head::I32(i32::from_be_bytes(self.array()?)),
            0xd3 => Head::I64(i64::from_be_bytes(self.array()?)),
            0xd9 => {
                let len = self.u8()?;
                Head::Str(self.bytes(usize::from(len))?)
            }
            0xda => {
                let len = self.u16()?;
                Head::Str(self.bytes(usize::from(len))?)
            }
            0xdb => {
                let len = self.u32()?;
                Head::Str(self.bytes(len as usize)?)
            }
            0xdc => Head::Array(u32::from(self.u16()?)),
            0xdd => Head::Array(self.u32()?),
            0xde => Head::Map(u32::from(self.u16()?)),
            0xdf => Head::Map(self.u32()?),
            0xe0..=0xff => Head::I8(marker as i8),
        })
    }

    fn next_head(&mut self) -> Result<Head<'de>, Error> {
        let marker = self.marker()?;
        self.head(marker)
    }

    /// Hands the value `head` starts to `visitor` (a binary as bytes, or
    /// with `bytes` unset as a sequence of numbers).
    #[inline(never)]
    fn visit<V: Visitor<'de>>(
        &mut self,
        head: Head<'de>,
        visitor: V,
        bytes: bool,
    ) -> Result<V::Value, Error> {
        match head {
            Head::Nil => visitor.visit_unit(),
            Head::Bool(b) => visitor.visit_bool(b),
            Head::U8(n) => visitor.visit_u8(n),
            Head::U16(n) => visitor.visit_u16(n),
            Head::U32(n) => visitor.visit_u32(n),
            Head::U64(n) => visitor.visit_u64(n),
            Head::I8(n) => visitor.visit_i8(n),
            Head::I16(n) => visitor.visit_i16(n),
            Head::I32(n) => visitor.visit_i32(n),
            Head::I64(n) => visitor.visit_i64(n),
            Head::F32(n) => visitor.visit_f32(n),
            Head::F64(n) => visitor.visit_f64(n),
            Head::Str(s) => visit_str(s, visitor),
            Head::Bin(b) if bytes => visitor.visit_borrowed_bytes(b),
            Head::Bin(b) => visitor.visit_seq(de::value::SeqDeserializer::new(b.iter().copied())),
            Head::Array(len) => self.seq(len, visitor),
            Head::Map(len) => self.map(len, visitor),
            Head::Ext => Err(Error::Ext),
        }
    }

    /// A number, boolean or nil, as `visitor` takes it; anything else is
    /// refused. Unsigned integers and booleans take the short way.
    #[inline]
    fn scalar<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        match self.marker()? {
            marker @ 0x00..=0x7f => visitor.visit_u8(marker),
            0xc2 => visitor.visit_bool(false),
            0xc3 => visitor.visit_bool(true),
            0xcc => visitor.visit_u8(self.u8()?),
            0xcd => visitor.visit_u16(self.u16()?),
            0xce => visitor.visit_u32(self.u32()?),
            0xcf => visitor.visit_u64(u64::from_be_bytes(self.array()?)),
            marker => self.other_scalar(marker, visitor),
        }
    }

    #[inline(never)]
    fn other_scalar<V: Visitor<'de>>(&mut self, marker: u8, visitor: V) -> Result<V::Value, Error> {
        match marker {
            0x80..=0xbf | 0xc4..=0xc9 | 0xd4..=0xdf => Err(Error::Marker(marker)),
            _ => {
                let head = self.head(marker)?;
                self.visit(head, visitor, true)
            }
        }
    }

    /// A string as `visitor` takes it (anything else as [`Self::visit`]
    /// hands it over).
    #[inline]
    fn string<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        let s = match self.marker()? {
            marker @ 0xa0..=0xbf => self.bytes(usize::from(marker & 0x1f))?,
            marker => match self.head(marker)? {
                Head::Str(s) => s,
                head => return self.visit(head, visitor, true),
            },
        };
        visit_str(s, visitor)
    }

    /// An array or a map, as `visitor` takes it (a binary as a sequence).
    #[inline]
    fn compound<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        match self.marker()? {
            marker @ 0x80..=0x8f => self.map(u32::from(marker & 0x0f), visitor),
            marker @ 0x90..=0x9f => self.seq(u32::from(marker & 0x0f), visitor),
            marker => match self.head(marker)? {
                Head::Map(len) => self.map(len, visitor),
                Head::Array(len) => self.seq(len, visitor),
                head => self.visit(head, visitor, false),
            },
        }
    }

    fn descend(&mut self) -> Result<(), Error> {
        self.depth -= 1;
        match self.depth {
            0 => Err(Error::Depth),
            _ => Ok(()),
        }
    }

    fn seq<V: Visitor<'de>>(&mut self, len: u32, visitor: V) -> Result<V::Value, Error> {
        self.descend()?;
        let mut access = Entries {
            de: self,
            left: len,
        };
        let value = visitor.visit_seq(&mut access)?;
        let left = access.left;
        self.depth += 1;
        match left {
            0 => Ok(value),
            left => Err(Error::Length(len - left)),
        }
    }

    fn map<V: Visitor<'de>>(&mut self, len: u32, visitor: V) -> Result<V::Value, Error> {
        self.descend()?;
        let mut access = Entries {
            de: self,
            left: len,
        };
        let value = visitor.visit_map(&mut access)?;
        let left = access.left;
        self.depth += 1;
        match left {
            0 => Ok(value),
            left => Err(Error::Length(len - left)),
        }
    }

    /// Reads past one value of any kind.
    fn skip(&mut self) -> Result<(), Error> {
        let marker = self.marker()?;
        let (len, pairs) = match self.head(marker)? {
            Head::Array(len) => (len, false),
            Head::Map(len) => (len, true),
            Head::Ext => {
                let len = match marker {
                    0xd4..=0xd8 => 1 << (marker - 0xd4),
                    0xc7 => u32::from(self.u8()?),
                    0xc8 => u32::from(self.u16()?),
                    _ => self.u32()?,
                };
                self.bytes(1 + len as usize)?;
                return Ok(());
            }
            _ => return Ok(()),
        };
        self.descend()?;
        for _ in 0..len {
            self.skip()?;
            if pairs {
                self.skip()?;
            }
        }
        self.depth += 1;
        Ok(())
    }

    /// A 128-bit integer: any integer, or its 16 big-endian bytes.
    fn i128(&mut self) -> Result<i128, Error> {
        let marker = self.marker()?;
        let len = match marker {
            0xc4 => self.u8()?,
            0x90..=0x9f => marker & 0x0f,
            _ => {
                return match self.head(marker)? {
                    Head::U8(n) => Ok(n.into()),
                    Head::U16(n) => Ok(n.into()),
                    Head::U32(n) => Ok(n.into()),
                    Head::U64(n) => Ok(n.into()),
                    Head::I8(n) => Ok(n.into()),
                    Head::I16(n) => Ok(n.into()),
                    Head::I32(n) => Ok(n.into()),
                    Head::I64(n) => Ok(n.into()),
                    _ => Err(Error::Marker(marker)),
                };
            }
        };
        match len {
            16 => Ok(i128::from_be_bytes(self.array()?)),
            _ => Err(Error::Length(16)),
        }
    }
}

#[inline]
fn visit_str<'de, V: Visitor<'de>>(bytes: &'de [u8], visitor: V) -> Result<V::Value, Error> {
    // Field names, variant names and most values are short ASCII strings:
    // checking that is several times cheaper than `from_utf8`'s validation.
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        return visitor.visit_borrowed_str(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => visitor.visit_borrowed_str(s),
        // As `rmp_serde`: a visitor may take the bytes instead.
        Err(error) => visitor
            .visit_borrowed_bytes::<Error>(bytes)
            .map_err(|_| Error::Utf8(error)),
    }
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = Error;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let head = self.next_head()?;
        self.visit(head, visitor, true)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i128(self.i128()?)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u128(self.i128()? as u128)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.scalar(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.string(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.marker()? {
            0xc0 => visitor.visit_none(),
            marker => {
                self.peeked = Some(marker);
                visitor.visit_some(self)
            }
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        // `rmp_serde` writes a unit struct as an empty array.
        match self.marker()? {
            0xc0 | 0x90 => visitor.visit_unit(),
            marker => {
                self.peeked = Some(marker);
                self.deserialize_any(visitor)
            }
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match name {
            EXT_STRUCT_NAME => Err(Error::Ext),
            _ => visitor.visit_newtype_struct(self),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.compound(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.compound(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.compound(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.compound(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // A variant with data is a map of one entry, its name to the data;
        // a unit variant is its name alone.
        let len = match self.peek_marker()? {
            marker @ 0x80..=0x8f => u32::from(marker & 0x0f),
            0xde => u32::from(self.u16()?),
            0xdf => self.u32()?,
            _ => return visitor.visit_enum(UnitVariant(self)),
        };
        match len {
            1 => {
                self.peeked = None;
                visitor.visit_enum(Variant(self))
            }
            len => Err(Error::Length(len)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.skip()?;
        visitor.visit_unit()
    }
}

/// The elements of an array or the entries of a map.
struct Entries<'a, 'de> {
    de: &'a mut Decoder<'de>,
    left: u32,
}

impl<'de> de::SeqAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left as usize)
    }
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left as usize)
    }
}

/// A variant written as a one-entry map: its name, then its data.
struct Variant<'a, 'de>(&'a mut Decoder<'de>);

impl<'de> de::EnumAccess<'de> for Variant<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        Ok((seed.deserialize(&mut *self.0)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.0.u8()? {
            0xc0 => Ok(()),
            marker => Err(Error::Marker(marker)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.0.compound(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.0.compound(visitor)
    }
}

/// A variant written as its name alone: a unit variant.
struct UnitVariant<'a, 'de>(&'a mut Decoder<'de>);

impl<'de> de::EnumAccess<'de> for UnitVariant<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        Ok((seed.deserialize(&mut *self.0)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Error> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"newtype variant",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"struct variant",
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde::{Deserialize, Serialize, de::DeserializeOwned};

    use super::*;
    use crate::codec::encode_into;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Unit,
        Newtype(u32),
        Tuple(i8, String),
        Struct {
            a: Option<u64>,
            #[serde(default)]
            b: Vec<bool>,
        },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "kebab-case")]
    enum Tagged {
        One { x: i64 },
        Two { name: String, maybe: Option<f64> },
        Three,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Untagged {
        Number(u64),
        Text(String),
        List(Vec<u8>),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Newtype(String);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pair(u16, i32);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        flag: bool,
        small: u8,
        signed: i16,
        big: u64,
        negative: i64,
        single: f32,
        double: f64,
        letter: char,
        text: String,
        numbers: Vec<u8>,
        maybe: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        shapes: Vec<Shape>,
        tagged: Vec<Tagged>,
        untagged: Vec<Untagged>,
        by_number: BTreeMap<u32, String>,
        tuple: (u8, String),
        unit: Unit,
        newtype: Newtype,
        pair: Pair,
        wide: i128,
        unsigned_wide: u128,
        nothing: (),
    }

    fn everything(seed: u64) -> Everything {
        Everything {
            flag: seed.is_multiple_of(2),
            small: seed as u8,
            signed: -(seed as i16),
            big: u64::MAX - seed,
            negative: -(seed as i64) * 1_000_000_007,
            single: seed as f32 / 3.0,
            double: -(seed as f64) / 7.0,
            letter: char::from_u32(0x41 + (seed % 0x2000) as u32).unwrap_or('?'),
            text: "é".repeat(seed as usize % 40),
            numbers: (0..seed % 20).map(|n| n as u8 * 13).collect(),
            maybe: seed.is_multiple_of(3).then(|| format!("v{seed}")),
            skipped: seed.is_multiple_of(4).then_some(4),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(seed as u32),
                Shape::Tuple(-3, "t".into()),
                Shape::Struct {
                    a: Some(seed),
                    b: vec![true, false],
                },
            ],
            tagged: vec![
                Tagged::One { x: -(seed as i64) },
                Tagged::Two {
                    name: "n".into(),
                    maybe: Some(0.5),
                },
                Tagged::Three,
            ],
            untagged: vec![
                Untagged::Number(seed),
                Untagged::Text("x".repeat(seed as usize % 300)),
                Untagged::List(vec![1, 2, 3]),
            ],
            by_number: (0..seed % 18)
                .map(|n| (n as u32 * 70_000, n.to_string()))
                .collect(),
            tuple: (7, "seven".into()),
            unit: Unit,
            newtype: Newtype("inner".into()),
            pair: Pair(seed as u16, -(seed as i32)),
            wide: -(seed as i128) << 70,
            unsigned_wide: (seed as u128) << 90,
            nothing: (),
        }
    }

    fn encoded<T: Serialize>(value: &T) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_into(&mut bytes, value).unwrap();
        bytes
    }

    /// Decodes `bytes` as `T` with this decoder and with `rmp_serde`: both
    /// succeed with the same value, or both fail.
    fn agrees<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8]) -> Result<(), String> {
        let ours = T::deserialize(&mut Decoder::new(bytes)).map(|v| format!("{v:?}"));
        let theirs = rmp_serde::from_slice::<T>(bytes).map(|v| format!("{v:?}"));
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) if a == b => Ok(()),
            (Err(_), Err(_)) => Ok(()),
            _ => Err(format!(
                "{bytes:02x?}: ours {ours:?}, rmp_serde's {theirs:?}"
            )),
        }
    }

    fn agrees_on_all(bytes: &[u8]) -> Result<(), String> {
        agrees::<Everything>(bytes)?;
        agrees::<serde_json::Value>(bytes)?;
        agrees::<Vec<Shape>>(bytes)?;
        agrees::<Vec<Tagged>>(bytes)?;
        agrees::<(Option<u32>, Untagged)>(bytes)?;
        agrees::<crate::history::Op>(bytes)?;
        agrees::<crate::history::Completion>(bytes)
    }

    #[test]
    fn every_kind_of_value_round_trips() {
        for seed in [0, 1, 2, 3, 4, 17, 255, 256, 65_536, u32::MAX as u64 + 9] {
            let value = everything(seed);
            let bytes = encoded(&value);
            let decoded = Everything::deserialize(&mut Decoder::new(&bytes)).unwrap();
            assert_eq!(decoded, value);
            agrees_on_all(&bytes).unwrap();
        }
    }

    #[test]
    fn refusals_match_rmp_serde() {
        let cases: &[&[u8]] = &[
            &[],
            &[0xc1],
            &[0xd4, 1, 2],
            &[0x81, 0xa1, b'x'],
            &[0x92, 0x01],
            &[0xa3, 0xff, 0xfe, 0xfd],
            &[0xc4, 0x02, 0x01, 0x02],
            &[0x82, 0xa4, b'U', b'n', b'i', b't', 0xc0, 0xc0, 0xc0],
        ];
        for bytes in cases {
            agrees_on_all(bytes).unwrap();
        }
        let deep: Vec<u8> = std::iter::repeat_n(0x91, 2000).chain([0xc0]).collect();
        agrees::<serde_json::Value>(&deep).unwrap();
        assert!(matches!(
            serde_json::Value::deserialize(&mut Decoder::new(&deep)),
            Err(Error::Depth)
        ));
    }

    proptest! {
        /// Damaged encodings (bytes changed, dropped or cut off) decode
        /// to what `rmp_serde` decodes them to, or fail as it does.
        #[test]
        fn damaged_encodings_decode_as_rmp_serde_decodes_them(
            seed in 0u64..400,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encoded(&everything(seed));
            for (at, byte, how) in edits {
                let at = at.index(bytes.len());
                match how {
                    0 => bytes[at] = byte,
                    1 => { bytes.remove(at); }
                    _ => bytes.insert(at, byte),
                }
            }
            agrees_on_all(&bytes).map_err(TestCaseError::fail)?;
            let cut = cut.index(bytes.len() + 1);
            agrees_on_all(&bytes[..cut]).map_err(TestCaseError::fail)?;
        }

        /// Arbitrary bytes too.
        #[test]
        fn arbitrary_bytes_decode_as_rmp_serde_decodes_them(
            bytes in prop::collection::vec(any::<u8>(), 0..48),
        ) {
            agrees_on_all(&bytes).map_err(TestCaseError::fail)?;
        }
    }
}
