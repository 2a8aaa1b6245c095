"""A prepared dataset: every image decoded once, at model size, into TFRecord shards with a manifest.

Written by `medtk prepare` (`prepare_dataset`); read without TensorFlow by `open_prepared` (numpy,
protobuf, google-crc32c: the base install), by TensorFlow natively (`medtk.train.prepared.tf_dataset`,
or any `tf.data.TFRecordDataset` over the shards), and by any tool that reads TFRecord + tf.train.Example.
Format and choices: docs/PREPARED.md.
"""

from medtk.data.prepared.example import UNKNOWN_LABEL, PreparedItem
from medtk.data.prepared.manifest import MANIFEST, Manifest, ShardRecord, SkippedItem
from medtk.data.prepared.reader import PreparedDataset, is_prepared, open_prepared
from medtk.data.prepared.writer import PrepareResult, prepare_dataset

__all__ = ["MANIFEST", "Manifest", "PrepareResult", "PreparedDataset", "PreparedItem", "ShardRecord", "SkippedItem",
           "UNKNOWN_LABEL", "is_prepared", "open_prepared", "prepare_dataset"]
