//! Reading the columns of Delta actions held in Arrow (checkpoints, the Delta Kernel's
//! scan rows) whatever encoding the writer chose: strings of any string type, integers
//! of any width, maps and lists; a missing column reads as null.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListArray, MapArray, PrimitiveArray, StringArray,
    StructArray,
};
use arrow::compute::cast;
use arrow::datatypes::{ArrowPrimitiveType, DataType, Field, Int32Type, Int64Type};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

pub(in crate::delta) fn child<'a>(
    parent: Option<&'a StructArray>,
    name: &str,
) -> Option<&'a ArrayRef> {
    parent.and_then(|p| p.column_by_name(name))
}

pub(in crate::delta) fn column<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a StructArray> {
    batch.column_by_name(name).and_then(|c| c.as_struct_opt())
}

/// A field read as strings, whatever its string encoding.
pub(in crate::delta) struct Strings(Option<StringArray>);

impl Strings {
    pub(in crate::delta) fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        Ok(Strings(
            array
                .map(|a| cast(a, &DataType::Utf8).map(|c| c.as_string::<i32>().clone()))
                .transpose()?,
        ))
    }

    pub(in crate::delta) fn get(&self, i: usize) -> Option<String> {
        self.0
            .as_ref()
            .filter(|a| a.is_valid(i))
            .map(|a| a.value(i).to_owned())
    }
}

/// A field read as integers of type `T`, whatever integer width the file uses.
pub(in crate::delta) struct Primitives<T: ArrowPrimitiveType>(Option<PrimitiveArray<T>>);

/// A field read as 64-bit integers.
pub(in crate::delta) type Longs = Primitives<Int64Type>;
/// A field read as 32-bit integers.
pub(in crate::delta) type Ints = Primitives<Int32Type>;

impl<T: ArrowPrimitiveType> Primitives<T> {
    pub(in crate::delta) fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        Ok(Primitives(
            array
                .map(|a| cast(a, &T::DATA_TYPE).map(|c| c.as_primitive::<T>().clone()))
                .transpose()?,
        ))
    }

    pub(in crate::delta) fn get(&self, i: usize) -> Option<T::Native> {
        self.0
            .as_ref()
            .filter(|a| a.is_valid(i))
            .map(|a| a.value(i))
    }
}

/// A boolean field.
pub(in crate::delta) struct Bools(Option<BooleanArray>);

impl Bools {
    pub(in crate::delta) fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        Ok(Bools(
            array
                .map(|a| cast(a, &DataType::Boolean).map(|c| c.as_boolean().clone()))
                .transpose()?,
        ))
    }

    pub(in crate::delta) fn get(&self, i: usize) -> Option<bool> {
        self.0
            .as_ref()
            .filter(|a| a.is_valid(i))
            .map(|a| a.value(i))
    }
}

/// A `map<string,string>` field.
pub(in crate::delta) struct StrMaps(Option<(MapArray, StringArray, StringArray)>);

impl StrMaps {
    pub(in crate::delta) fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        let Some(array) = array else {
            return Ok(StrMaps(None));
        };
        let map = array.as_map_opt().ok_or_else(|| {
            ArrowError::SchemaError(format!("expected a map, found {}", array.data_type()))
        })?;
        let keys = cast(map.keys(), &DataType::Utf8)?
            .as_string::<i32>()
            .clone();
        let values = cast(map.values(), &DataType::Utf8)?
            .as_string::<i32>()
            .clone();
        Ok(StrMaps(Some((map.clone(), keys, values))))
    }

    pub(in crate::delta) fn get(&self, i: usize) -> Option<BTreeMap<String, Option<String>>> {
        let (map, keys, values) = self.0.as_ref().filter(|(m, _, _)| m.is_valid(i))?;
        let offsets = map.value_offsets();
        let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
        Some(
            (start..end)
                .map(|j| {
                    let value = values.is_valid(j).then(|| values.value(j).to_owned());
                    (keys.value(j).to_owned(), value)
                })
                .collect(),
        )
    }

    /// The map without its null values (for maps whose values are never null).
    pub(in crate::delta) fn get_non_null(&self, i: usize) -> Option<BTreeMap<String, String>> {
        self.get(i).map(|m| {
            m.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect()
        })
    }
}

/// A `list<string>` field.
pub(in crate::delta) struct StrLists(Option<ListArray>);

impl StrLists {
    pub(in crate::delta) fn new(array: Option<&ArrayRef>) -> Result<Self, ArrowError> {
        let target = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        Ok(StrLists(
            array
                .map(|a| cast(a, &target).map(|c| c.as_list::<i32>().clone()))
                .transpose()?,
        ))
    }

    pub(in crate::delta) fn get(&self, i: usize) -> Option<Vec<String>> {
        let list = self.0.as_ref().filter(|a| a.is_valid(i))?;
        let values = list.value(i);
        Some(
            values
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// The key field of a struct column in row `i`, if the struct is set there: rows where
/// the struct is null, or set with a null key (some writers leave structs non-null), hold
/// no such action.
pub(in crate::delta) fn key_of(
    parent: Option<&StructArray>,
    key: &Strings,
    i: usize,
) -> Option<String> {
    parent.filter(|p| p.is_valid(i))?;
    key.get(i)
}

/// A `deletionVector` struct field (of an `add`, a `remove` or a kernel scan row) read
/// as the descriptor's JSON object: `storageType`, `pathOrInlineDv`, `offset` (if set),
/// `sizeInBytes`, `cardinality`; `None` where the struct or its `storageType` is null.
pub(in crate::delta) struct DeletionVectors<'a> {
    column: Option<&'a StructArray>,
    storage: Strings,
    path: Strings,
    offset: Longs,
    size: Longs,
    cardinality: Longs,
}

impl<'a> DeletionVectors<'a> {
    pub(in crate::delta) fn new(array: Option<&'a ArrayRef>) -> Result<Self, ArrowError> {
        let column = array.and_then(|a| a.as_struct_opt());
        Ok(DeletionVectors {
            column,
            storage: Strings::new(child(column, "storageType"))?,
            path: Strings::new(child(column, "pathOrInlineDv"))?,
            offset: Longs::new(child(column, "offset"))?,
            size: Longs::new(child(column, "sizeInBytes"))?,
            cardinality: Longs::new(child(column, "cardinality"))?,
        })
    }

    pub(in crate::delta) fn get(&self, i: usize) -> Option<serde_json::Value> {
        use serde_json::{Map, Value};
        let storage = key_of(self.column, &self.storage, i)?;
        let mut descriptor = Map::new();
        descriptor.insert("storageType".into(), Value::from(storage));
        descriptor.insert("pathOrInlineDv".into(), Value::from(self.path.get(i)));
        if let Some(offset) = self.offset.get(i) {
            descriptor.insert("offset".into(), Value::from(offset));
        }
        descriptor.insert("sizeInBytes".into(), Value::from(self.size.get(i)));
        descriptor.insert("cardinality".into(), Value::from(self.cardinality.get(i)));
        Some(Value::Object(descriptor))
    }
}
