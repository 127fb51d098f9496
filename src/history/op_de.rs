//! [`Op`]'s `Deserialize`, written by hand. Serde's derived one for an
//! internally tagged enum first buffers every field of the map (copying
//! each string) to find the tag, then deserializes the variant from the
//! buffer; operations are decoded for every frame a replica receives, so
//! this one reads the map once into typed slots instead. It accepts what
//! the derived one accepted: the tag `f` anywhere in the map, unknown
//! fields ignored, `value` of a read and `arg`/`value` of a call optional.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::Op;

const TAGS: &[&str] = &[
    "read", "write", "append", "cas", "add", "insert", "remove", "call",
];

#[derive(Clone, Copy)]
enum Tag {
    Read,
    Write,
    Append,
    Cas,
    Add,
    Insert,
    Remove,
    Call,
}

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagVisitor;
        impl Visitor<'_> for TagVisitor {
            type Value = Tag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an operation name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Tag, E> {
                Ok(match name {
                    "read" => Tag::Read,
                    "write" => Tag::Write,
                    "append" => Tag::Append,
                    "cas" => Tag::Cas,
                    "add" => Tag::Add,
                    "insert" => Tag::Insert,
                    "remove" => Tag::Remove,
                    "call" => Tag::Call,
                    other => return Err(E::unknown_variant(other, TAGS)),
                })
            }
        }
        deserializer.deserialize_identifier(TagVisitor)
    }
}

