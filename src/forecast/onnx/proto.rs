//! The subset of ONNX's protobuf messages augur writes (ModelProto, GraphProto, NodeProto,
//! TensorProto, ValueInfoProto), encoded by hand in the protobuf wire format.
//!
//! Field numbers are those of `onnx/onnx.proto` (IR version 7). Only what the exporter and
//! the tests need is here: float/int64 tensors in `raw_data`, int/ints attributes,
//! tensor value infos with fixed or symbolic dimensions, and `metadata_props`.

/// ONNX `TensorProto.DataType.FLOAT`.
pub(crate) const FLOAT: i32 = 1;
/// ONNX `TensorProto.DataType.INT64`.
pub(crate) const INT64: i32 = 7;

/// A serialised ONNX model: one graph, one opset import and string metadata.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelFile {
    /// `ModelProto.ir_version`.
    pub(crate) ir_version: i64,
    /// Version of the default (`ai.onnx`) operator set.
    pub(crate) opset: i64,
    /// `ModelProto.producer_name`.
    pub(crate) producer: String,
    /// The computation.
    pub(crate) graph: Graph,
    /// `ModelProto.metadata_props`, in order.
    pub(crate) metadata: Vec<(String, String)>,
}

/// `GraphProto`: nodes in topological order, constants, inputs and outputs.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Graph {
    pub(crate) name: String,
    pub(crate) nodes: Vec<Node>,
    pub(crate) initializers: Vec<Tensor>,
    pub(crate) inputs: Vec<ValueInfo>,
    pub(crate) outputs: Vec<ValueInfo>,
}

/// `NodeProto`: one operator call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) op_type: String,
    pub(crate) name: String,
    pub(crate) inputs: Vec<String>,
    pub(crate) outputs: Vec<String>,
    pub(crate) attributes: Vec<Attribute>,
}

/// `AttributeProto` of the kinds augur uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Attribute {
    /// `type = INT`.
    Int(String, i64),
    /// `type = INTS`.
    Ints(String, Vec<i64>),
}

/// `TensorProto` with its data in `raw_data` (little-endian).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    pub(crate) name: String,
    pub(crate) dims: Vec<i64>,
    pub(crate) data: TensorData,
}

/// The element type and values of a [`Tensor`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TensorData {
    Float(Vec<f32>),
    Int64(Vec<i64>),
}

/// `ValueInfoProto` of a tensor: name, element type and shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValueInfo {
    pub(crate) name: String,
    pub(crate) elem_type: i32,
    pub(crate) dims: Vec<Dim>,
}

/// One dimension of a [`ValueInfo`] shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Dim {
    /// `dim_value`.
    Fixed(i64),
    /// `dim_param` (a symbolic size such as the batch `N`).
    Symbol(String),
}

impl ModelFile {
    /// The `ModelProto` bytes (what an `.onnx` file holds).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_int(&mut out, 1, self.ir_version);
        put_string(&mut out, 2, &self.producer);
        put_message(&mut out, 7, |b| self.graph.encode(b));
        // OperatorSetIdProto { domain = "" (default), version }.
        put_message(&mut out, 8, |b| {
            put_string(b, 1, "");
            put_int(b, 2, self.opset);
        });
        for (key, value) in &self.metadata {
            put_message(&mut out, 14, |b| {
                put_string(b, 1, key);
                put_string(b, 2, value);
            });
        }
        out
    }
}

impl Graph {
    fn encode(&self, out: &mut Vec<u8>) {
        for node in &self.nodes {
            put_message(out, 1, |b| node.encode(b));
        }
        put_string(out, 2, &self.name);
        for tensor in &self.initializers {
            put_message(out, 5, |b| tensor.encode(b));
        }
        for input in &self.inputs {
            put_message(out, 11, |b| input.encode(b));
        }
        for output in &self.outputs {
            put_message(out, 12, |b| output.encode(b));
        }
    }
}

