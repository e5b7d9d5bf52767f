"""Offline tests of the Helm chart helm/ocr-platform: lint, schemas, security, behaviour."""
