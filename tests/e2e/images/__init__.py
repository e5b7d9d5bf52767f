"""The container images, built and run for real with podman."""
