"""Unit tests of observability/: dashboards, alert rules, scrape and collector configs."""
