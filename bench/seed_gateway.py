"""The seed-style gateway: a re-creation of the seed's path, flaws kept, for the baseline only.

Like the seed, the async handler base64-encodes the upload into a REST v2 JSON BYTES tensor and
posts it with a *blocking* HTTP call, so the event loop (and every other client) waits for each
OCR in turn; the model behind it runs the Tesseract CLI per image (`OCR_MODEL_ENGINE=pytesseract`).
Run: `python -m bench.seed_gateway --port P --model-url URL`.
"""

from __future__ import annotations

import argparse
import base64
import json
import urllib.request
from typing import Annotated, Any

import uvicorn
from fastapi import FastAPI, File, UploadFile


def create_app(model_url: str, model_name: str = "ocr-model", timeout_s: float = 600) -> FastAPI:
    """The seed-style app posting to the REST v2 endpoint of the model at `model_url`."""
    app = FastAPI(title="seed-style gateway")
    infer_url = f"{model_url}/v2/models/{model_name}/infer"

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/gateway/ocr")
    async def ocr(image_file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        data = await image_file.read()
        payload = {
            "inputs": [
                {
                    "name": "input-0",  # the seed's name; the model reads its one input
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [base64.b64encode(data).decode("ascii")],
                }
            ]
        }
        request = urllib.request.Request(  # noqa: S310  # the model URL we were started with
            infer_url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
        )
        # The seed's mistake, kept on purpose: a blocking call inside `async def` stalls the loop.
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: ASYNC210, S310
            body = json.loads(response.read())
        # The seed reads the text as the first output; the rest by name.
        outputs = {o["name"]: o["data"][0] for o in body["outputs"]}
        return {"text": body["outputs"][0]["data"][0], "confidence": outputs["confidence"]}

    return app


def main() -> None:
    """Serve the seed-style gateway with uvicorn until SIGINT / SIGTERM."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model-url", required=True, help="REST base URL of the model server")
    args = parser.parse_args()
    uvicorn.run(create_app(args.model_url), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
