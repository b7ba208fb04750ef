"""Feedback that teaches: the misconceptions a check can recognise and how to say them."""
