"""KServe model server that runs Tesseract OCR in-process (see `model.engine`)."""
