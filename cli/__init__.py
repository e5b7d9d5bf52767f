"""`ocr`: the platform's command line. Reads files, folders or stdin through the gateway (or
straight from the model server over gRPC), writes text, JSON, hOCR, TSV, ALTO or searchable PDF
beside them or into a folder, with a progress bar on a terminal. `ocr --help` says how.

One module per concern: `args` (the command line), `inputs` (what to read), `outputs` (where
answers go), `http_backend` and `grpc_backend` (the two ways to the platform), `retry`,
`batch` (the concurrent run) and `progress` (what the person sees); `app` joins them.
"""

from cli.app import main

__all__ = ["main"]
