"""Aggregation of runs into tables and reports."""
