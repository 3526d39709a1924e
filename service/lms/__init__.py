"""What the LMSs accept, transcribed from their code: Canvas, Moodle and LTI 1.3 AGS payloads and CSVs.

Pure functions of what a student receives (``schemas.student.StudentView``): no storage, no HTTP.
Every rule cites the platform file it was read from, so a reader can check it.
"""
