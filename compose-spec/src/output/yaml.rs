//! A serde `Serializer` that writes go-yaml v3 style YAML straight from the model, without an
//! intermediate tree: large projects print in one pass over the data.

use serde::ser::{self, Error as _, Serialize};

use super::{go_yaml_float, pad, write_scalar_str};
use crate::de::EXTENSIONS_FIELD;

type Error = serde_json::Error;
type Result<T> = std::result::Result<T, Error>;

/// Write `value` as a YAML document.
pub(crate) fn write<T: Serialize + ?Sized>(value: &T, out: &mut String) -> Result<()> {
    value.serialize(ValueSer {
        out,
        pos: Pos::Root,
    })
}

/// Where the value being written sits.
#[derive(Clone, Copy)]
enum Pos {
    /// The document root.
    Root,
    /// After `key:` written at this indentation.
    MapValue(usize),
    /// After `- ` written at this indentation.
    SeqItem(usize),
}

impl Pos {
    /// Indentation of the value's nested block content.
    fn child(self) -> usize {
        match self {
            Pos::Root => 0,
            Pos::MapValue(k) => k + 2,
            Pos::SeqItem(d) => d + 2,
        }
    }
}

struct ValueSer<'a> {
    out: &'a mut String,
    pos: Pos,
}

impl<'a> ValueSer<'a> {
    fn scalar(self, text: &str) -> Result<()> {
        if let Pos::MapValue(_) = self.pos {
            self.out.push(' ');
        }
        self.out.push_str(text);
        self.out.push('\n');
        Ok(())
    }

    fn string(self, s: &str) -> Result<()> {
        if let Pos::MapValue(_) = self.pos {
            self.out.push(' ');
        }
        write_scalar_str(s, self.pos.child(), self.out, false);
        self.out.push('\n');
        Ok(())
    }

    fn block(self) -> Block<'a> {
        Block {
            out: self.out,
            pos: self.pos,
            count: 0,
            pending_key: None,
        }
    }
}

/// A mapping or sequence being written; opened lazily so empty ones print as `{}` / `[]`.
struct Block<'a> {
    out: &'a mut String,
    pos: Pos,
    count: usize,
    pending_key: Option<String>,
}

impl Block<'_> {
    /// Position the cursor for the next entry or item.
    fn next_line(&mut self) {
        let indent = self.pos.child();
        if self.count == 0 {
            match self.pos {
                Pos::MapValue(_) => {
                    self.out.push('\n');
                    pad(self.out, indent);
                }
                Pos::Root | Pos::SeqItem(_) => {}
            }
        } else {
            pad(self.out, indent);
        }
        self.count += 1;
    }

    fn entry<V: Serialize + ?Sized>(&mut self, key: &str, value: &V) -> Result<()> {
        self.next_line();
        let indent = self.pos.child();
        write_scalar_str(key, indent, self.out, true);
        self.out.push(':');
        value.serialize(ValueSer {
            out: self.out,
            pos: Pos::MapValue(indent),
        })
    }

    fn item<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<()> {
        // go-yaml indents sequence items under a key, and nests a sequence item's content
        // two columns further.
        self.next_line();
        self.out.push_str("- ");
        value.serialize(ValueSer {
            out: self.out,
            pos: Pos::SeqItem(self.pos.child()),
        })
    }

    fn end(self, empty: &str) -> Result<()> {
        if self.count == 0 {
            if let Pos::MapValue(_) = self.pos {
                self.out.push(' ');
            }
            self.out.push_str(empty);
            self.out.push('\n');
        }
        Ok(())
    }
}

