"""Every exported model variant, once: name, how it is converted, its input dtype, its arithmetic.

compress (what to build), bench (which device reference figure to compare with), the report and the
CLI tables all read this table; nothing else spells a variant name. A leaf module (no imports), so the
TensorFlow-free runtime can use it too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Variant:
    name: str
    converter: str  # the conversion that makes the file: "float32", "float16", "dynamic" or "int8"
    input_dtype: str  # the `pixels` tensor: "float32" or "uint8" (raw 0..255 either way)
    precision: str  # the arithmetic a CPU runs it in, for device reference figures: "float32" or "int8"
    fine_tuned: str  # what was trained before conversion: "", "pruned", "qat" or "pruned+qat"
    description: str
    mixed: bool = False  # int8 with the ops accuracy control found it must keep float (one per format)
    format: str = "tflite"  # the file: "tflite" (LiteRT) or "onnx" (ONNX Runtime, TensorRT)

    @property
    def suffix(self) -> str:
        return "." + self.format

    @property
    def integer(self) -> bool:
        return self.precision == "int8"


VARIANTS: tuple[Variant, ...] = (
    Variant("float32", "float32", "float32", "float32", "", "float32 TFLite: the reference every delta is measured against"),
    Variant("float16", "float16", "float32", "float32", "", "float16 weights, dequantized to float32 on CPUs (half the size)"),
    Variant("dynamic", "dynamic", "float32", "float32", "", "int8 weights, float activations (dynamic-range quantization)"),
    Variant("int8", "int8", "uint8", "int8", "", "full-integer post-training quantization, calibrated on training images"),
    Variant("int8_mixed", "int8", "uint8", "int8", "",
            "post-training int8 with the few layers that cost most validation AUC kept float (accuracy control)",
            mixed=True),
    Variant("int8_pqat", "int8", "uint8", "int8", "pruned+qat", "magnitude-pruned, then sparsity-preserving QAT, full int8"),
    Variant("pruned_int8", "int8", "uint8", "int8", "pruned", "magnitude-pruned, then post-training full int8"),
    Variant("int8_qat", "int8", "uint8", "int8", "qat", "quantization-aware trained, full int8"),
    Variant("onnx_float32", "onnx_float32", "float32", "float32", "",
            "float32 ONNX (tf2onnx) for ONNX Runtime and TensorRT", format="onnx"),
    Variant("onnx_int8", "onnx_int8", "float32", "int8", "",
            "int8 QDQ ONNX (ONNX Runtime static quantization, symmetric, zero point 0: TensorRT explicit "
            "quantization), calibrated on the TFLite int8's images", format="onnx"),
    Variant("onnx_int8_mixed", "onnx_int8", "float32", "int8", "",
            "int8 QDQ ONNX with the network's last ops kept float (accuracy control)", mixed=True, format="onnx"),
)
BY_NAME: dict[str, Variant] = {variant.name: variant for variant in VARIANTS}
REFERENCE = "float32"
PLAIN = ("float32", "float16", "dynamic")  # converted straight from the float model, always exported
FORMATS = ("tflite", "onnx")


def format_of(name: str) -> str:
    """The file format of a variant; unknown names (other tools, older medtk) are `.tflite`."""
    variant = get_variant(name)
    return variant.format if variant else "tflite"


def get_variant(name: str) -> Variant | None:
    """The table row of `name`; None for a file exported by other tools or an older medtk."""
    return BY_NAME.get(name)


def compressed_variant(prune: bool, qat: bool) -> str | None:
    """The name of the fine-tuned int8 variant that pruning and/or QAT produce (None when neither runs)."""
    wanted = "+".join(step for step, on in (("pruned", prune), ("qat", qat)) if on)
    return next((v.name for v in VARIANTS if wanted and v.fine_tuned == wanted), None)


def precision_of(name: str) -> str:
    """The arithmetic of a variant for device reference figures; unknown names count as float32."""
    variant = get_variant(name)
    return variant.precision if variant else "float32"


def int8_preference() -> tuple[str, ...]:
    """Integer `.tflite` variants, most compressed first (fine-tuned ones before plain int8)."""
    return tuple(v.name for v in sorted((v for v in VARIANTS if v.integer and v.format == "tflite"),
                                        key=lambda v: v.fine_tuned == ""))
