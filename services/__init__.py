"""Domain services: the only code that writes to the database.

One function per domain action (send_message, edit_message, mark_read, ...). Services take an
AsyncSession, flush but never commit, and raise core.errors.AppError subclasses.
"""
