"""Running student code in a confined child process; only plain data comes back."""
