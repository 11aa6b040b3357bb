//! The ONNX models augur writes ([`ModelFile`] and its parts) and their encoding as ONNX's
//! protobuf messages (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
//! ValueInfoProto), declared for prost.
//!
//! Field numbers and labels are those of `onnx/onnx.proto` (proto2, IR version 7): optional
//! fields are `Option`, so a field set to an empty value is still written, as protobuf's
//! proto2 encoders do; repeated integers are packed. Only what the exporter and the tests
//! need is declared: float/int64 tensors in `raw_data`, int/ints attributes, tensor value
//! infos with fixed or symbolic dimensions, and `metadata_props`.

use prost::Message as _;

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
        wire::ModelProto::from(self).encode_to_vec()
    }
}

/// `AttributeProto.AttributeType` values.
const ATTRIBUTE_INT: i32 = 2;
const ATTRIBUTE_INTS: i32 = 7;

/// The protobuf messages, one struct per message of onnx.proto (only the fields augur sets).
pub(crate) mod wire {
    /// `ModelProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ModelProto {
        #[prost(int64, optional, tag = "1")]
        pub(crate) ir_version: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub(crate) producer_name: Option<String>,
        #[prost(message, optional, tag = "7")]
        pub(crate) graph: Option<GraphProto>,
        #[prost(message, repeated, tag = "8")]
        pub(crate) opset_import: Vec<OperatorSetIdProto>,
        #[prost(message, repeated, tag = "14")]
        pub(crate) metadata_props: Vec<StringStringEntryProto>,
    }

    /// `OperatorSetIdProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct OperatorSetIdProto {
        #[prost(string, optional, tag = "1")]
        pub(crate) domain: Option<String>,
        #[prost(int64, optional, tag = "2")]
        pub(crate) version: Option<i64>,
    }

    /// `StringStringEntryProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct StringStringEntryProto {
        #[prost(string, optional, tag = "1")]
        pub(crate) key: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub(crate) value: Option<String>,
    }

    /// `GraphProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct GraphProto {
        #[prost(message, repeated, tag = "1")]
        pub(crate) node: Vec<NodeProto>,
        #[prost(string, optional, tag = "2")]
        pub(crate) name: Option<String>,
        #[prost(message, repeated, tag = "5")]
        pub(crate) initializer: Vec<TensorProto>,
        #[prost(message, repeated, tag = "11")]
        pub(crate) input: Vec<ValueInfoProto>,
        #[prost(message, repeated, tag = "12")]
        pub(crate) output: Vec<ValueInfoProto>,
    }

    /// `NodeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct NodeProto {
        #[prost(string, repeated, tag = "1")]
        pub(crate) input: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub(crate) output: Vec<String>,
        #[prost(string, optional, tag = "3")]
        pub(crate) name: Option<String>,
        #[prost(string, optional, tag = "4")]
        pub(crate) op_type: Option<String>,
        #[prost(message, repeated, tag = "5")]
        pub(crate) attribute: Vec<AttributeProto>,
    }

    /// `AttributeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct AttributeProto {
        #[prost(string, optional, tag = "1")]
        pub(crate) name: Option<String>,
        #[prost(int64, optional, tag = "3")]
        pub(crate) i: Option<i64>,
        #[prost(int64, repeated, packed = "true", tag = "8")]
        pub(crate) ints: Vec<i64>,
        #[prost(int32, optional, tag = "20")]
        pub(crate) r#type: Option<i32>,
    }

    /// `TensorProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TensorProto {
        #[prost(int64, repeated, packed = "true", tag = "1")]
        pub(crate) dims: Vec<i64>,
        #[prost(int32, optional, tag = "2")]
        pub(crate) data_type: Option<i32>,
        #[prost(string, optional, tag = "8")]
        pub(crate) name: Option<String>,
        #[prost(bytes = "vec", optional, tag = "9")]
        pub(crate) raw_data: Option<Vec<u8>>,
    }

    /// `ValueInfoProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ValueInfoProto {
        #[prost(string, optional, tag = "1")]
        pub(crate) name: Option<String>,
        #[prost(message, optional, tag = "2")]
        pub(crate) r#type: Option<TypeProto>,
    }

    /// `TypeProto` (its `value` oneof: only `tensor_type`).
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TypeProto {
        #[prost(message, optional, tag = "1")]
        pub(crate) tensor_type: Option<TypeProtoTensor>,
    }

    /// `TypeProto.Tensor`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TypeProtoTensor {
        #[prost(int32, optional, tag = "1")]
        pub(crate) elem_type: Option<i32>,
        #[prost(message, optional, tag = "2")]
        pub(crate) shape: Option<TensorShapeProto>,
    }

    /// `TensorShapeProto`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct TensorShapeProto {
        #[prost(message, repeated, tag = "1")]
        pub(crate) dim: Vec<Dimension>,
    }

    /// `TensorShapeProto.Dimension` (its `value` oneof as two optional fields, one set).
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Dimension {
        #[prost(int64, optional, tag = "1")]
        pub(crate) dim_value: Option<i64>,
        #[prost(string, optional, tag = "2")]
        pub(crate) dim_param: Option<String>,
    }
}

