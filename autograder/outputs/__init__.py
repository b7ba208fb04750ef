"""Turning results into what people read: text, Gradescope JSON, CSV, HTML, the gradebook."""
