"""Tests of the Argo CD manifests under argocd/."""
