"""Assignments: one package per assignment id (config, checks, handout)."""
