"""Reading a submitted notebook and choosing the code that will run."""
