"""The wire contract between the gateway and the model server, in one place.

Tensor names and datatypes, request parameters and their limits, the fields of a word, the
image formats accepted and the raw BYTES element encoding. The gateway, the model server and the
tests import it; neither side writes a name or a limit of its own. Adding an output is one
`TensorSpec` in `tensors.OUTPUTS` plus its encoder in the model (`model/codec.py`), which a test
holds to this list. Pure Python plus pydantic: no gRPC, KServe or Tesseract here.
"""

from .bytes_codec import MalformedBytesError, decode_bytes_elements, encode_bytes_element
from .formats import ACCEPTED_FORMAT_NAMES, IMAGE_FORMATS, ImageFormat, sniff_image_format
from .parameters import (
    LANG,
    LANG_PATTERN,
    OEM,
    PARAMETERS,
    PSM,
    TENANT,
    IntParameter,
    StringParameter,
)
from .tensors import (
    CONFIDENCE,
    DEFAULT_OUTPUTS,
    IMAGE,
    OUTPUTS,
    OUTPUTS_BY_NAME,
    TEXT,
    WORDS,
    TensorSpec,
)
from .words import WORD_FIELDS, Word

__all__ = [
    "ACCEPTED_FORMAT_NAMES",
    "CONFIDENCE",
    "DEFAULT_OUTPUTS",
    "IMAGE",
    "IMAGE_FORMATS",
    "LANG",
    "LANG_PATTERN",
    "OEM",
    "OUTPUTS",
    "OUTPUTS_BY_NAME",
    "PARAMETERS",
    "PSM",
    "TENANT",
    "TEXT",
    "WORDS",
    "WORD_FIELDS",
    "ImageFormat",
    "IntParameter",
    "MalformedBytesError",
    "StringParameter",
    "TensorSpec",
    "Word",
    "decode_bytes_elements",
    "encode_bytes_element",
    "sniff_image_format",
]
