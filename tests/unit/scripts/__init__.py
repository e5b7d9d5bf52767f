"""Tests of the shell scripts under scripts/ and .ci/."""
