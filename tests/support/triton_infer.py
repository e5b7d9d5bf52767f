"""Run one OCR inference with NVIDIA's tritonclient and print the outputs as JSON.

Run as a separate process: tritonclient's stubs define the same `inference.*` protobuf symbols as
KServe's under another file name, so the two cannot be imported into one Python process.
Usage: python -m tests.support.triton_infer HOST:PORT IMAGE_PATH [OUTPUT,OUTPUT...]

With a list of outputs, requests exactly those and prints {"outputs": [names in the response's
order], "<name>": its one element} (BYTES as UTF-8 text, `pdf` as base64).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import numpy as np
import tritonclient.grpc as triton


def requested_outputs(client: triton.InferenceServerClient, tensor: triton.InferInput) -> None:
    names = sys.argv[3].split(",")
    result = client.infer(
        "ocr-model",
        [tensor],
        request_id="triton-outputs",
        outputs=[triton.InferRequestedOutput(name) for name in names],
    )
    answered = [output.name for output in result.get_response().outputs]
    found: dict[str, object] = {"outputs": answered}
    for name in answered:
        element = result.as_numpy(name)[0]
        if isinstance(element, bytes):
            found[name] = base64.b64encode(element).decode() if name == "pdf" else element.decode()
        else:
            found[name] = float(element)
    print(json.dumps(found))
    client.close()


def main() -> None:
    target, image_path = sys.argv[1], Path(sys.argv[2])
    client = triton.InferenceServerClient(target)
    tensor = triton.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([image_path.read_bytes()], dtype=np.object_))
    if len(sys.argv) > 3:
        requested_outputs(client, tensor)
        return
    params = {"psm": 7}
    result = client.infer("ocr-model", [tensor], request_id="triton-1", parameters=params)
    confidence = result.as_numpy("confidence")
    print(
        json.dumps(
            {
                "text": result.as_numpy("text")[0].decode(),
                "confidence_dtype": str(confidence.dtype),
                "words": json.loads(result.as_numpy("words")[0]),
                "server_ready": client.is_server_ready(),
                "model_ready": client.is_model_ready("ocr-model"),
            }
        )
    )
    client.close()


if __name__ == "__main__":
    main()