impl Node {
    fn encode(&self, out: &mut Vec<u8>) {
        for input in &self.inputs {
            put_string(out, 1, input);
        }
        for output in &self.outputs {
            put_string(out, 2, output);
        }
        put_string(out, 3, &self.name);
        put_string(out, 4, &self.op_type);
        for attribute in &self.attributes {
            put_message(out, 5, |b| attribute.encode(b));
        }
    }
}

impl Attribute {
    fn encode(&self, out: &mut Vec<u8>) {
        // AttributeProto: name = 1, f = 2, i = 3, ints = 8, type = 20.
        match self {
            Attribute::Int(name, value) => {
                put_string(out, 1, name);
                put_int(out, 3, *value);
                put_int(out, 20, 2);
            }
            Attribute::Ints(name, values) => {
                put_string(out, 1, name);
                let mut packed = Vec::new();
                for &v in values {
                    put_varint(&mut packed, v as u64);
                }
                put_bytes(out, 8, &packed);
                put_int(out, 20, 7);
            }
        }
    }
}

impl Tensor {
    fn encode(&self, out: &mut Vec<u8>) {
        // TensorProto: dims = 1 (packed), data_type = 2, name = 8, raw_data = 9.
        let mut dims = Vec::new();
        for &d in &self.dims {
            put_varint(&mut dims, d as u64);
        }
        put_bytes(out, 1, &dims);
        let (data_type, raw) = match &self.data {
            TensorData::Float(values) => (
                FLOAT,
                values
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
            TensorData::Int64(values) => (
                INT64,
                values
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect::<Vec<u8>>(),
            ),
        };
        put_int(out, 2, i64::from(data_type));
        put_string(out, 8, &self.name);
        put_bytes(out, 9, &raw);
    }
}

impl ValueInfo {
    fn encode(&self, out: &mut Vec<u8>) {
        // ValueInfoProto { name = 1, type = 2: TypeProto { tensor_type = 1:
        //   Tensor { elem_type = 1, shape = 2: TensorShapeProto { dim = 1: Dimension {
        //     dim_value = 1 | dim_param = 2 } } } } }
        put_string(out, 1, &self.name);
        put_message(out, 2, |ty| {
            put_message(ty, 1, |tensor| {
                put_int(tensor, 1, i64::from(self.elem_type));
                put_message(tensor, 2, |shape| {
                    for dim in &self.dims {
                        put_message(shape, 1, |d| match dim {
                            Dim::Fixed(size) => put_int(d, 1, *size),
                            Dim::Symbol(name) => put_string(d, 2, name),
                        });
                    }
                });
            });
        });
    }
}

const WIRE_VARINT: u8 = 0;
const WIRE_LEN: u8 = 2;

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// An int32/int64/enum field (negative values take ten bytes, as protobuf specifies).
fn put_int(out: &mut Vec<u8>, field: u32, value: i64) {
    put_key(out, field, WIRE_VARINT);
    put_varint(out, value as u64);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_string(out: &mut Vec<u8>, field: u32, text: &str) {
    put_bytes(out, field, text.as_bytes());
}

fn put_message(out: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    body(&mut inner);
    put_bytes(out, field, &inner);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_follow_the_protobuf_encoding() {
        let mut out = Vec::new();
        put_varint(&mut out, 1);
        put_varint(&mut out, 300);
        put_varint(&mut out, u64::MAX);
        assert_eq!(
            out,
            [
                0x01, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ]
        );
    }

    #[test]
    fn metadata_entry_and_opset_bytes() {
        let model = ModelFile {
            ir_version: 7,
            opset: 13,
            producer: "a".to_owned(),
            graph: Graph::default(),
            metadata: vec![("k".to_owned(), "v".to_owned())],
        };
        assert_eq!(
            model.encode(),
            [
                0x08, 7, // ir_version
                0x12, 1, b'a', // producer_name
                0x3a, 2, 0x12, 0, // graph { name: "" }
                0x42, 4, 0x0a, 0, 0x10, 13, // opset_import { domain: "", version: 13 }
                0x72, 6, 0x0a, 1, b'k', 0x12, 1, b'v', // metadata_props { k: v }
            ]
        );
    }
}