/// A field of any variant, or one to ignore.
enum Field {
    Tag,
    Key,
    Value,
    From,
    To,
    Amount,
    Element,
    Name,
    Arg,
    Other,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
                Ok(match name {
                    "f" => Field::Tag,
                    "key" => Field::Key,
                    "value" => Field::Value,
                    "from" => Field::From,
                    "to" => Field::To,
                    "amount" => Field::Amount,
                    "element" => Field::Element,
                    "name" => Field::Name,
                    "arg" => Field::Arg,
                    _ => Field::Other,
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

/// Every field an operation may carry, as read from its map.
#[derive(Default)]
struct Slots {
    tag: Option<Tag>,
    key: Option<String>,
    /// `Some(None)`: present and null.
    value: Option<Option<String>>,
    from: Option<String>,
    to: Option<String>,
    amount: Option<i64>,
    element: Option<String>,
    name: Option<String>,
    arg: Option<Option<String>>,
}

/// Stores the next value of the map in `slot`, refusing a repeated field.
fn fill<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    field: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(field));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

fn required<T, E: de::Error>(slot: Option<T>, field: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(field))
}

impl Slots {
    fn into_op<E: de::Error>(self) -> Result<Op, E> {
        let Slots {
            tag,
            key,
            value,
            from,
            to,
            amount,
            element,
            name,
            arg,
        } = self;
        let tag = required(tag, "f")?;
        let key = required(key, "key")?;
        let required_value = |value: Option<Option<String>>| match value {
            Some(Some(value)) => Ok(value),
            Some(None) => Err(E::invalid_type(de::Unexpected::Unit, &"a string")),
            None => Err(E::missing_field("value")),
        };
        Ok(match tag {
            Tag::Read => Op::Read {
                key,
                value: value.flatten(),
            },
            Tag::Write => Op::Write {
                key,
                value: required_value(value)?,
            },
            Tag::Append => Op::Append {
                key,
                value: required_value(value)?,
            },
            Tag::Cas => Op::Cas {
                key,
                from: required(from, "from")?,
                to: required(to, "to")?,
            },
            Tag::Add => Op::Add {
                key,
                amount: required(amount, "amount")?,
            },
            Tag::Insert => Op::Insert {
                key,
                element: required(element, "element")?,
            },
            Tag::Remove => Op::Remove {
                key,
                element: required(element, "element")?,
            },
            Tag::Call => Op::Call {
                key,
                name: required(name, "name")?,
                arg: arg.flatten(),
                value: value.flatten(),
            },
        })
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OpVisitor;
        impl<'de> Visitor<'de> for OpVisitor {
            type Value = Op;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an operation: a map with its name in `f`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Op, A::Error> {
                let mut slots = Slots::default();
                while let Some(field) = map.next_key()? {
                    match field {
                        Field::Tag => fill(&mut map, &mut slots.tag, "f")?,
                        Field::Key => fill(&mut map, &mut slots.key, "key")?,
                        Field::Value => fill(&mut map, &mut slots.value, "value")?,
                        Field::From => fill(&mut map, &mut slots.from, "from")?,
                        Field::To => fill(&mut map, &mut slots.to, "to")?,
                        Field::Amount => fill(&mut map, &mut slots.amount, "amount")?,
                        Field::Element => fill(&mut map, &mut slots.element, "element")?,
                        Field::Name => fill(&mut map, &mut slots.name, "name")?,
                        Field::Arg => fill(&mut map, &mut slots.arg, "arg")?,
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                slots.into_op()
            }
        }
        deserializer.deserialize_map(OpVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = Op> {
        let s = || "[a-z0-9\"\\\\ -]{0,6}";
        prop_oneof![
            (s(), proptest::option::of(s())).prop_map(|(key, value)| Op::Read { key, value }),
            (s(), s()).prop_map(|(key, value)| Op::Write { key, value }),
            (s(), s()).prop_map(|(key, value)| Op::Append { key, value }),
            (s(), s(), s()).prop_map(|(key, from, to)| Op::Cas { key, from, to }),
            (s(), any::<i64>()).prop_map(|(key, amount)| Op::Add { key, amount }),
            (s(), s()).prop_map(|(key, element)| Op::Insert { key, element }),
            (s(), s()).prop_map(|(key, element)| Op::Remove { key, element }),
            (
                s(),
                s(),
                proptest::option::of(s()),
                proptest::option::of(s())
            )
                .prop_map(|(key, name, arg, value)| Op::Call {
                    key,
                    name,
                    arg,
                    value
                }),
        ]
    }

    proptest! {
        #[test]
        fn every_operation_round_trips_through_json_and_the_codec(op in op()) {
            let json = serde_json::to_string(&op).unwrap();
            prop_assert_eq!(serde_json::from_str::<Op>(&json).unwrap(), op.clone());
            let mut bytes = Vec::new();
            crate::codec::encode_into(&mut bytes, &op).unwrap();
            prop_assert_eq!(crate::codec::decode::<Op>(&bytes).unwrap(), op);
        }
    }

    fn error(json: &str) -> String {
        serde_json::from_str::<Op>(json).unwrap_err().to_string()
    }

    #[test]
    fn the_tag_may_come_anywhere_and_unknown_fields_are_ignored() {
        let op: Op =
            serde_json::from_str(r#"{"value":"v","x":[1,{}],"key":"k","f":"write"}"#).unwrap();
        assert_eq!(
            op,
            Op::Write {
                key: "k".into(),
                value: "v".into()
            }
        );
        let read: Op = serde_json::from_str(r#"{"f":"read","key":"k","value":null}"#).unwrap();
        assert_eq!(
            read,
            Op::Read {
                key: "k".into(),
                value: None
            }
        );
    }

    #[test]
    fn malformed_operations_are_refused_naming_the_problem() {
        assert!(error(r#"{"f":"explode","key":"k"}"#).contains("unknown variant `explode`"));
        assert!(error(r#"{"key":"k","value":"v"}"#).contains("missing field `f`"));
        assert!(error(r#"{"f":"write","key":"k"}"#).contains("missing field `value`"));
        assert!(error(r#"{"f":"write","key":"k","value":null}"#).contains("invalid type: null"));
        assert!(error(r#"{"f":"cas","key":"k","from":"a"}"#).contains("missing field `to`"));
        assert!(error(r#"{"f":"add","key":"k","amount":"x"}"#).contains("invalid type"));
        assert!(
            error(r#"{"f":"write","key":"k","key":"j","value":"v"}"#)
                .contains("duplicate field `key`")
        );
        assert!(error(r#"["write","k","v"]"#).contains("invalid type"));
    }
}
