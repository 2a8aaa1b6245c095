"""`tf.train.Example` without TensorFlow: the message classes built from a descriptor at import.

The descriptor is field for field tensorflow/core/example/{feature,example}.proto (package
`tensorflow`, proto3, so the repeated numbers are packed), so the bytes are what TensorFlow writes and
parses. It lives in a private descriptor pool: in a process that has also imported TensorFlow (whose
generated module registers `tensorflow.Example` in the default pool) the two never collide.
protobuf's upb backend parses a 150 kB image record in microseconds; no generated `_pb2` file to keep
in step with a protoc version.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from medtk.errors import DataError

IMAGE, SHAPE, LABEL, SOURCE_ID, GROUP = "image", "shape", "label", "source_id", "group"
UNKNOWN_LABEL = -1


def _file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="medtk/tensorflow_example.proto", package="tensorflow",
                                               syntax="proto3")

    def message(name: str, *fields: tuple, nested=(), oneof: str | None = None):
        kind = proto.message_type.add(name=name)
        for entry in nested:
            kind.nested_type.add().CopyFrom(entry)
        if oneof:
            kind.oneof_decl.add(name=oneof)
        for field_name, number, field_type, label, type_name, in_oneof in fields:
            field = kind.field.add(name=field_name, number=number, type=field_type, label=label)
            if type_name:
                field.type_name = type_name
            if in_oneof:
                field.oneof_index = 0
        return kind

    repeated, optional = F.LABEL_REPEATED, F.LABEL_OPTIONAL
    message("BytesList", ("value", 1, F.TYPE_BYTES, repeated, None, False))
    message("FloatList", ("value", 1, F.TYPE_FLOAT, repeated, None, False))
    message("Int64List", ("value", 1, F.TYPE_INT64, repeated, None, False))
    message("Feature",
            ("bytes_list", 1, F.TYPE_MESSAGE, optional, ".tensorflow.BytesList", True),
            ("float_list", 2, F.TYPE_MESSAGE, optional, ".tensorflow.FloatList", True),
            ("int64_list", 3, F.TYPE_MESSAGE, optional, ".tensorflow.Int64List", True),
            oneof="kind")
    entry = descriptor_pb2.DescriptorProto(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, label=optional, type_name=".tensorflow.Feature")
    message("Features", ("feature", 1, F.TYPE_MESSAGE, repeated, ".tensorflow.Features.FeatureEntry", False),
            nested=(entry,))
    message("Example", ("features", 1, F.TYPE_MESSAGE, optional, ".tensorflow.Features", False))
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file_descriptor())
Example = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("tensorflow.Example"))


@dataclass(frozen=True)
class PreparedItem:
    """One prepared image: model-input pixels (uint8 HxWxC), label index (-1 unknown), id, patient group."""

    source_id: str
    image: np.ndarray
    label: int
    group: str


def encode(item: PreparedItem) -> bytes:
    """The item as a serialized `tf.train.Example` (deterministic bytes: same item, same record)."""
    pixels = np.ascontiguousarray(item.image, dtype=np.uint8)
    if pixels.ndim != 3:
        raise ValueError(f"{item.source_id}: prepared image must be HxWxC, got shape {pixels.shape}")
    example = Example()
    feature = example.features.feature
    feature[IMAGE].bytes_list.value.append(pixels.tobytes())
    feature[SHAPE].int64_list.value.extend(int(n) for n in pixels.shape)
    feature[LABEL].int64_list.value.append(int(item.label))
    feature[SOURCE_ID].bytes_list.value.append(item.source_id.encode("utf-8"))
    feature[GROUP].bytes_list.value.append(item.group.encode("utf-8"))
    return example.SerializeToString(deterministic=True)


def decode(record: bytes, origin: str) -> PreparedItem:
    """A serialized Example back to a `PreparedItem`; anything missing or inconsistent names `origin`."""
    example = Example()
    try:
        example.ParseFromString(record)
    except Exception as error:  # protobuf's DecodeError differs between backends
        raise DataError(f"{origin}: not a tf.train.Example ({error})") from None
    feature = example.features.feature
    missing = [key for key in (IMAGE, SHAPE, LABEL, SOURCE_ID, GROUP) if key not in feature]
    if missing:
        raise DataError(f"{origin}: record lacks feature(s) {', '.join(missing)}")
    shape = tuple(int(n) for n in feature[SHAPE].int64_list.value)
    data = feature[IMAGE].bytes_list.value
    if len(shape) != 3 or len(data) != 1 or len(data[0]) != int(np.prod(shape)):
        raise DataError(f"{origin}: image bytes do not match shape {list(shape)}")
    return PreparedItem(
        source_id=feature[SOURCE_ID].bytes_list.value[0].decode("utf-8"),
        image=np.frombuffer(data[0], dtype=np.uint8).reshape(shape),
        label=int(feature[LABEL].int64_list.value[0]),
        group=feature[GROUP].bytes_list.value[0].decode("utf-8"),
    )
