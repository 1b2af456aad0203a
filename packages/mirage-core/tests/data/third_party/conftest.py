"""Test data: distributions and projects that the tests install or copy, not tests."""

collect_ignore_glob = ["*"]
