"""Calibration on a teacher's own marked scripts: signals, fitting with honest selection, application."""