impl<'a> ser::Serializer for ValueSer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Block<'a>;
    type SerializeTuple = Block<'a>;
    type SerializeTupleStruct = Block<'a>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = Block<'a>;
    type SerializeStruct = Block<'a>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<()> {
        self.scalar(if v { "true" } else { "false" })
    }
    fn serialize_i8(self, v: i8) -> Result<()> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<()> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<()> {
        self.serialize_i64(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<()> {
        self.scalar(&v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<()> {
        self.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<()> {
        self.scalar(&v.to_string())
    }
    fn serialize_f32(self, v: f32) -> Result<()> {
        let f: f64 = v.to_string().parse().unwrap_or(f64::from(v));
        self.serialize_f64(f)
    }
    fn serialize_f64(self, v: f64) -> Result<()> {
        self.scalar(&go_yaml_float(v))
    }
    fn serialize_char(self, v: char) -> Result<()> {
        self.string(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<()> {
        self.string(v)
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<()> {
        Err(Error::custom("bytes cannot be written as YAML"))
    }
    fn serialize_none(self) -> Result<()> {
        self.scalar("null")
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        self.scalar("null")
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        self.scalar("null")
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<()> {
        self.string(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<()> {
        Err(Error::custom(
            "enum variants with data cannot be written as YAML",
        ))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Block<'a>> {
        Ok(self.block())
    }
    fn serialize_tuple(self, _: usize) -> Result<Block<'a>> {
        Ok(self.block())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Block<'a>> {
        Ok(self.block())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(Error::custom(
            "enum variants with data cannot be written as YAML",
        ))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Block<'a>> {
        Ok(self.block())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Block<'a>> {
        Ok(self.block())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(Error::custom(
            "enum variants with data cannot be written as YAML",
        ))
    }
}

impl ser::SerializeSeq for Block<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.item(value)
    }
    fn end(self) -> Result<()> {
        Block::end(self, "[]")
    }
}

impl ser::SerializeTuple for Block<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.item(value)
    }
    fn end(self) -> Result<()> {
        Block::end(self, "[]")
    }
}

impl ser::SerializeTupleStruct for Block<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.item(value)
    }
    fn end(self) -> Result<()> {
        Block::end(self, "[]")
    }
}

impl ser::SerializeMap for Block<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.pending_key = Some(key.serialize(KeySer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| Error::custom("map value without a key"))?;
        self.entry(&key, value)
    }
    fn end(self) -> Result<()> {
        Block::end(self, "{}")
    }
}

impl ser::SerializeStruct for Block<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        if key == EXTENSIONS_FIELD {
            // `x-*` keys are written inline, as go-yaml's `,inline` does.
            return value.serialize(Inline(self));
        }
        self.entry(key, value)
    }
    fn end(self) -> Result<()> {
        Block::end(self, "{}")
    }
}

/// Writes a map's entries into the enclosing block.
struct Inline<'b, 'a>(&'b mut Block<'a>);

impl<'b, 'a> ser::Serializer for Inline<'b, 'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = ser::Impossible<(), Error>;
    type SerializeTuple = ser::Impossible<(), Error>;
    type SerializeTupleStruct = ser::Impossible<(), Error>;
    type SerializeTupleVariant = ser::Impossible<(), Error>;
    type SerializeMap = InlineMap<'b, 'a>;
    type SerializeStruct = ser::Impossible<(), Error>;
    type SerializeStructVariant = ser::Impossible<(), Error>;

    fn serialize_map(self, _: Option<usize>) -> Result<InlineMap<'b, 'a>> {
        Ok(InlineMap(self.0, None))
    }

    fn serialize_bool(self, _: bool) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_i8(self, _: i8) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_i16(self, _: i16) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_i32(self, _: i32) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_i64(self, _: i64) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_u8(self, _: u8) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_u16(self, _: u16) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_u32(self, _: u32) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_u64(self, _: u64) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_f32(self, _: f32) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_f64(self, _: f64) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_char(self, _: char) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_str(self, _: &str) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_none(self) -> Result<()> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<()> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<()> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<()> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<()> {
        Err(not_a_map())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(not_a_map())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(not_a_map())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(not_a_map())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(not_a_map())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(not_a_map())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(not_a_map())
    }
}

fn not_a_map() -> Error {
    Error::custom("extensions must be a mapping")
}

struct InlineMap<'b, 'a>(&'b mut Block<'a>, Option<String>);

impl ser::SerializeMap for InlineMap<'_, '_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.1 = Some(key.serialize(KeySer)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self
            .1
            .take()
            .ok_or_else(|| Error::custom("map value without a key"))?;
        self.0.entry(&key, value)
    }
    fn end(self) -> Result<()> {
        Ok(())
    }
}

/// Map keys: strings (numbers are printed as their text).
struct KeySer;

impl ser::Serializer for KeySer {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = ser::Impossible<String, Error>;
    type SerializeTuple = ser::Impossible<String, Error>;
    type SerializeTupleStruct = ser::Impossible<String, Error>;
    type SerializeTupleVariant = ser::Impossible<String, Error>;
    type SerializeMap = ser::Impossible<String, Error>;
    type SerializeStruct = ser::Impossible<String, Error>;
    type SerializeStructVariant = ser::Impossible<String, Error>;

    fn serialize_str(self, v: &str) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_bool(self, v: bool) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i16(self, v: i16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i32(self, v: i32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u8(self, v: u8) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u16(self, v: u16) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u32(self, v: u32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_f32(self, v: f32) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_f64(self, v: f64) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<String> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<String> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<String> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<String> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<String> {
        Err(key_error())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, v: &'static str) -> Result<String> {
        Ok(v.to_string())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<String> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<String> {
        Err(key_error())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(key_error())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(key_error())
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap> {
        Err(key_error())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(key_error())
    }
}

fn key_error() -> Error {
    Error::custom("map keys must be strings")
}