impl From<&ModelFile> for wire::ModelProto {
    fn from(model: &ModelFile) -> Self {
        Self {
            ir_version: Some(model.ir_version),
            producer_name: Some(model.producer.clone()),
            graph: Some((&model.graph).into()),
            opset_import: vec![wire::OperatorSetIdProto {
                // The default (`ai.onnx`) domain.
                domain: Some(String::new()),
                version: Some(model.opset),
            }],
            metadata_props: model
                .metadata
                .iter()
                .map(|(key, value)| wire::StringStringEntryProto {
                    key: Some(key.clone()),
                    value: Some(value.clone()),
                })
                .collect(),
        }
    }
}

impl From<&Graph> for wire::GraphProto {
    fn from(graph: &Graph) -> Self {
        Self {
            node: graph.nodes.iter().map(Into::into).collect(),
            name: Some(graph.name.clone()),
            initializer: graph.initializers.iter().map(Into::into).collect(),
            input: graph.inputs.iter().map(Into::into).collect(),
            output: graph.outputs.iter().map(Into::into).collect(),
        }
    }
}

impl From<&Node> for wire::NodeProto {
    fn from(node: &Node) -> Self {
        Self {
            input: node.inputs.clone(),
            output: node.outputs.clone(),
            name: Some(node.name.clone()),
            op_type: Some(node.op_type.clone()),
            attribute: node.attributes.iter().map(Into::into).collect(),
        }
    }
}

impl From<&Attribute> for wire::AttributeProto {
    fn from(attribute: &Attribute) -> Self {
        match attribute {
            Attribute::Int(name, value) => Self {
                name: Some(name.clone()),
                i: Some(*value),
                ints: Vec::new(),
                r#type: Some(ATTRIBUTE_INT),
            },
            Attribute::Ints(name, values) => Self {
                name: Some(name.clone()),
                i: None,
                ints: values.clone(),
                r#type: Some(ATTRIBUTE_INTS),
            },
        }
    }
}

impl From<&Tensor> for wire::TensorProto {
    fn from(tensor: &Tensor) -> Self {
        let (data_type, raw): (i32, Vec<u8>) = match &tensor.data {
            TensorData::Float(values) => {
                (FLOAT, values.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
            TensorData::Int64(values) => {
                (INT64, values.iter().flat_map(|v| v.to_le_bytes()).collect())
            }
        };
        Self {
            dims: tensor.dims.clone(),
            data_type: Some(data_type),
            name: Some(tensor.name.clone()),
            raw_data: Some(raw),
        }
    }
}

impl From<&ValueInfo> for wire::ValueInfoProto {
    fn from(info: &ValueInfo) -> Self {
        let dim = info
            .dims
            .iter()
            .map(|dim| match dim {
                Dim::Fixed(size) => wire::Dimension {
                    dim_value: Some(*size),
                    dim_param: None,
                },
                Dim::Symbol(name) => wire::Dimension {
                    dim_value: None,
                    dim_param: Some(name.clone()),
                },
            })
            .collect();
        Self {
            name: Some(info.name.clone()),
            r#type: Some(wire::TypeProto {
                tensor_type: Some(wire::TypeProtoTensor {
                    elem_type: Some(info.elem_type),
                    shape: Some(wire::TensorShapeProto { dim }),
                }),
            }),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::path::Path;

    use prost::Message as _;

    use super::*;

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

    #[test]
    fn packed_ints_negative_values_and_symbolic_dims() {
        let node = Node {
            op_type: "ReduceMax".to_owned(),
            name: "n".to_owned(),
            inputs: vec!["x".to_owned()],
            outputs: vec!["y".to_owned()],
            attributes: vec![Attribute::Ints("axes".to_owned(), vec![1, 300, -1])],
        };
        assert_eq!(
            wire::NodeProto::from(&node).encode_to_vec(),
            [
                0x0a, 1, b'x', 0x12, 1, b'y', 0x1a, 1, b'n', // input, output, name
                0x22, 9, b'R', b'e', b'd', b'u', b'c', b'e', b'M', b'a', b'x', // op_type
                0x2a, 24, // attribute {
                0x0a, 4, b'a', b'x', b'e', b's', // name
                // ints, packed: 1, 300, -1 (ten bytes, as protobuf writes negatives)
                0x42, 13, 0x01, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0x01, 0xa0, 0x01, 7, // type: INTS }
            ]
        );
        let info = ValueInfo {
            name: "v".to_owned(),
            elem_type: FLOAT,
            dims: vec![Dim::Symbol("N".to_owned()), Dim::Fixed(3)],
        };
        assert_eq!(
            wire::ValueInfoProto::from(&info).encode_to_vec(),
            [
                0x0a, 1, b'v', // name
                0x12, 15, 0x0a, 13, 0x08, 1, // type { tensor_type { elem_type: FLOAT
                0x12, 9, 0x0a, 3, 0x12, 1, b'N', 0x0a, 2, 0x08, 3, // shape { N, 3 } } }
            ]
        );
    }

    /// `augur train` wrote models/default.onnx with the hand-written encoder this replaced:
    /// decoding it with the declared messages and encoding it again gives the same bytes,
    /// so no field of it is missing here and the encodings agree.
    #[test]
    fn the_shipped_model_round_trips_byte_for_byte() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/default.onnx");
        let bytes = std::fs::read(&path).unwrap();
        let model = wire::ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = model.graph.as_ref().unwrap();
        assert!(graph.node.len() > 10, "{} nodes", graph.node.len());
        assert_eq!(model.encode_to_vec(), bytes);
    }
}
